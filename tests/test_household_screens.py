"""Screens a household and the duty desk need, in a real headless Chromium: the alarm PIN, a live
Home tab, health trends with axes and units, the household's data, an alert's escalation history."""

from __future__ import annotations

from typing import Any

from tests.brokers import settle
from tests.homes import add_home, publish
from tests.portal_accounts import add_account
from tests.test_portal_browser import PHONE, browser_page, portal_gateway, press_sos, sign_in

SECURITY = "linli.services.security:Security"


async def test_a_resident_sets_an_alarm_pin_and_changing_it_needs_the_current_one(
    make_gateway, tmp_path
) -> None:
    # given a resident who has no PIN yet
    gateway, base = await portal_gateway(make_gateway, SECURITY)
    await add_home(gateway, "h1")
    password = await add_account(gateway, "li.resident", "resident", "h1")
    security = gateway.components["security"]
    async with browser_page(tmp_path, PHONE) as page:
        await sign_in(page, base, "li.resident", password, "/app")
        await page.click("#tabs button[data-tab=alarm]")
        await page.wait_for_selector("#pin-card #pin-new")
        assert await page.locator("#pin-current").count() == 0  # nothing to confirm yet
        # when they choose one (typed twice)
        await page.fill("#pin-new", "2468")
        await page.fill("#pin-repeat", "2468")
        await page.click("#pin-save")
        await page.wait_for_selector("#pin-status.ok")
        # then it works on the keypad
        assert "li.resident" in security.status("h1")["users"]
        await page.fill("#pin", "2468")
        await page.click("#arm-away")
        await page.wait_for_function("document.querySelector('#alarm-state').className.includes('arming')")
        # and changing it asks for the current PIN: a wrong one changes nothing
        await page.reload()
        await page.click("#tabs button[data-tab=alarm]")
        await page.wait_for_selector("#pin-current")
        await page.fill("#pin-current", "1111")
        await page.fill("#pin-new", "1357")
        await page.fill("#pin-repeat", "1357")
        await page.click("#pin-save")
        await page.wait_for_selector("#pin-status.error")
        await page.fill("#pin", "2468")
        await page.click("#disarm")
        await page.wait_for_function("document.querySelector('#alarm-state').className.includes('disarmed')")


async def test_the_home_tab_follows_a_door_opening_without_a_reload(make_gateway, broker, tmp_path) -> None:
    # given a resident looking at the Home tab, every door closed
    gateway, base = await portal_gateway(make_gateway)
    topics = await add_home(gateway, "h1")
    password = await add_account(gateway, "li.resident", "resident", "h1")
    await publish(broker.port, [(topics["h1-door"], {"contact": True})])
    async with browser_page(tmp_path, PHONE) as page:
        await sign_in(page, base, "li.resident", password, "/app")
        await page.wait_for_selector("#alarm-state")
        assert await page.locator("#view .ok").count() >= 1  # "all closed"
        before = await page.inner_text("#view")
        # when the front door opens
        await publish(broker.port, [(topics["h1-door"], {"contact": False})])
        # then the Home tab names it, live
        await page.wait_for_function(
            "(before) => document.querySelector('#view').innerText !== before", arg=before, timeout=10_000
        )
        door = gateway.registry.device("h1-door")
        await page.wait_for_function(
            "(name) => document.querySelector('#view').innerText.includes(name)",
            arg=door.name,
            timeout=10_000,
        )


