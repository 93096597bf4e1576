"""Alarm dialogs that are safe to press, the resident's cancel, and reminders that stay calm.

* On the TV an SOS takes the screen with "Call for help" focused; one stray OK press never
  ends it, and "I'm OK" needs a second, deliberate step.
* A resident's cancel keeps the alert, marked; the duty desk still sees it and, where the
  policy says so, gets a call-back task.
* A fall stays on the household's own screens during its cancel window: a carer's WebSocket
  hears nothing until the window has passed without a cancel.
* A medication reminder is a calm card, not the red alarm screen, on the page and on the box.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from linli.gateway.notify import Audience
from linli.services.screens.screens import overlay_level
from tests.alerting import RecordingChannel
from tests.brokers import settle
from tests.homes import add_home
from tests.portal_accounts import PORTAL_SERVICES, add_account, portal, sign_in
from tests.test_portal_browser import TV, at, browser_page, portal_gateway, press_sos


async def test_one_ok_press_does_not_end_an_sos_on_the_tv_the_confirm_step_does(
    make_gateway, broker, tmp_path
) -> None:
    gateway, base = await portal_gateway(make_gateway)
    topics = await add_home(gateway, "h1")
    password = await add_account(gateway, "li.resident", "resident", "h1")
    engine = gateway.components["alerts"]
    async with browser_page(tmp_path, TV) as page:
        await page.goto(f"{base}/login?next=/tv")
        await page.fill("#name", "li.resident")
        await page.fill("#password", password)
        await page.keyboard.press("Enter")
        await page.wait_for_url(at("/tv"))
        await page.wait_for_selector("#tile-check-in")
        # given an SOS on the TV
        await press_sos(broker, topics["h1-sos"])
        await page.wait_for_selector("#alert:not(.hidden)", timeout=10_000)
        # then "Call for help" has the focus
        assert await page.evaluate("document.activeElement.id") == "call-help"
        # when the resident moves to "I'm OK" and presses OK once
        await page.keyboard.press("ArrowRight")
        await page.keyboard.press("Enter")
        # then a confirm step asks, with "No, keep the alarm" focused, and the alarm is still open
        await page.wait_for_selector("#keep-alarm")
        assert await page.evaluate("document.activeElement.id") == "keep-alarm"
        await asyncio.sleep(0.3)
        assert [a.state.value for a in engine.open_alerts("h1")] in (["raised"], ["notified"])
        # a second stray OK keeps the alarm (back to the choice, "Call for help" focused again)
        await page.keyboard.press("Enter")
        assert await page.evaluate("document.activeElement.id") == "call-help"
        assert engine.open_alerts("h1")[0].state.value in ("raised", "notified")
        # only the deliberate path cancels: I'm OK → OK → Right → OK
        await page.keyboard.press("ArrowRight")
        await page.keyboard.press("Enter")
        await page.keyboard.press("ArrowRight")
        assert await page.evaluate("document.activeElement.id") == "confirm-ok"
        await page.keyboard.press("Enter")
        await settle(lambda: engine.open_alerts("h1")[0].state.value == "cancelled", timeout=5)
        await page.wait_for_selector("#alert.hidden", state="attached")


async def test_a_reminder_is_a_calm_card_on_the_tv_not_the_alarm_screen(make_gateway, tmp_path) -> None:
    gateway, base = await portal_gateway(make_gateway)
    await add_home(gateway, "h1")
    password = await add_account(gateway, "li.resident", "resident", "h1")
    engine = gateway.components["alerts"]
    async with browser_page(tmp_path, TV) as page:
        await page.goto(f"{base}/login?next=/tv")
        await page.fill("#name", "li.resident")
        await page.fill("#password", password)
        await page.keyboard.press("Enter")
        await page.wait_for_selector("#tile-check-in")
        # when a medication reminder is due
        await engine.async_raise(
            kind="reminder", household_id="h1", title="服药提醒: 降压药 1 片", severity="info"
        )
        # then it appears as a calm card with OK focused, and the red alarm screen stays away
        await page.wait_for_selector("#notice:not(.hidden)", timeout=10_000)
        assert "降压药" in await page.inner_text("#notice")
        assert await page.evaluate("document.activeElement.id") == "notice-done"
        assert await page.evaluate("document.querySelector('#alert').classList.contains('hidden')")
        # Back puts it away for now, focus back on the tiles
        await page.keyboard.press("Escape")
        await page.wait_for_selector("#notice.hidden", state="attached")
        assert (await page.evaluate("document.activeElement.className")).startswith("tile")
    # and on the box itself a reminder is an info overlay, an SOS an alarm
    assert overlay_level({"kind": "reminder", "severity": "high"}) == "info"
    assert overlay_level({"kind": "sos", "severity": "critical"}) == "alarm"


async def _desk(make_gateway: Any) -> tuple[Any, Any, RecordingChannel]:
    gateway = await make_gateway(components=PORTAL_SERVICES)
    await add_home(gateway, "h1")
    channel = RecordingChannel(db=gateway.store.path)
    gateway.notifier.register(channel)
    return gateway, gateway.components["alerts"], channel


async def test_a_residents_cancel_keeps_the_sos_for_the_duty_desk_with_a_call_back(make_gateway) -> None:
    gateway, engine, channel = await _desk(make_gateway)
    resident_pw = await add_account(gateway, "li.resident", "resident", "h1")
    manager_pw = await add_account(gateway, "wang.manager", "manager")
    alert = await engine.async_raise(kind="sos", household_id="h1", title="SOS")
    async with portal(gateway) as phone, portal(gateway) as desk:
        headers = await sign_in(phone, "li.resident", resident_pw)
        # when the resident cancels ("I'm OK")
        response = await phone.post(f"/api/v1/alerts/{alert.id}/cancel", json={}, headers=headers)
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["state"] == "cancelled" and body["data"]["cancelled"]["call_back"] == "pending"
        # then the duty desk still sees it in its queue, marked as cancelled by the resident
        desk_headers = await sign_in(desk, "wang.manager", manager_pw)
        queue = await (await desk.get("/api/v1/alerts", params={"state": "unresolved"})).json()
        assert [(i["id"], i["state"]) for i in queue["items"]] == [(str(alert.id), "cancelled")]
        # and gets a call-back task on its channels; escalation has stopped
        await settle(lambda: Audience.DUTY_DESK in channel.audiences(alert.id), timeout=5)
        actions = [e["action"] for e in await engine.async_timeline(alert.id)]
        assert "cancelled" in actions and "call_back" in actions
        assert engine.alerts[alert.id].next_step_at is None
        # a carer or the desk may not cancel for the resident
        refused = await desk.post(f"/api/v1/alerts/{alert.id}/cancel", json={}, headers=desk_headers)
        assert (refused.status, (await refused.json())["error"]["code"]) == (403, "forbidden")
        # the desk resolves it once it has called back
        done = await desk.post(
            f"/api/v1/alerts/{alert.id}/resolve", json={"note": "called back, all well"}, headers=desk_headers
        )
        assert (await done.json())["state"] == "resolved"


async def test_a_cancel_where_the_policy_says_close_is_closed_and_marked(make_gateway) -> None:
    gateway, engine, _ = await _desk(make_gateway)
    await engine.async_set_policy(
        "h1", "sos", {"steps": [{"after_s": 0, "audience": "household"}], "on_cancel": "close"}
    )
    alert = await engine.async_raise(kind="sos", household_id="h1", title="SOS")
    closed = await engine.async_cancel(alert.id, "li.resident")
    assert closed.state.value == "resolved" and closed.data["cancelled"]["by"] == "li.resident"
    assert closed.data["cancelled"]["call_back"] is None


@pytest.mark.slow
async def test_a_fall_stays_off_a_carers_websocket_until_its_window_passes(make_gateway) -> None:
    gateway, engine, _ = await _desk(make_gateway)
    await gateway.components["health"].async_grant_consent("h1", by="test", purposes=["carer"])
    carer_pw = await add_account(gateway, "li.daughter", "carer", "h1")
    resident_pw = await add_account(gateway, "li.resident", "resident", "h1")
    clock = [1_800_000_000.0]
    engine.clock = lambda: clock[0]
    # Two people's browsers on one portal (its one `ws` channel reaches both sockets).
    async with portal(gateway) as carer_client, TestClient(carer_client.server) as home_client:
        await sign_in(carer_client, "li.daughter", carer_pw)
        await sign_in(home_client, "li.resident", resident_pw)
        carer = await carer_client.ws_connect("/api/v1/ws")
        home = await home_client.ws_connect("/api/v1/ws")
        for ws in (carer, home):
            assert orjson.loads((await ws.receive()).data)["type"] == "hello"

        async def messages(ws: Any) -> list[dict[str, Any]]:
            seen = []
            while True:
                try:
                    message = await ws.receive(timeout=0.5)
                except TimeoutError:
                    return seen
                seen.append(orjson.loads(message.data))

        # given a fall (its policy holds it for 30 s to the household's own screens)
        fall = await engine.async_raise(kind="fall", household_id="h1", title="Fall")
        await engine.async_run_due()
        # then the household's screens show it, the carer's WebSocket hears nothing, nor do lists
        assert any(m.get("alert", {}).get("id") == str(fall.id) for m in await messages(home))
        assert await messages(carer) == []
        listed = await (await carer_client.get("/api/v1/alerts")).json()
        assert listed["items"] == []
        # when the window passes without a cancel, the carer hears of it
        clock[0] += 30
        await engine.async_run_due()
        heard = await messages(carer)
        assert any(m.get("alert", {}).get("id") == str(fall.id) for m in heard)
        # and a second fall cancelled within its window never reaches the carer at all
        second = await engine.async_raise(kind="fall", household_id="h1", title="Fall again", dedup_key="f2")
        await engine.async_run_due()
        await engine.async_cancel(second.id, "li.resident")
        assert not any(m.get("alert", {}).get("id") == str(second.id) for m in await messages(carer))
        await carer.close()
        await home.close()


async def test_a_fall_in_its_window_is_off_the_duty_desks_overview_and_tree_too(make_gateway) -> None:
    # given a fall the resident may still cancel (30 s window)
    gateway, engine, _ = await _desk(make_gateway)
    manager_pw = await add_account(gateway, "wang.manager", "manager")
    resident_pw = await add_account(gateway, "li.resident", "resident", "h1")
    clock = [1_800_000_000.0]
    engine.clock = lambda: clock[0]
    fall = await engine.async_raise(kind="fall", household_id="h1", title="Fall")
    async with portal(gateway) as desk, portal(gateway) as phone:
        await sign_in(desk, "wang.manager", manager_pw)
        await sign_in(phone, "li.resident", resident_pw)

        async def seen_by(client: Any) -> tuple[list[str], int]:
            overview = await (await client.get("/api/v1/households/h1")).json()
            return [a["id"] for a in overview["alerts"]], overview["status"]["alerts_unresolved"]

        # then the household sees it and the duty desk's overview and counts do not, yet
        assert (await seen_by(phone))[0] == [str(fall.id)]
        assert await seen_by(desk) == ([], 0)
        # when the window passes without a cancel, the desk's overview has it
        clock[0] += 30
        await engine.async_run_due()
        assert await seen_by(desk) == ([str(fall.id)], 1)
