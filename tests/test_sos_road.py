"""One road from alarm to screen: an SOS press reaches screens only through the escalation
channels, as one message per change on the policy's timing.

    press (MQTT) → elder care's request → the alert engine (raised, step 0) → the `tv`
    channel (the box's `notify` command) and the `ws` channel (the phones' WebSocket)

tests/stb/test_alert_trace.py follows the same road to a TV box and back through the trace.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.homes import add_home, publish
from tests.portal_accounts import PORTAL_SERVICES, add_account, api_token, portal
from tests.test_portal_live import drain, next_of


class Clock:
    """The alert engine's clock, moved on by the test instead of waiting minutes."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def kinds(messages: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(m["type"], m.get("transition") or m.get("audience")) for m in messages]


@pytest.mark.slow
async def test_one_sos_press_is_one_message_on_the_phone_and_each_change_one_more(
    make_gateway, broker
) -> None:
    # given a home with an SOS pendant; the resident's phone, a carer's (with the household's
    # consent) and the duty desk's console, each with the live WebSocket open
    gateway = await make_gateway(components=PORTAL_SERVICES)
    topics = await add_home(gateway, "h1")
    await gateway.components["health"].async_grant_consent("h1", by="test", purposes=["carer"])
    clock = Clock()
    engine = gateway.components["alerts"]
    engine.clock = clock
    for name, role, household in [
        ("li", "resident", "h1"),
        ("li.daughter", "carer", "h1"),
        ("wang", "manager", None),
    ]:
        await add_account(gateway, name, role, household)
    async with portal(gateway) as client:
        tokens = {name: await api_token(gateway, name) for name in ("li", "li.daughter", "wang")}
        phone, carer, desk = [
            await client.ws_connect("/api/v1/ws", headers={"Authorization": f"Bearer {tokens[name]}"})
            for name in ("li", "li.daughter", "wang")
        ]
        for ws in (phone, carer, desk):
            await next_of(ws, "hello")
        await publish(broker.port, [(topics["h1-sos"], {"sos": "idle"})])
        for ws in (phone, carer, desk):  # the pendant came online: the home's news, not the press
            await drain(ws, 0.3)
        # when the resident presses the pendant
        await publish(broker.port, [(topics["h1-sos"], {"sos": "pressed"})])
        # then the phone gets exactly one message: the alert, from the household's step
        pressed = await drain(phone, 1.0)
        assert kinds(pressed) == [("alert", "household")]
        assert pressed[0]["alert"]["kind"] == "sos"
        alert_id = pressed[0]["alert"]["id"]
        # and the carer and the duty desk hear nothing before their steps
        assert await drain(carer, 0.2) == [] and await drain(desk, 0.2) == []

        # when the carers' step is due (60 s later)
        clock.now += 60
        await engine.async_run_due()
        # then the carer gets the alert, and the phone one message that it was escalated
        assert kinds(await drain(carer)) == [("alert", "carers")]
        assert kinds(await drain(phone)) == [("alert_changed", "escalated")]
        assert await drain(desk, 0.2) == []

        # when the duty desk's step is due (180 s after the press)
        clock.now += 120
        await engine.async_run_due()
        assert kinds(await drain(desk)) == [("alert", "duty_desk")]
        assert kinds(await drain(phone)) == [("alert_changed", "escalated")]
        assert kinds(await drain(carer)) == [("alert_changed", "escalated")]

        # when the resident acknowledges it on the phone
        response = await client.post(
            f"/api/v1/alerts/{alert_id}/acknowledge", headers={"Authorization": f"Bearer {tokens['li']}"}
        )
        assert response.status == 200, await response.text()
        # then every screen the alert reached gets one message saying so
        for ws in (phone, carer, desk):
            heard = await drain(ws)
            assert kinds(heard) == [("alert_changed", "acknowledged")]
            assert heard[0]["alert"]["state"] == "acknowledged"
        for ws in (phone, carer, desk):
            await ws.close()


@pytest.mark.slow
async def test_a_fall_in_its_window_reaches_nobody_beyond_the_household_not_even_as_a_change(
    make_gateway,
) -> None:
    # given a carer and the duty desk watching, and a fall (30 s in which the resident may cancel)
    gateway = await make_gateway(components=PORTAL_SERVICES)
    await add_home(gateway, "h1")
    await gateway.components["health"].async_grant_consent("h1", by="test", purposes=["carer"])
    await add_account(gateway, "li.daughter", "carer", "h1")
    await add_account(gateway, "wang", "manager")
    engine = gateway.components["alerts"]
    async with portal(gateway) as client:
        watchers = []
        for name in ("li.daughter", "wang"):
            token = await api_token(gateway, name)
            ws = await client.ws_connect("/api/v1/ws", headers={"Authorization": f"Bearer {token}"})
            await next_of(ws, "hello")
            watchers.append(ws)
        # when it is raised, counted again and cancelled within its window
        fall = await engine.async_raise(kind="fall", household_id="h1", title="Fall", dedup_key="fall:1")
        await engine.async_raise(kind="fall", household_id="h1", title="Fall", dedup_key="fall:1")
        await engine.async_run_due()
        await engine.async_cancel(fall.id, "li")
        # then neither the carer nor the desk ever heard of it
        for ws in watchers:
            assert await drain(ws, 0.5) == []
            await ws.close()