async def test_health_trends_have_axes_units_and_reference_ranges(make_gateway, broker, tmp_path) -> None:
    # given 王秀英 with her own blood-pressure cuff and a few readings
    gateway, base = await portal_gateway(make_gateway)
    topics = await add_home(gateway, "h1")
    await gateway.registry.async_add_resident("r-wang", "h1", "王秀英")
    await gateway.registry.async_assign_device("h1-bp", "r-wang")
    health = gateway.components["health"]
    for sys_, dia, pulse in [(128, 82, 71), (135, 88, 76), (142, 91, 80)]:
        await publish(broker.port, [(topics["h1-bp"], {"sys": sys_, "dia": dia, "pul": pulse})])
    await settle(lambda: health.accepted >= 6, timeout=10)
    await health.async_flush()
    password = await add_account(gateway, "li.resident", "resident", "h1")
    async with browser_page(tmp_path, PHONE) as page:
        await sign_in(page, base, "li.resident", password, "/app")
        await page.click("#tabs button[data-tab=health]")
        # then every measured vital has a chart, with its unit, value ticks, time ticks and a reference band
        chart = page.locator('.vital-card[data-kind="blood_pressure"] svg.axis-chart')
        await chart.wait_for(timeout=10_000)
        assert await chart.get_attribute("data-unit") == "毫米汞柱"
        assert int(await chart.get_attribute("data-points")) >= 2  # systolic and diastolic
        assert await chart.locator("text.y-tick").count() >= 3
        assert await chart.locator("text.x-tick").count() >= 2
        assert await chart.locator("rect.reference").count() == 2
        assert await page.locator('.vital-card[data-kind="heart_rate"] svg.axis-chart').count() == 1
        card = await page.inner_text('.vital-card[data-kind="blood_pressure"]')
        assert "142/91" in card and "参考范围" in card
        # and a day, a week or a month can be chosen
        for period in ("day", "month"):
            await page.click(f'#period button[data-period="{period}"]')
            await page.wait_for_selector(f'#period button[data-period="{period}"][aria-pressed="true"]')
            await chart.wait_for()
        assert "null" not in await page.inner_text("#view")


async def test_a_household_admin_exports_and_deletes_only_after_confirming(make_gateway, tmp_path) -> None:
    gateway, base = await portal_gateway(make_gateway)
    await add_home(gateway, "h1")
    await gateway.registry.async_add_resident("r-wang", "h1", "王秀英")
    password = await add_account(gateway, "li.admin", "household_admin", "h1")
    async with browser_page(tmp_path, PHONE) as page:
        await sign_in(page, base, "li.admin", password, "/app")
        await page.click("#tabs button[data-tab=family]")
        # exporting downloads the household's data
        async with page.expect_download() as download:
            await page.click("#export-data")
        assert (await download.value).suggested_filename.endswith(".json")
        # deleting opens a confirmation with Cancel focused; Enter there deletes nothing
        await page.click("#delete-data")
        await page.wait_for_selector("#delete-confirm:not(.hidden)")
        assert await page.evaluate("document.activeElement.id") == "delete-cancel"
        await page.keyboard.press("Enter")
        await page.wait_for_selector("#delete-confirm.hidden", state="attached")
        assert "r-wang" in gateway.registry.residents
        # a wrong word deletes nothing either
        await page.click("#delete-data")
        await page.fill("#delete-word", "好")
        await page.click("#delete-now")
        await page.wait_for_selector("#data-status.error")
        assert "r-wang" in gateway.registry.residents
        # the word itself does
        await page.fill("#delete-word", "删除")
        await page.click("#delete-now")
        await page.wait_for_selector("#data-status.ok")
        assert "r-wang" not in gateway.registry.residents


async def test_the_duty_desk_reads_an_alerts_escalation_history(make_gateway, broker, tmp_path) -> None:
    gateway, base = await portal_gateway(make_gateway)
    topics = await add_home(gateway, "h1")
    password = await add_account(gateway, "desk", "manager", None)
    engine = gateway.components["alerts"]
    await press_sos(broker, topics["h1-sos"])
    await settle(lambda: engine.open_alerts("h1"), timeout=10)
    [alert] = engine.open_alerts("h1")
    await engine.async_run_due()
    async with browser_page(tmp_path, PHONE) as page:
        await sign_in(page, base, "desk", password, "/manage")
        row = page.locator(f'tr[data-alert="{alert.id}"]')
        await row.wait_for(timeout=10_000)
        await row.locator("button.timeline-toggle").click()
        history = page.locator(f'tr[data-timeline="{alert.id}"] li')
        await history.first.wait_for()
        actions: list[Any] = [await li.get_attribute("data-action") for li in await history.all()]
        assert actions[0] == "raised" and "notifying" in actions
        text = await page.inner_text(f'tr[data-timeline="{alert.id}"]')
        assert "告警产生" in text and "第 1 步" in text
