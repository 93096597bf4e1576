"""The portal pages say things in the reader's language and guard against the easy mistakes.

From a QA pass of /app, /tv and /manage: server errors are said by their code (an open
door is named, with a way past it), the TV's grid does not wrap and asks before calling
for help, long TV panels can be read with the arrows, the inbox does not pre-choose a home,
and empty lists say they are empty. Driven in real headless Chromium against a real gateway
and MQTT broker, like tests/test_portal_browser.py.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from linli.gateway.context import Context
from linli.gateway.events import AnnouncementReceived
from linli.sim import discovery_payloads as payloads
from tests.brokers import settle
from tests.discovering import DISCOVERY, discovery_config, inbox_of, item_for, publish_retained
from tests.homes import add_home, publish
from tests.portal_accounts import add_account
from tests.test_portal_browser import PHONE, TV, browser_page, portal_gateway, press_sos
from tests.test_portal_forms import DESKTOP, sign_in

OPEN = {"contact": False, "battery": 90}  # an Aqara contact reports false when the door is open


async def focused(page: Any) -> str:
    return str(await page.evaluate("document.activeElement.id"))


# -- /app --------------------------------------------------------------------------


async def test_an_open_door_is_named_in_chinese_and_arm_anyway_bypasses_it(
    make_gateway, broker, tmp_path
) -> None:
    gateway, base = await portal_gateway(make_gateway, "linli.services.security:Security")
    topics = await add_home(gateway, "h1")
    password = await add_account(gateway, "li.resident", "resident", "h1")
    security = gateway.components["security"]
    await security.async_set_pin("h1", "li.resident", "2468")
    await publish(broker.port, [(topics["h1-door"], OPEN)])
    await settle(lambda: gateway.registry.device("h1-door").states)
    async with browser_page(tmp_path, PHONE) as page:
        await sign_in(page, base, "li.resident", password, "/app")
        await page.click("#tabs button[data-tab=alarm]")
        await page.fill("#pin", "2468")
        await page.click("#arm-away")
        # the refusal names the open door in Chinese, without the server's developer wording
        said = await page.locator("#alarm-error").inner_text(timeout=5_000)
        assert "还有门窗没关" in said and "door" in said
        assert "force" not in said and "household" not in said
        assert security.status("h1")["state"] == "disarmed"
        # and offers the way past it, which arms with the door bypassed
        await page.click("#arm-force")
        await page.wait_for_function("document.querySelector('#alarm-state').className.includes('arming')")
        assert security.status("h1")["state"] == "arming"
        assert [b["device_id"] for b in security.status("h1")["bypassed"]] == ["h1-door"]
        # a wrong PIN is said plainly, not as "wrong PIN for user 'li.resident' in household 'h1'"
        await page.fill("#pin", "1111")
        await page.click("#disarm")
        said = await page.locator("#alarm-error").inner_text(timeout=5_000)
        assert said == "密码 PIN 不对，请重新输入"
        # in English the same refusal is English
        await page.click("#language")
        await page.wait_for_function("document.documentElement.lang === 'en'")
        await page.fill("#pin", "1111")
        await page.click("#disarm")
        said = await page.locator("#alarm-error").inner_text(timeout=5_000)
        assert said == "Wrong PIN: please try again"
        assert security.status("h1")["state"] == "arming"


async def test_the_lockout_says_how_many_seconds_to_wait(make_gateway, tmp_path) -> None:
    gateway, base = await portal_gateway(make_gateway, "linli.services.security:Security")
    await add_home(gateway, "h1")
    password = await add_account(gateway, "li.resident", "resident", "h1")
    await gateway.components["security"].async_set_pin("h1", "li.resident", "2468")
    async with browser_page(tmp_path, PHONE) as page:
        await sign_in(page, base, "li.resident", password, "/app")
        await page.click("#tabs button[data-tab=alarm]")
        for _ in range(10):
            await page.fill("#pin", "1111")
            await page.click("#arm-home")
            said = await page.locator("#alarm-error").inner_text(timeout=5_000)
            if "秒后再试" in said:
                break
        assert said.startswith("密码错误次数太多，请 ") and any(c.isdigit() for c in said), said


async def test_the_banner_devices_and_empty_cards_follow_the_language(make_gateway, broker, tmp_path) -> None:
    gateway, base = await portal_gateway(make_gateway)
    topics = await add_home(gateway, "h1")
    password = await add_account(gateway, "li.resident", "resident", "h1")
    await publish(
        broker.port,
        [(topics["h1-climate"], {"temperature": 25, "humidity": 56.1, "battery": 73, "linkquality": 139})],
    )
    await settle(lambda: gateway.registry.device("h1-climate").states)
    async with browser_page(tmp_path, PHONE) as page:
        await sign_in(page, base, "li.resident", password, "/app")
        # no announcements: the card says so rather than showing a bare heading
        await page.wait_for_function(
            "document.querySelector('#no-announcements')?.textContent === '暂无通知公告'"
        )
        # sending nothing to the TV says what to do
        await page.click("#tv-send")
        assert await page.inner_text("#tv-status") == "请先输入要发送的文字"
        await press_sos(broker, topics["h1-sos"])
        ack = page.locator("#alert-banner button.ack")
        await ack.wait_for(timeout=10_000)
        assert await ack.inner_text() == "我知道了"
        # switching to English switches the banner too
        await page.click("#language")
        await page.wait_for_function(
            "document.querySelector('#alert-banner button.ack').textContent === 'Got it'"
        )
        # devices: capability names in English, internal ones (radio link quality) hidden
        await page.click("#tabs button[data-tab=devices]")
        climate = page.locator('li[data-device="h1-climate"]')
        await climate.locator('[data-cap-key="temperature"]').wait_for()
        text = await climate.inner_text()
        assert "Temperature" in text and "Humidity" in text and "°C" in text
        assert (
            "linkquality" not in text and await climate.locator('[data-cap-key="linkquality"]').count() == 0
        )
        # and back in Chinese
        await page.click("#language")
        await page.wait_for_function("document.documentElement.lang === 'zh-CN'")
        await page.wait_for_function(
            "document.querySelector('#alert-banner button.ack').textContent === '我知道了'"
        )
        await climate.locator('[data-cap-key="humidity"]').wait_for()
        text = await climate.inner_text()
        assert "温度" in text and "湿度" in text and "temperature" not in text


# -- /tv ---------------------------------------------------------------------------


async def test_tv_arrows_stop_at_the_grid_edges_and_empty_panels_say_so(make_gateway, tmp_path) -> None:
    gateway, base = await portal_gateway(make_gateway)
    await add_home(gateway, "h1")
    password = await add_account(gateway, "li.resident", "resident", "h1")
    async with browser_page(tmp_path, TV) as page:
        await sign_in_tv(page, base, password)
        # the grid: check-in, reminders, announcements / vitals, alarm, help
        await page.keyboard.press("ArrowDown")
        assert await focused(page) == "tile-vitals"
        for key in ["ArrowDown", "ArrowLeft"]:  # off the bottom and left edges: nothing happens
            await page.keyboard.press(key)
            assert await focused(page) == "tile-vitals"
        await page.keyboard.press("ArrowUp")
        await page.keyboard.press("ArrowRight")
        await page.keyboard.press("ArrowRight")
        assert await focused(page) == "tile-announcements"
        await page.keyboard.press("ArrowRight")  # no wrap into the next row
        assert await focused(page) == "tile-announcements"
        await page.keyboard.press("ArrowUp")
        assert await focused(page) == "tile-announcements"
        # empty panels say there is nothing, in Chinese
        await page.keyboard.press("Enter")
        assert "暂无通知公告" in await page.inner_text("#panel")
        await page.keyboard.press("Escape")
        await page.keyboard.press("ArrowLeft")
        assert await focused(page) == "tile-reminders"
        await page.keyboard.press("Enter")
        assert "暂无提醒" in await page.inner_text("#panel")
        await page.keyboard.press("Escape")
        assert await focused(page) == "tile-reminders"


async def sign_in_tv(page: Any, base: str, password: str) -> None:
    from tests.test_portal_browser import sign_in as sign_in_page

    await sign_in_page(page, base, "li.resident", password, "/tv")
    await page.wait_for_selector("#tile-check-in")
    await page.wait_for_function("document.activeElement && document.activeElement.id === 'tile-check-in'")


async def test_tv_help_asks_first_and_names_the_home_not_the_login(make_gateway, tmp_path) -> None:
    gateway, base = await portal_gateway(make_gateway)
    await add_home(gateway, "h1")
    password = await add_account(gateway, "li.resident", "resident", "h1")
    engine = gateway.components["alerts"]
    async with browser_page(tmp_path, TV) as page:
        await sign_in_tv(page, base, password)
        for key in ["ArrowDown", "ArrowRight", "ArrowRight"]:
            await page.keyboard.press(key)
        assert await focused(page) == "tile-help"
        # an accidental OK only asks; Back cancels and nothing is raised
        await page.keyboard.press("Enter")
        await page.wait_for_selector("#panel:not(.hidden)")
        assert "要呼叫帮助吗" in await page.inner_text("#panel")
        assert await focused(page) == "help-confirm"
        await page.keyboard.press("Escape")
        assert await focused(page) == "tile-help"
        assert not engine.open_alerts("h1")
        # OK twice calls for help, under the home's name rather than the account's
        await page.keyboard.press("Enter")
        await page.wait_for_function("document.activeElement.id === 'help-confirm'")
        await page.keyboard.press("Enter")
        await settle(lambda: engine.open_alerts("h1"), timeout=5)
        title = engine.open_alerts("h1")[0].title
        assert "h1 home" in title and "li.resident" not in title


async def test_a_long_tv_panel_starts_at_the_top_and_scrolls_with_the_arrows(make_gateway, tmp_path) -> None:
    gateway, base = await portal_gateway(make_gateway)
    await add_home(gateway, "h1")
    password = await add_account(gateway, "li.resident", "resident", "h1")
    now = time.time()
    for n in range(8):
        gateway.bus.fire(
            AnnouncementReceived(
                announcement_id=f"notice-{n}",
                kind="announcement",
                title=f"通知 {n}",
                body="本周六上午九点到十二点停水，请提前储水。" * 4,
                issued_at=now - n,
                expires_at=now + 3600,
                context=Context(origin="uplink"),
            )
        )
    async with browser_page(tmp_path, TV) as page:
        await sign_in_tv(page, base, password)
        await page.wait_for_function(
            "document.querySelector('#tile-announcements small').textContent.includes('通知')"
        )
        await page.keyboard.press("ArrowRight")
        await page.keyboard.press("ArrowRight")
        await page.keyboard.press("Enter")
        panel = page.locator("#panel")
        await panel.wait_for()
        # it opens at the top: the heading and the first notice are in sight, Back has the focus
        assert await page.evaluate("document.querySelector('#panel').scrollTop") == 0
        assert await page.evaluate(
            "document.querySelector('#panel').scrollHeight > document.querySelector('#panel').clientHeight"
        )
        assert await heading_in_sight(page)
        assert await focused(page) == "panel-back"
        # Down scrolls to the end of the text, Up all the way back; Back keeps the focus
        positions = []
        for _ in range(30):
            await page.keyboard.press("ArrowDown")
            positions.append(await page.evaluate("document.querySelector('#panel').scrollTop"))
            if len(positions) > 1 and positions[-1] == positions[-2]:
                break
        assert positions[0] > 0 and positions == sorted(positions)
        assert await page.evaluate(
            "(p => p.scrollTop + p.clientHeight >= p.scrollHeight - 2)(document.querySelector('#panel'))"
        )
        assert await focused(page) == "panel-back"
        box = await page.locator("#panel-back").bounding_box()
        assert box is not None and box["y"] + box["height"] <= TV["height"]  # Back stays in sight
        for _ in range(30):
            await page.keyboard.press("ArrowUp")
        assert await page.evaluate("document.querySelector('#panel').scrollTop") == 0
        assert await heading_in_sight(page)
        await page.keyboard.press("Escape")
        assert await focused(page) == "tile-announcements"


async def heading_in_sight(page: Any) -> bool:
    return bool(
        await page.evaluate(
            "(() => { const p = document.querySelector('#panel').getBoundingClientRect();"
            " const h = document.querySelector('#panel h2').getBoundingClientRect();"
            " return h.top >= p.top && h.bottom <= p.bottom; })()"
        )
    )


# -- /manage -----------------------------------------------------------------------


async def test_the_inbox_makes_the_manager_choose_a_home_and_can_ignore_a_device(
    make_gateway, broker, tmp_path
) -> None:
    gateway, base = await portal_gateway(make_gateway, *DISCOVERY, discovery=discovery_config("mqtt"))
    await add_home(gateway, "h1")
    await add_home(gateway, "h2")
    password = await add_account(gateway, "wang.manager", "manager")
    await publish_retained(broker.port, payloads.linli_native("fr60-7a21", "FR-60", firmware="2.0.3"))
    await publish_retained(broker.port, payloads.linli_native("fr60-7a22", "FR-60", firmware="2.0.3"))
    first = await item_for(inbox_of(gateway), "linli:fr60-7a21")
    second = await item_for(inbox_of(gateway), "linli:fr60-7a22")
    async with browser_page(tmp_path, DESKTOP) as page:
        await sign_in(page, base, "wang.manager", password, "/manage")
        await page.click("#sections button[data-section=inbox]")
        row = page.locator(f'tr[data-inbox="{first.id}"]')
        # no home is chosen for the manager: approving without one is refused by the form
        assert await row.locator(".i-household").input_value() == ""
        assert await row.locator(".i-household option").first.inner_text() == "请选择…"
        await row.locator(".approve").click()
        assert await row.locator(".i-household").evaluate("s => s.validity.valueMissing")
        await page.wait_for_timeout(300)
        assert inbox_of(gateway).get(first.id).status.value == "pending"
        # room and name are still there to fill in
        assert await row.locator(".i-room").count() == 1 and await row.locator(".i-name").count() == 1
        # the other device is ignored with its own button
        await page.locator(f'tr[data-inbox="{second.id}"] button.ignore').click()
        await settle(lambda: inbox_of(gateway).get(second.id).status.value == "ignored", timeout=5)
        await page.locator(f'tr[data-inbox="{second.id}"]').wait_for(state="detached")
        # choosing the home approves into it
        await row.locator(".i-household").select_option("h2")
        await row.locator(".approve").click()
        await settle(lambda: inbox_of(gateway).get(first.id).status.value == "approved", timeout=5)
    assert gateway.registry.device(inbox_of(gateway).get(first.id).device_id).household_id == "h2"


async def test_the_console_says_alert_words_audit_headers_and_empty_lists_in_chinese(
    make_gateway, broker, tmp_path
) -> None:
    gateway, base = await portal_gateway(make_gateway)
    topics = await add_home(gateway, "h1")
    password = await add_account(gateway, "wang.manager", "manager")
    await press_sos(broker, topics["h1-sos"])
    await settle(lambda: gateway.components["alerts"].open_alerts("h1"))
    async with browser_page(tmp_path, DESKTOP) as page:
        await sign_in(page, base, "wang.manager", password, "/manage")
        row = page.locator("tr[data-alert]")
        await row.wait_for()
        assert await row.locator("[data-severity]").inner_text() == "紧急"
        assert await row.locator("[data-kind]").inner_text() == "紧急求助"
        state = await row.locator("[data-state]").inner_text()
        assert state.split("\n")[0] in {"新警报", "已通知"}
        # the audit log has named columns and a Chinese filter placeholder
        await page.click("#sections button[data-section=audit]")
        await page.wait_for_selector("#audit-action")
        headers = await page.locator("#view thead th").all_inner_texts()
        # (the target is named in the action's sentence: tests/test_chinese_first.py)
        assert headers == ["时间", "操作人", "操作", "住户"]
        assert await page.get_attribute("#audit-action", "placeholder") == "操作"
        # no announcements yet: the section says so instead of an empty table
        await page.click("#sections button[data-section=announcements]")
        assert await page.locator("#ann-empty").inner_text() == "暂无通知公告"


# -- the API and the pages' plumbing ----------------------------------------------


async def test_an_announcement_already_expired_or_without_its_scope_id_is_refused(make_gateway) -> None:
    gateway, base = await portal_gateway(make_gateway)
    await add_home(gateway, "h1")
    password = await add_account(gateway, "wang.manager", "manager")
    # unsafe=True: keep the session cookie of a server addressed by IP (127.0.0.1)
    async with aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        signed = await client.post("/api/v1/auth/login", json={"name": "wang.manager", "password": password})
        assert signed.status == 200
        csrf = {"X-CSRF-Token": next(c.value for c in client.cookie_jar if c.key == "linli_csrf")}
        expired = await client.post(
            "/api/v1/announcements",
            json={"title": "旧通知", "scope": "community", "starts": 1, "expires": 2},
            headers=csrf,
        )
        assert expired.status == 400
        assert "past" in (await expired.json())["error"]["message"]
        for scope in ("building", "household"):
            missing = await client.post(
                "/api/v1/announcements", json={"title": "停水", "scope": scope}, headers=csrf
            )
            error = (await missing.json())["error"]
            assert missing.status == 400 and "scope_id" in error["message"] and "None" not in error["message"]
        later = await client.post(
            "/api/v1/announcements",
            json={"title": "停水", "scope": "building", "scope_id": "b1", "expires": time.time() + 3600},
            headers=csrf,
        )
        assert later.status == 201


async def test_the_favicon_is_the_app_icon_and_the_front_page_links_the_portals(make_gateway) -> None:
    _, base = await portal_gateway(make_gateway)
    async with aiohttp.ClientSession(base) as client:
        icon = await client.get("/favicon.ico")
        assert icon.status == 200 and icon.content_type == "image/svg+xml"
        assert (await icon.read()).startswith(b"<svg")
        page = await client.get("/static/index.html")
        text = await page.text()
        assert "follows" not in text and 'href="/manage"' in text
