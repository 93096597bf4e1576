"""Approving many inbox items at once: one call, one household and room, each refusal with its reason."""

from __future__ import annotations

import sqlite3

from linli.gateway.discovery import InboxStatus
from linli.sim import discovery_payloads as payloads
from tests.discovering import DISCOVERY, inbox_of, item_for, portal_client, publish_retained, start
from tests.portal_accounts import add_account
from tests.test_discovery_inbox import _household


async def test_a_manager_approves_selected_items_into_a_room_in_one_call(make_gateway, broker) -> None:
    # given five fall radars waiting in the inbox, one of them already approved, and a household
    gateway = await start(make_gateway, "mqtt")
    await _household(gateway)
    serials = [f"fr60-b{n:03d}" for n in range(5)]
    for serial in serials:
        await publish_retained(broker.port, payloads.linli_native(serial, "FR-60", firmware="2.0.3"))
    inbox = inbox_of(gateway)
    items = [await item_for(inbox, f"linli:{serial}") for serial in serials]
    await inbox.async_approve(items[0].id, household_id="h1", by="wang.manager")
    selected = [item.id for item in items] + ["no-such-item"]
    # when the manager approves the selection into h1's living room, in one call
    async with portal_client(gateway, "wang.manager") as client:
        response = await client.post(
            "/api/v1/inbox/bulk-approve", json={"items": selected, "household_id": "h1", "room": "客厅"}
        )
        assert response.status == 200, await response.text()
        body = await response.json()
        # and a malformed selection is a clear refusal
        bad = await client.post("/api/v1/inbox/bulk-approve", json={"items": "all", "household_id": "h1"})
        assert (bad.status, (await bad.json())["error"]["code"]) == (400, "bad_request")
        nowhere = await client.post(
            "/api/v1/inbox/bulk-approve", json={"items": selected, "household_id": "h9"}
        )
        assert (await nowhere.json())["error"]["code"] == "no_household"
    # then the four waiting ones are devices of h1, in that room, and the other two say why not
    approved = {entry["item_id"]: entry["device"] for entry in body["approved"]}
    assert set(approved) == {item.id for item in items[1:]}
    for item in items[1:]:
        device = gateway.registry.device(approved[item.id]["id"])
        assert (device.household_id, device.room, device.profile.id) == ("h1", "客厅", "linli/fall-radar")
        assert inbox.get(item.id).status is InboxStatus.APPROVED
    assert {(r["item_id"], r["error"]["code"]) for r in body["refused"]} == {
        (items[0].id, "already_approved"),
        ("no-such-item", "not_found"),
    }
    # every decision is recorded with who took it, and the call is in the audit log
    await inbox.async_flush()
    with sqlite3.connect(gateway.store.path) as conn:
        decided = conn.execute("SELECT item_id, by FROM inbox_decisions WHERE action = 'approved'").fetchall()
        audit = conn.execute(
            "SELECT actor, action, detail FROM audit WHERE action = 'device.approve_many'"
        ).fetchall()
    assert {item_id for item_id, _ in decided} == {item.id for item in items}
    assert {by for _, by in decided} == {"wang.manager"}
    assert [(a, b) for a, b, _ in audit] == [("wang.manager", "device.approve_many")]


async def test_residents_may_not_approve_in_bulk(make_gateway, broker) -> None:
    gateway = await start(make_gateway, "mqtt")
    await _household(gateway)
    await add_account(gateway, "li.resident", "resident", "h1")
    async with portal_client(gateway, "li.resident", role="resident") as client:
        response = await client.post(
            "/api/v1/inbox/bulk-approve", json={"items": ["x"], "household_id": "h1"}
        )
    assert response.status in (403, 401)
    assert gateway.registry.household_devices("h1") == []


async def test_the_manager_approves_ticked_items_with_one_press_in_manage(
    make_gateway, broker, tmp_path
) -> None:
    from tests.discovering import discovery_config
    from tests.test_portal_browser import browser_page, portal_gateway, sign_in

    # given three radars waiting and a manager on the inbox page
    gateway, base = await portal_gateway(make_gateway, *DISCOVERY, discovery=discovery_config("mqtt"))
    await _household(gateway)
    password = await add_account(gateway, "wang.manager", "manager")
    for n in range(3):
        await publish_retained(broker.port, payloads.linli_native(f"fr60-c{n}", "FR-60", firmware="2.0.3"))
    inbox = inbox_of(gateway)
    items = [await item_for(inbox, f"linli:fr60-c{n}") for n in range(3)]
    async with browser_page(tmp_path, {"width": 1366, "height": 900}) as page:
        await sign_in(page, base, "wang.manager", password, "/manage")
        await page.click("#sections button[data-section=inbox]")
        await page.wait_for_selector("#bulk-bar")
        # pressing without a home chosen approves nothing and says why
        await page.check("#bulk-all")
        await page.click("#bulk-approve")
        await page.wait_for_selector("#bulk-status.error")
        assert all(inbox.get(item.id).status is InboxStatus.PENDING for item in items)
        # when two are ticked, the home and room chosen, and the one button pressed
        await page.uncheck("#bulk-all")
        for item in items[:2]:
            await page.check(f'input.i-select[data-item="{item.id}"]')
        assert "（2）" in await page.inner_text("#bulk-approve")
        await page.select_option("#bulk-household", "h1")
        await page.fill("#bulk-room", "卧室")
        await page.click("#bulk-approve")
        # then those two are devices of h1 in the bedroom, the third still waits, and the page says so
        await page.wait_for_selector("#bulk-status.ok")
        assert "已批准 2 台设备" in await page.inner_text("#bulk-status")
        assert [inbox.get(item.id).status for item in items] == [
            InboxStatus.APPROVED,
            InboxStatus.APPROVED,
            InboxStatus.PENDING,
        ]
        assert {d.room for d in gateway.registry.household_devices("h1")} == {"卧室"}
        await page.wait_for_selector(f'tr[data-inbox="{items[2].id}"]')
