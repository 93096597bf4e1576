"""Provider webhooks: signed, retried until the provider has it, idempotent by alert."""

from __future__ import annotations

from aiohttp import web

from linli.gateway.notify import Audience
from linli.services.alerts.webhook import sign
from tests.brokers import free_port, settle
from tests.homes import add_home

SECRET = "care-centre-shared-secret"


class CareCentre:
    """A provider's real HTTP endpoint on 127.0.0.1 that fails its first answer."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = True

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append((dict(request.headers), body))
        if self.fail_first:
            self.fail_first = False
            return web.Response(status=503, text="busy")
        return web.Response(status=204)

    async def start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/linli", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner


async def test_carers_step_reaches_the_care_centre_signed_and_retried(make_gateway, tmp_path) -> None:
    centre = CareCentre()
    runner = await centre.start()
    try:
        gateway = await make_gateway(
            components=["linli.services.alerts:AlertEngine"],
            alerts={
                "webhooks": [
                    {
                        "id": "care-centre",
                        "url": f"http://127.0.0.1:{centre.port}/linli",
                        "secret": SECRET,
                        "audiences": ["carers"],
                    }
                ]
            },
        )
        engine = gateway.components["alerts"]
        now = [1_800_000_000.0]
        engine.clock = lambda: now[0]
        await add_home(gateway)
        alert = await engine.async_raise(kind="sos", household_id="h1", title="SOS")
        await engine.async_run_due()
        assert centre.received == []  # the household step is not for the provider
        now[0] += 60
        await engine.async_run_due()  # carers: the centre answers 503
        assert len(centre.received) == 1
        now[0] += 1
        await engine.async_run_due()  # the retry, one second later, is accepted
        await settle(lambda: len(centre.received) == 2)
        first, second = centre.received
        for headers, body in centre.received:
            stamp = headers["X-Linli-Timestamp"]
            assert headers["X-Linli-Signature"] == sign(SECRET, stamp, body)
            assert headers["X-Linli-Alert-Id"] == str(alert.id)
        assert first[0]["Idempotency-Key"] == second[0]["Idempotency-Key"]
        outcomes = [
            (e["channel"], e["outcome"])
            for e in await engine.async_timeline(alert.id)
            if e["action"] == "delivery"
        ]
        assert outcomes[-2:] == [("webhook:care-centre", "failed"), ("webhook:care-centre", "delivered")]
        assert Audience.CARERS.value in second[1].decode()
    finally:
        await runner.cleanup()


async def test_webhook_secret_is_never_in_a_config_error(tmp_path) -> None:
    import pytest

    from linli.gateway.config import ConfigError, load_config

    with pytest.raises(ConfigError) as raised:
        load_config(
            None,
            environ={},
            overrides={
                # the alert engine's own section, judged by its schema (it brings it with it)
                "components": ["linli.services.alerts:AlertEngine"],
                "alerts": {"webhooks": [{"id": "x", "url": "http://127.0.0.1:1/", "secret": "short-secret"}]},
            },
        )
    assert "alerts.webhooks.0.secret" in str(raised.value)
    assert "short-secret" not in str(raised.value)
