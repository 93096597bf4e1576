"""The phone, TV and manager pages in a real headless Chromium (Debian's), driven by Playwright.

Each test signs in through the login page like a person, with real MQTT
devices behind the gateway. A failing test leaves a screenshot in its tmp_path.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from linli.gateway import users
from linli.gateway.context import Context
from linli.gateway.events import AnnouncementReceived
from linli.sim import discovery_payloads as payloads
from tests.brokers import free_port, settle
from tests.discovering import DISCOVERY, discovery_config, inbox_of, item_for, publish_retained
from tests.homes import add_home, publish
from tests.infrastructure import require, require_chromium
from tests.portal_accounts import PORTAL_SERVICES, add_account
from tests.tiers import expect_marked

try:  # in the test extra; missing, the browser tests skip (fail under CI) like a missing Chromium
    from playwright import async_api as playwright_api
except ImportError:
    playwright_api = None
PHONE = {"width": 390, "height": 844}
TV = {"width": 1280, "height": 720}


@contextlib.asynccontextmanager
async def browser_page(tmp_path: Path, viewport: dict[str, int]) -> AsyncIterator[Any]:
    expect_marked("browser")
    chromium = require_chromium()
    playwright = require("Playwright", playwright_api, "pip install -e '.[test]'")
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        # The pages forbid eval (CSP); the test harness needs it for wait_for_function.
        page = await browser.new_page(viewport=viewport, bypass_csp=True)
        errors: list[str] = []
        page._linli_errors = errors
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
        try:
            yield page
            assert not errors, f"the page raised: {errors}"
        except BaseException:
            with contextlib.suppress(Exception):
                await page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
        finally:
            await browser.close()


def errors_of(page: Any) -> list[str]:
    return list(page._linli_errors)


async def sign_in(page: Any, base: str, name: str, password: str, then: str) -> None:
    # An unpaired /tv shows its pairing code rather than the login form (tests/test_tv_pairing.py).
    await page.goto(f"{base}/login?next={then}" if then == "/tv" else f"{base}{then}")
    await page.wait_for_url("**/login**")
    await page.fill("#name", name)
    await page.fill("#password", password)
    await page.keyboard.press("Enter")
    await page.wait_for_url(at(then))


def at(path: str) -> Any:
    """A URL test for `page.wait_for_url`: this path exactly (the login page's own address,
    `/login?next=/manage`, also ends with `/manage`, so a glob would match it too)."""
    return lambda url: urlsplit(url).path == path


async def portal_gateway(make_gateway: Any, *extra: str, **kw: Any) -> tuple[Any, str]:
    port = free_port()
    gateway = await make_gateway(
        components=[*PORTAL_SERVICES, *extra, "linli.portal.app:Portal"],
        portal={"enabled": True, "port": port},
        **kw,
    )
    return gateway, f"http://127.0.0.1:{port}"


async def press_sos(broker: Any, topic: str) -> None:
    await publish(broker.port, [(topic, {"sos": "idle"}), (topic, {"sos": "pressed"})])


async def test_a_resident_sees_an_sos_on_the_phone_and_acknowledges_it_in_one_tap(
    make_gateway, broker, tmp_path
) -> None:
    gateway, base = await portal_gateway(make_gateway)
    topics = await add_home(gateway, "h1")
    password = await add_account(gateway, "li.resident", "resident", "h1")
    engine = gateway.components["alerts"]
    async with browser_page(tmp_path, PHONE) as page:
        await sign_in(page, base, "li.resident", password, "/app")
        await page.wait_for_selector("#alarm-state")
        # when the pendant is pressed, the phone shows the alert live (WebSocket)
        await press_sos(broker, topics["h1-sos"])
        banner = page.locator("#alert-banner button.ack")
        await banner.wait_for(timeout=10_000)
        assert "紧急求助" in await page.inner_text("#alert-banner")  # said in Chinese first
        # then one tap acknowledges it
        await banner.click()
        await settle(lambda: engine.open_alerts("h1")[0].state.value == "acknowledged", timeout=5)
        assert engine.open_alerts("h1")[0].acknowledged_by == "li.resident"
        await page.locator("#alert-banner").wait_for(state="hidden")


async def test_a_resident_arms_and_disarms_on_a_phone(make_gateway, tmp_path) -> None:
    gateway, base = await portal_gateway(make_gateway, "linli.services.security:Security")
    await add_home(gateway, "h1")
    password = await add_account(gateway, "li.resident", "resident", "h1")
    security = gateway.components["security"]
    await security.async_set_pin("h1", "li.resident", "2468")
    async with browser_page(tmp_path, PHONE) as page:
        await sign_in(page, base, "li.resident", password, "/app")
        await page.click("#tabs button[data-tab=alarm]")
        await page.fill("#pin", "2468")
        await page.click("#arm-away")
        await page.wait_for_function("document.querySelector('#alarm-state').className.includes('arming')")
        assert security.status("h1")["state"] == "arming"
        await page.fill("#pin", "1111")
        await page.click("#disarm")
        await page.wait_for_function("document.querySelector('#alarm-message').textContent.length > 0")
        assert security.status("h1")["state"] == "arming"  # a wrong PIN changes nothing
        await page.fill("#pin", "2468")
        await page.click("#disarm")
        await page.wait_for_function("document.querySelector('#alarm-state').className.includes('disarmed')")
        assert security.status("h1")["state"] == "disarmed"


async def test_tv_keyboard_only_check_in_and_im_ok_on_an_sos(make_gateway, broker, tmp_path) -> None:
    gateway, base = await portal_gateway(make_gateway)
    topics = await add_home(gateway, "h1")
    password = await add_account(gateway, "li.resident", "resident", "h1")
    care, engine = gateway.components["eldercare"], gateway.components["alerts"]
    async with browser_page(tmp_path, TV) as page:
        # signing in on the box's browser with a resident's account: typing and Enter only
        # (an unpaired /tv shows a pairing code instead: tests/test_tv_pairing.py)
        await page.goto(f"{base}/login?next=/tv")
        await page.keyboard.type("li.resident")
        await page.keyboard.press("Tab")
        await page.keyboard.type(password)
        await page.keyboard.press("Enter")
        await page.wait_for_url(at("/tv"))
        await page.wait_for_selector("#tile-check-in")
        assert await page.evaluate("document.documentElement.lang") == "zh-CN"
        # the daily check-in is one press of OK: it has the focus
        assert await page.evaluate("document.activeElement.id") == "tile-check-in"
        await page.keyboard.press("Enter")
        await settle(lambda: care.checked_in_today("h1"), timeout=5)
        await page.wait_for_selector("#tile-check-in.done")  # the screen says so, too
        # every tile is reachable with the arrows, and focus is always visible
        seen = set()
        for key in ["ArrowRight", "ArrowRight", "ArrowDown", "ArrowLeft", "ArrowLeft", "ArrowUp"]:
            await page.keyboard.press(key)
            seen.add(await page.evaluate("document.activeElement.id"))
            outline = await page.evaluate("getComputedStyle(document.activeElement).borderColor")
            assert outline == "rgb(255, 214, 10)"
        assert {"tile-reminders", "tile-announcements", "tile-help", "tile-vitals"} <= seen
        # a panel opens with OK and closes with Back, focus returning to the tiles
        await page.keyboard.press("Enter")
        await page.keyboard.press("Escape")
        assert (await page.evaluate("document.activeElement.className")).startswith("tile")
        # when an SOS arrives, it takes the whole screen with "Call for help" focused (issue 14)
        await press_sos(broker, topics["h1-sos"])
        await page.wait_for_selector("#alert:not(.hidden)", timeout=10_000)
        assert await page.evaluate("document.activeElement.id") == "call-help"
        box = await page.locator("#alert").bounding_box()
        assert box["width"] == TV["width"] and box["height"] == TV["height"]
        await page.keyboard.press("ArrowRight")
        assert await page.evaluate("document.activeElement.id") == "im-ok"
        await page.keyboard.press("Enter")  # "I'm OK" asks again, "keep the alarm" focused
        await page.keyboard.press("ArrowRight")
        await page.keyboard.press("Enter")
        # kept as cancelled by the resident (the duty desk calls back), and off the TV
        await settle(lambda: [a.state.value for a in engine.open_alerts("h1")] == ["cancelled"], timeout=5)
        await page.wait_for_selector("#alert.hidden", state="attached")


async def test_a_regional_emergency_broadcast_takes_the_tv_screen_at_once(
    make_gateway, broker, tmp_path
) -> None:
    gateway, base = await portal_gateway(make_gateway)
    await add_home(gateway, "h1")
    password = await add_account(gateway, "li.resident", "resident", "h1")
    async with browser_page(tmp_path, TV) as page:
        await sign_in(page, base, "li.resident", password, "/tv")
        await page.wait_for_selector("#tile-check-in")
        # when the uplink has verified the region's emergency broadcast (see test_uplink_downlink)
        now = time.time()
        gateway.bus.fire(
            AnnouncementReceived(
                announcement_id="flood-1",
                kind="emergency",
                title="防汛紧急通知",
                body="请立即将车辆驶离地下车库 · Move vehicles out of the underground car park now.",
                issued_at=now,
                expires_at=now + 3600,
                context=Context(origin="uplink"),
            )
        )
        # then the TV shows it without anyone pressing a key, marked as an emergency, Back focused
        await page.wait_for_selector("#panel:not(.hidden) .emergency", timeout=10_000)
        text = await page.inner_text("#panel")
        assert "紧急通知" in text and "防汛紧急通知" in text and "来自区域平台" in text
        assert await page.evaluate("document.activeElement.id") == "panel-back"
        await page.keyboard.press("Escape")
        assert (await page.evaluate("document.activeElement.className")).startswith("tile")


async def test_the_tv_overlay_shows_the_message_it_is_given_as_text_in_its_level(
    make_gateway, tmp_path
) -> None:
    # given the overlay page a web-overlay box loads, asked to show markup in the alarm style
    _, base = await portal_gateway(make_gateway)
    text = '<img src=x onerror="document.title=1">晚饭好了'
    async with browser_page(tmp_path, TV) as page:
        await page.goto(
            f"{base}/screens/overlay?" + urlencode({"text": text, "title": "家", "level": "alarm"})
        )
        # then it shows exactly what it was given, as words, coloured as an alarm
        await page.wait_for_selector(".overlay.level-alarm:not([hidden])")
        assert await page.inner_text(".overlay p") == text
        assert await page.inner_text(".overlay h1") == "家"
        assert await page.locator(".overlay img").count() == 0 and await page.title() == "家"
        colour = await page.evaluate("getComputedStyle(document.querySelector('.overlay')).backgroundColor")
        assert colour == "rgb(176, 0, 32)"
        # and a level it does not know is shown as information, never unstyled
        await page.goto(f"{base}/screens/overlay?" + urlencode({"text": "x", "level": "panic"}))
        await page.wait_for_selector(".overlay.level-info:not([hidden])")


async def test_a_manager_approves_an_inbox_device_and_resolves_an_alert(
    make_gateway, broker, tmp_path
) -> None:
    gateway, base = await portal_gateway(make_gateway, *DISCOVERY, discovery=discovery_config("mqtt"))
    topics = await add_home(gateway, "h1")
    password = await add_account(gateway, "wang.manager", "manager")
    await publish_retained(
        broker.port, payloads.linli_native("fr60-7a21", "FR-60", firmware="2.0.3", name="卫生间跌倒雷达")
    )
    item = await item_for(inbox_of(gateway), "linli:fr60-7a21")
    await press_sos(broker, topics["h1-sos"])
    engine = gateway.components["alerts"]
    await settle(lambda: engine.open_alerts("h1"))
    async with browser_page(tmp_path, {"width": 1366, "height": 900}) as page:
        await sign_in(page, base, "wang.manager", password, "/manage")
        # the live queue shows the SOS with its escalation timer counting
        row = page.locator("tr[data-alert]")
        await row.wait_for()
        assert "紧急求助" in await row.inner_text()  # said in Chinese first
        first = await page.inner_text("tr[data-alert] .timer.escalation")
        await page.wait_for_timeout(1100)
        assert await page.inner_text("tr[data-alert] .timer.escalation") != first
        # resolve with a note
        await page.fill("tr[data-alert] input.note", "上门查看，老人安好")
        await page.click("tr[data-alert] button.resolve")
        await settle(lambda: not engine.open_alerts("h1"), timeout=5)
        await page.wait_for_selector("#queue-empty")
        # approve the discovered device into h1
        await page.click("#sections button[data-section=inbox]")
        await page.select_option(f'tr[data-inbox="{item.id}"] .i-household', "h1")  # no home is preselected
        await page.click(f'tr[data-inbox="{item.id}"] button.approve')
        await settle(lambda: inbox_of(gateway).get(item.id).status.value == "approved", timeout=5)
    entries = [e["action"] for e in await gateway.store.async_read(lambda c: users.query_audit(c)[0])]
    assert "device.approve" in entries and "alert.resolve" in entries
