"""The regional dashboard: what an operator sees, and an emergency broadcast with its delivery report."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.uplink.signing import Signer
from services.region.consumer import Consumer
from services.region.dashboard import create_app
from tests import postgres, regional
from tests.brokers import settle
from tests.regional import REGION, add_tv, tv_profiles, uplink_config
from tests.test_region import region_config

region_broker = regional.region_broker
postgres_cluster = postgres.postgres_cluster
region_dsn = postgres.region_dsn
TOKEN = "test-operator-token-0123456789"


@pytest.fixture
async def region(region_broker, region_dsn, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """A consumer and the dashboard (with the region's key), on the test broker and database."""
    signer = Signer.generate()
    config = region_config(region_dsn, region_broker.port)
    config["region"]["data_dir"] = str(tmp_path / "region")
    config["dashboard"]["clock_interval_s"] = 1
    consumer = Consumer(config, 0)
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(consumer.connected.wait(), 10)
    client = TestClient(TestServer(create_app(config, TOKEN, signer)))
    await client.start_server()
    try:
        yield {"client": client, "signer": signer, "consumer": consumer}
    finally:
        await client.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.async_close()


async def api(client: TestClient, method: str, path: str, **kw: Any) -> Any:
    response = await client.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"}, **kw)
    assert response.status < 300, await response.text()
    return await response.json()


async def until(client: TestClient, path: str, predicate: Any, timeout: float = 10.0) -> Any:
    async with asyncio.timeout(timeout):
        while not predicate(data := await api(client, "GET", path)):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    return data


async def test_operator_sees_the_region_and_an_emergency_reaches_every_tv(
    make_gateway, region_broker, region, tmp_path
) -> None:
    client: TestClient = region["client"]
    # given a community whose gateway trusts the region's key, with a TV, and an SOS acknowledged in 42 s
    gateway = await make_gateway(
        components=["services.alerts:AlertEngine"],
        uplink=uplink_config(region_broker.port, region["signer"]),
        profiles={"paths": tv_profiles(tmp_path / "profiles")},
    )
    shown = await add_tv(gateway)
    engine = gateway.components["alerts"]
    clock = {"now": 1_800_000_000.0}
    engine.clock = lambda: clock["now"]
    sos = await engine.async_raise(kind="sos", household_id="h1", title="SOS 紧急呼叫")
    clock["now"] += 42
    await engine.async_acknowledge(sos.id, "warden")
    await engine.async_raise(kind="water_leak", household_id="h1", title="Leak", severity="high")
    await gateway.components["uplink"].async_report_status()
    await gateway.components["uplink"].async_report_device_health()

    # when the operator opens the overview
    overview = await until(
        client, "/api/v1/overview", lambda d: d["ack_times_24h"]["count"] == 1 and "high" in d["open_alerts"]
    )
    # then the community is online, the alerts are counted by severity, the ack time is measured
    assert overview["communities"]["total"] == overview["communities"]["online"] == 1
    assert overview["open_alerts"]["critical"]["total"] == 1  # acknowledged, not yet resolved
    assert overview["open_alerts"]["high"]["total"] == 1
    assert overview["ack_times_24h"]["p50_s"] == 42
    assert overview["ack_times_24h"]["meets_targets"] is True
    assert overview["fleet"]["devices"] == 1
    drill = await api(client, "GET", "/api/v1/communities/community")
    assert {a["kind"] for a in drill["alerts"]} == {"sos", "water_leak"}

    # when the operator sends an emergency broadcast to that community
    sent = await api(
        client,
        "POST",
        "/api/v1/announcements",
        json={
            "kind": "emergency",
            "title": "暴雨预警",
            "body": "Flood: leave the car park now",
            "targets": ["community"],
        },
    )
    # then the TV shows it as an alarm, and the delivery report counts the gateway and the TV
    await settle(lambda: len(shown) == 1, timeout=10)
    assert shown[0]["level"] == "alarm" and shown[0]["text"] == "Flood: leave the car park now"
    report = await until(client, f"/api/v1/announcements/{sent['id']}", lambda d: d["tvs_shown"] == 1)
    assert (report["gateways_targeted"], report["gateways_confirmed"], report["tvs_total"]) == (1, 1, 1)
    assert report["not_confirmed"] == []
    # and the region's signed clock reached the gateway
    await settle(lambda: gateway.components["uplink"]._clock_issued > 0, timeout=5)

    # and the pages a person reads say the same
    page = await (await client.get(f"/login?token={TOKEN}")).text()
    assert "Communities online" in page and "42 s" in page
    page = await (await client.get("/communities/community")).text()
    assert "SOS 紧急呼叫" in page
    page = await (await client.get(f"/announcements/{sent['id']}")).text()
    assert "EMERGENCY" in page and "1 / 1" in page


async def test_the_dashboard_refuses_strangers_and_bad_broadcasts(region) -> None:
    client: TestClient = region["client"]
    assert (await client.get("/api/v1/overview")).status == 401
    assert (await client.get("/", headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await client.get("/login?token=wrong")).status == 401
    # a cross-site form post with the operator's cookie is refused
    await client.get(f"/login?token={TOKEN}")
    response = await client.post(
        "/announcements",
        data={"body": "hi", "kind": "announcement"},
        headers={"Origin": "http://evil.example"},
    )
    assert response.status == 403
    # unknown targets and empty bodies are refused with a reason
    response = await client.post(
        "/api/v1/announcements",
        json={"kind": "announcement", "body": "hi", "targets": ["nowhere"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status == 400 and (await response.json())["error"]["code"] == "unknown_target"
    response = await client.post(
        "/api/v1/announcements",
        json={"kind": "announcement", "body": ""},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status == 400
    assert REGION in await (await client.get("/announcements")).text()
    # the composer form, from the dashboard itself, signs and sends, then shows the delivery report
    response = await client.post(
        "/announcements",
        data={
            "kind": "announcement",
            "title": "停水通知",
            "body": "Water off 9–11 tomorrow",
            "ttl_min": "30",
        },
        headers={"Origin": f"http://{client.host}:{client.port}"},
        allow_redirects=False,
    )
    assert response.status == 303
    report = await client.get(response.headers["Location"])
    assert report.status == 200 and "停水通知" in await report.text()
