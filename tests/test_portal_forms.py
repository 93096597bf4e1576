"""The portal's management forms, driven end to end in a real headless Chromium against a real gateway.

Each test fills a form the way a person does (labels, Tab, Enter where it matters)
and then checks the effect through the gateway itself — the account signs in, the
reminder reaches the TV, the approved device is in the registry with its room —
not through the page that made the change. A failing test leaves a screenshot in
its tmp_path (see `browser_page`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from linli.gateway import users
from linli.sim import discovery_payloads as payloads
from tests.brokers import settle
from tests.discovering import DISCOVERY, discovery_config, inbox_of, item_for, publish_retained
from tests.homes import add_home, publish
from tests.portal_accounts import PORTAL_SERVICES, add_account, portal
from tests.portal_accounts import sign_in as api_sign_in
from tests.test_portal_browser import PHONE, TV, browser_page, portal_gateway
from tests.test_portal_browser import sign_in as sign_in_page

DESKTOP = {"width": 1366, "height": 900}
SCRIPT = '<img src=x onerror="document.title=1">'


async def sign_in(page: Any, base: str, name: str, password: str, then: str) -> None:
    """Sign in, then wait until the page's script has drawn its first view (its controls answer).

    The login page's own address ends with `?next=/manage`, so waiting for the URL alone can
    return before the signed-in page has even loaded.
    """
    await sign_in_page(page, base, name, password, then)
    await page.wait_for_selector('nav [aria-current="page"]')


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    """Poll an async `check` until it returns something truthy (the store is read asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            assert result, f"condition not met within {timeout}s: {check}"
            return result
        await asyncio.sleep(0.05)


async def account(gateway: Any, name: str) -> users.User | None:
    return await gateway.store.async_read(lambda c: users.get_user(c, name=name))


async def login_status(base: str, name: str, password: str) -> int:
    async with aiohttp.ClientSession() as session:
        response = await session.post(f"{base}/api/v1/auth/login", json={"name": name, "password": password})
        return response.status


async def announcements_seen_by(base: str, name: str, password: str) -> list[dict[str, Any]]:
    # unsafe=True: keep the session cookie of a server addressed by IP (127.0.0.1)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        signed = await session.post(f"{base}/api/v1/auth/login", json={"name": name, "password": password})
        assert signed.status == 200
        items: list[dict[str, Any]] = (await (await session.get(f"{base}/api/v1/announcements")).json())[
            "items"
        ]
        return items


async def audit_actions(gateway: Any) -> list[str]:
    return [e["action"] for e in await gateway.store.async_read(lambda c: users.query_audit(c)[0])]


# -- /manage: accounts --------------------------------------------------------------


async def test_a_manager_adds_an_account_that_signs_in_then_changes_its_role_disables_and_removes_it(
    make_gateway, tmp_path
) -> None:
    gateway, base = await portal_gateway(make_gateway)
    await add_home(gateway, "h1")
    await add_home(gateway, "h2")
    password = await add_account(gateway, "wang.manager", "manager")
    async with browser_page(tmp_path, DESKTOP) as page:
        await sign_in(page, base, "wang.manager", password, "/manage")
        await page.click("#sections button[data-section=residents]")
        # a household role needs a household: the form will not send without one
        await page.fill("#new-user-name", "zhao.res")
        await page.fill("#new-user-display", SCRIPT)
        await page.select_option("#new-user-role", "resident")
        await page.focus("#new-user-name")
        await page.keyboard.press("Enter")
        assert await page.evaluate("document.querySelector('#new-user-household').validity.valueMissing")
        assert await account(gateway, "zhao.res") is None
        # when the household is chosen and the form sent (Enter, from the keyboard)
        await page.select_option("#new-user-household", "h2")
        await page.focus("#new-user-name")
        await page.keyboard.press("Enter")
        secret = await page.locator("#new-password").inner_text(timeout=5_000)
        # then the account exists in h2 and signs in with the password shown once
        made = await account(gateway, "zhao.res")
        assert made is not None and (made.role.value, made.household_id) == ("resident", "h2")
        assert await login_status(base, "zhao.res", secret) == 200
        # its display name is shown as text, never markup
        row = page.locator('tr[data-user="zhao.res"]')
        assert SCRIPT in await row.inner_text()
        assert await page.locator("#user-list img").count() == 0
        # the role changes to a carer of the same household
        await row.locator(".u-role").select_option("carer")
        await row.locator(".u-save").click()
        await settle_user(gateway, "zhao.res", lambda u: u.role.value == "carer")
        # disabling stops sign-in at once, enabling allows it again
        await page.locator('tr[data-user="zhao.res"] .u-toggle').click()
        await settle_user(gateway, "zhao.res", lambda u: u.disabled)
        assert await login_status(base, "zhao.res", secret) == 401
        await page.wait_for_selector('tr[data-user="zhao.res"].disabled')
        await page.locator('tr[data-user="zhao.res"] .u-toggle').click()
        await settle_user(gateway, "zhao.res", lambda u: not u.disabled)
        assert await login_status(base, "zhao.res", secret) == 200
        # removing asks once more in place, then removes the account
        remove = page.locator('tr[data-user="zhao.res"] .u-remove')
        await remove.click()
        assert await account(gateway, "zhao.res") is not None
        await remove.click()
        await eventually(lambda: _gone(gateway, "zhao.res"))
        await page.wait_for_selector('tr[data-user="zhao.res"]', state="detached")
        # the manager's own row offers no way to lock themselves out
        own = page.locator('tr[data-user="wang.manager"]')
        assert await own.locator(".u-toggle, .u-remove, .u-save").count() == 0
    actions = await audit_actions(gateway)
    assert {"user.add", "user.role", "user.disable", "user.enable", "user.delete"} <= set(actions)


async def test_a_household_admin_adds_a_family_carer_on_the_phone_and_may_give_only_household_roles(
    make_gateway, tmp_path
) -> None:
    gateway, base = await portal_gateway(make_gateway)
    await add_home(gateway, "h1")
    await add_home(gateway, "h2")
    await add_account(gateway, "zhang.res", "resident", "h2")
    password = await add_account(gateway, "li.admin", "household_admin", "h1")
    async with browser_page(tmp_path, PHONE) as page:
        await sign_in(page, base, "li.admin", password, "/app")
        await page.click("#tabs button[data-tab=family]")
        await page.wait_for_selector("#new-user-role")
        roles = await page.eval_on_selector_all("#new-user-role option", "els => els.map(e => e.value)")
        assert roles == ["resident", "household_admin", "carer"]
        await page.fill("#new-user-name", "li.daughter")
        await page.select_option("#new-user-role", "carer")
        await page.click("#user-add button[type=submit]")
        secret = await page.locator("#new-password").inner_text(timeout=5_000)
        made = await account(gateway, "li.daughter")
        assert made is not None and (made.role.value, made.household_id) == ("carer", "h1")
        assert await login_status(base, "li.daughter", secret) == 200
        # only the household's own accounts are listed
        await page.wait_for_selector('tr[data-user="li.daughter"]')
        listed = await page.eval_on_selector_all(
            "#user-list tr[data-user]", "els => els.map(e => e.dataset.user)"
        )
        assert sorted(listed) == ["li.admin", "li.daughter"]
        await page.locator('tr[data-user="li.daughter"] .u-toggle').click()
        await settle_user(gateway, "li.daughter", lambda u: u.disabled)


async def settle_user(gateway: Any, name: str, predicate: Callable[[users.User], bool]) -> None:
    async def check() -> bool:
        user = await account(gateway, name)
        return user is not None and predicate(user)

    await eventually(check)


async def _gone(gateway: Any, name: str) -> bool:
    return await account(gateway, name) is None


# -- /manage: consent overview -------------------------------------------------------


async def test_the_consent_overview_shows_who_consented_and_health_values_only_where_given(
    make_gateway, broker, tmp_path
) -> None:
    gateway, base = await portal_gateway(make_gateway)
    topics = {**await add_home(gateway, "h1"), **await add_home(gateway, "h2")}
    registry, health = gateway.registry, gateway.components["health"]
    for household in ("h1", "h2"):
        await registry.async_add_resident(f"{household}-r1", household, f"{household} 老人")
        await registry.async_assign_device(f"{household}-bp", f"{household}-r1")
    # h1 consents to share with providers (the community's care desk); h2 consents to nothing
    await health.async_grant_consent("h1", by="li.admin", purposes=["provider"])
    before = health.accepted
    await publish(
        broker.port,
        [(topics["h1-bp"], {"sys": 131, "dia": 84}), (topics["h2-bp"], {"sys": 147, "dia": 93})],
    )
    await settle(lambda: health.accepted >= before + 2)
    password = await add_account(gateway, "wang.manager", "manager")
    async with browser_page(tmp_path, DESKTOP) as page:
        await sign_in(page, base, "wang.manager", password, "/manage")
        await page.click("#sections button[data-section=consent]")
        h1, h2 = page.locator('tr[data-household="h1"]'), page.locator('tr[data-household="h2"]')
        assert "✓" in await h1.locator('td[data-purpose="provider"]').inner_text()
        assert "✓" not in await h2.locator('td[data-purpose="provider"]').inner_text()
        assert "✓" not in await h1.locator('td[data-purpose="carer"]').inner_text()
        # the details say who recorded the consent, and show h1's latest blood pressure
        await h1.locator("button.details").click()
        detail = page.locator('tr[data-detail="h1"]')
        await detail.locator("ul.vitals").wait_for(timeout=5_000)
        text = await detail.inner_text()
        assert "li.admin" in text and "131/84" in text
        # h2 never consented: no health value reaches the page
        await h2.locator("button.details").press("Enter")
        await page.locator('tr[data-detail="h2"] .no-consent').wait_for(timeout=5_000)
        assert "147" not in await page.inner_text("#view")


# -- /app: care settings, reminders, thresholds, consent; the TV shows the reminder --------


async def test_a_household_admin_sets_up_care_on_the_phone_and_the_tv_shows_the_reminder(
    make_gateway, tmp_path
) -> None:
    gateway, base = await portal_gateway(make_gateway)
    await add_home(gateway, "h1")
    await gateway.registry.async_add_resident("h1-r1", "h1", "王秀英")
    care, health = gateway.components["eldercare"], gateway.components["health"]
    password = await add_account(gateway, "li.admin", "household_admin", "h1")
    async with browser_page(tmp_path, PHONE) as page:
        await sign_in(page, base, "li.admin", password, "/app")
        await page.click("#tabs button[data-tab=care]")
        # the daily check-in: asked for, by 09:30, with 45 minutes' grace
        await page.check("#check-in-enabled")
        await page.fill("#check-in-by", "09:30")
        await page.fill("#check-in-grace", "45")
        await page.click("#care-check-in button[type=submit]")
        await settle(
            lambda: care.settings("h1")["check_in"] == {"enabled": True, "by": "09:30", "grace_min": 45}
        )
        # inactivity: a 3-hour daytime limit, and away for now
        await page.fill("#inactivity-daytime", "3")
        await page.check("#inactivity-away")
        await page.click("#care-inactivity button[type=submit]")
        await settle(lambda: care.settings("h1")["away"])
        assert care.settings("h1")["inactivity"]["daytime_limit_s"] == 3 * 3600
        assert care.settings("h1")["inactivity"]["overnight_limit_s"] == 12 * 3600  # untouched
        # a medication reminder at two times, typed with the keyboard and sent with Enter
        await page.focus("#reminder-add .r-title")
        await page.keyboard.type("降压药 1 片")
        await page.fill("#reminder-add .r-time", "08:30")
        await page.click("#reminder-add .add-time")
        await page.fill("#reminder-add .r-time >> nth=1", "20:00")
        await page.select_option("#reminder-add .r-resident", "h1-r1")
        await page.focus("#reminder-add .r-title")
        await page.keyboard.press("Enter")
        await settle(lambda: [r.title for r in care.reminders.values()] == ["降压药 1 片"])
        (first,) = care.reminders.values()
        assert (first.times, first.resident_id, first.kind) == (["08:30", "20:00"], "h1-r1", "medication")
        # editing it keeps one reminder, with the new title
        item = page.locator(f'li[data-reminder="{first.id}"]')
        await item.locator(".edit").click()
        await item.locator(".r-title").fill("降压药 2 片")
        await item.locator("button[type=submit]").click()
        await settle(lambda: [r.title for r in care.reminders.values()] == ["降压药 2 片"])
        # thresholds are labelled "not a diagnosis"; a value outside the safe range is refused
        assert "不是诊断" in await page.inner_text("#not-diagnosis")
        # (the reminders card is still reloading after the edit: let the page settle before typing,
        # so that no form is redrawn between a value typed and its submit)
        await page.wait_for_load_state("networkidle")
        form = page.locator('form.thresholds[data-resident="h1-r1"]')
        crisis = form.locator('input[name="systolic_crisis"]')
        await crisis.fill("250")
        assert await crisis.input_value() == "250"
        await form.locator("button[type=submit]").click()
        await form.locator(".form-status.error").wait_for()
        assert health.thresholds("h1-r1").systolic_crisis == 180
        await form.locator('input[name="systolic_crisis"]').fill("170")
        await form.locator("button[type=submit]").click()
        await settle(lambda: health.thresholds("h1-r1").systolic_crisis == 170)
        # consent to share with family carers, then withdraw it
        toggle = page.locator('#consent [data-purpose="carer"] .consent-toggle')
        await toggle.click()
        await settle(lambda: health.may_share("h1", "carer"))
        await page.wait_for_function(
            "document.querySelector('#consent [data-purpose=\"carer\"] .consent-toggle')"
            ".textContent.includes('撤回')"
        )
        await page.locator('#consent [data-purpose="carer"] .consent-toggle').click()
        await settle(lambda: not health.may_share("h1", "carer"))
        # the household's TV lists the reminder (arrow keys and OK only)
        await page.set_viewport_size(TV)
        await page.goto(f"{base}/tv")
        await page.wait_for_selector("#tile-check-in")
        await page.keyboard.press("ArrowRight")
        assert await page.evaluate("document.activeElement.id") == "tile-reminders"
        await page.keyboard.press("Enter")
        assert "08:30 20:00 降压药 2 片" in await page.inner_text("#panel")
        # back on the phone, removing it asks once more
        await page.set_viewport_size(PHONE)
        await page.goto(f"{base}/app")
        await page.click("#tabs button[data-tab=care]")
        (current,) = care.reminders.values()
        remove = page.locator(f'li[data-reminder="{current.id}"] .remove')
        await remove.click()
        await remove.click()
        await settle(lambda: not care.reminders)
    actions = await audit_actions(gateway)
    assert {"health.thresholds", "consent.grant", "consent.withdraw"} <= set(actions)


async def test_a_resident_reads_the_care_settings_but_is_offered_no_change_the_api_would_refuse(
    make_gateway, tmp_path
) -> None:
    gateway, base = await portal_gateway(make_gateway)
    await add_home(gateway, "h1")
    await gateway.registry.async_add_resident("h1-r1", "h1", "王秀英")
    await gateway.components["eldercare"].async_add_reminder("h1", title="量血压", times=["07:00"])
    password = await add_account(gateway, "li.resident", "resident", "h1")
    async with browser_page(tmp_path, PHONE) as page:
        await sign_in(page, base, "li.resident", password, "/app")
        await page.click("#tabs button[data-tab=care]")
        await page.wait_for_selector("#reminder-list li")
        await page.wait_for_selector('form.thresholds[data-resident="h1-r1"]')
        await page.wait_for_selector('#consent [data-purpose="carer"]')
        await page.wait_for_selector("#care-check-in")
        # reading, confirming a reminder: yes; changing settings, thresholds or consent: no
        assert await page.locator("#reminder-list .confirm").count() == 1
        assert await page.locator("#reminder-add, #reminder-list .edit, #reminder-list .remove").count() == 0
        assert await page.locator("#care-check-in fieldset[disabled]").count() == 1
        assert await page.locator("form.thresholds fieldset[disabled]").count() == 1
        assert await page.locator("#consent .consent-toggle").count() == 0
        assert "不是诊断" in await page.inner_text("#not-diagnosis")
        assert await page.locator("#tabs button[data-tab=family]").is_hidden()  # accounts: admins only


# -- /manage: the discovery inbox, care settings, announcements ------------------------


async def test_a_manager_approves_a_discovered_device_into_a_household_room_under_a_name(
    make_gateway, broker, tmp_path
) -> None:
    gateway, base = await portal_gateway(make_gateway, *DISCOVERY, discovery=discovery_config("mqtt"))
    await add_home(gateway, "h1")
    await add_home(gateway, "h2")
    password = await add_account(gateway, "wang.manager", "manager")
    await publish_retained(
        broker.port, payloads.linli_native("fr60-7a21", "FR-60", firmware="2.0.3", name="跌倒雷达")
    )
    item = await item_for(inbox_of(gateway), "linli:fr60-7a21")
    async with browser_page(tmp_path, DESKTOP) as page:
        await sign_in(page, base, "wang.manager", password, "/manage")
        await page.click("#sections button[data-section=inbox]")
        row = page.locator(f'tr[data-inbox="{item.id}"]')
        assert await row.locator(".i-name").input_value() == "跌倒雷达"  # what it calls itself
        assert await row.locator(".i-profile").input_value() == "linli/fall-radar"
        await row.locator(".i-household").select_option("h2")
        await row.locator(".i-room").fill("卫生间")
        await row.locator(".i-name").fill("卫生间跌倒雷达")
        await row.locator(".approve").click()
        await settle(lambda: inbox_of(gateway).get(item.id).status.value == "approved", timeout=5)
        await row.wait_for(state="detached")
    device = gateway.registry.device(inbox_of(gateway).get(item.id).device_id)
    assert (device.household_id, device.room, device.name) == ("h2", "卫生间", "卫生间跌倒雷达")
    assert device.profile.id == "linli/fall-radar"


async def test_a_manager_changes_a_households_care_settings_and_reminders(make_gateway, tmp_path) -> None:
    gateway, base = await portal_gateway(make_gateway)
    await add_home(gateway, "h1")
    await add_home(gateway, "h2")
    care = gateway.components["eldercare"]
    password = await add_account(gateway, "wang.manager", "manager")
    async with browser_page(tmp_path, DESKTOP) as page:
        await sign_in(page, base, "wang.manager", password, "/manage")
        await page.click("#sections button[data-section=care]")
        await page.select_option("#care-household", "h2")
        await page.wait_for_selector("#check-in-by")
        await page.check("#check-in-enabled")
        await page.fill("#check-in-by", "08:15")
        await page.click("#care-check-in button[type=submit]")
        await settle(lambda: care.settings("h2")["check_in"]["by"] == "08:15")
        await page.fill("#reminder-add .r-title", "社区医院复诊")
        await page.select_option("#reminder-add .r-kind", "appointment")
        await page.fill("#reminder-add .r-time", "14:00")
        await page.click("#reminder-add button[type=submit]")
        await settle(lambda: len(care.reminders) == 1)
        (reminder,) = care.reminders.values()
        assert (reminder.household_id, reminder.kind, reminder.times) == ("h2", "appointment", ["14:00"])
        assert care.settings("h1")["check_in"]["enabled"] is False  # the other household is untouched
        # a manager is not offered health thresholds or a household's consent
        assert await page.locator("#thresholds, #consent").count() == 0


async def test_a_manager_schedules_an_announcement_for_one_building_with_an_expiry(
    make_gateway, tmp_path
) -> None:
    gateway, base = await portal_gateway(make_gateway)
    await add_home(gateway, "h1")
    await gateway.registry.async_add_building("b2", "2号楼")
    await gateway.registry.async_add_unit("u-201", "b2", "201")
    password = await add_account(gateway, "wang.manager", "manager")
    starts = (datetime.now() + timedelta(hours=2)).replace(second=0, microsecond=0)
    expires = starts + timedelta(days=3)
    async with browser_page(tmp_path, DESKTOP) as page:
        await sign_in(page, base, "wang.manager", password, "/manage")
        await page.click("#sections button[data-section=announcements]")
        await page.fill("#ann-title", f"停水通知 {SCRIPT}")
        await page.fill("#ann-body", "周六 9:00–12:00 二次供水清洗")
        await page.select_option("#ann-scope", "building:b2")
        await page.fill("#ann-starts", starts.strftime("%Y-%m-%dT%H:%M"))
        await page.fill("#ann-expires", expires.strftime("%Y-%m-%dT%H:%M"))
        await page.click("#ann-form button[type=submit]")
        row = page.locator("tr[data-announcement]")
        await row.wait_for()
        stored = await gateway.store.async_read(
            lambda c: c.execute(
                "SELECT id, scope, scope_id, title, starts, expires FROM announcements"
            ).fetchall()
        )
        ((aid, scope, scope_id, title, start_ts, expire_ts),) = stored
        assert (scope, scope_id, title) == ("building", "b2", f"停水通知 {SCRIPT}")
        assert (start_ts, expire_ts) == (starts.timestamp(), expires.timestamp())
        # listed as scheduled, for 2号楼, its title as text
        text = await row.inner_text()
        assert "待发布" in text and "2号楼" in text and SCRIPT in text
        assert await page.locator("#view img").count() == 0
        # residents of building 1 do not see it (it is not theirs, nor due yet)
        resident = await add_account(gateway, "li.resident", "resident", "h1")
        assert await announcements_seen_by(base, "li.resident", resident) == []
        # withdrawing asks once more in place
        withdraw = row.locator(".withdraw")
        await withdraw.click()
        await withdraw.click()
        await page.wait_for_selector("tr[data-announcement] .badge.bad")
        withdrawn = await gateway.store.async_read(
            lambda c: c.execute("SELECT withdrawn FROM announcements WHERE id = ?", (aid,)).fetchone()[0]
        )
        assert withdrawn is not None


# -- the two small routes the forms needed ---------------------------------------------


async def test_a_household_admin_disables_only_accounts_of_their_own_household_never_their_own(
    make_gateway,
) -> None:
    gateway = await make_gateway(components=PORTAL_SERVICES)
    await add_home(gateway, "h1")
    await add_home(gateway, "h2")
    admin = await add_account(gateway, "li.admin", "household_admin", "h1")
    for name, household in (("li.res", "h1"), ("zhang.res", "h2")):
        await add_account(gateway, name, "resident", household)
    ids = {n: (await account(gateway, n)).id for n in ("li.admin", "li.res", "zhang.res")}  # type: ignore[union-attr]
    async with portal(gateway) as client:
        csrf = await api_sign_in(client, "li.admin", admin)
        for target, status in (("zhang.res", 404), ("li.admin", 403), ("li.res", 200)):
            response = await client.patch(
                f"/api/v1/users/{ids[target]}", json={"disabled": True}, headers=csrf
            )
            assert response.status == status, (target, await response.text())
        nothing = await client.patch(f"/api/v1/users/{ids['li.res']}", json={}, headers=csrf)
        assert (await nothing.json())["error"]["code"] == "invalid_body"
    assert [(await account(gateway, n)).disabled for n in ("li.admin", "li.res", "zhang.res")] == [  # type: ignore[union-attr]
        False,
        True,
        False,
    ]


async def test_a_refused_reminder_change_leaves_the_reminder_as_it_was(make_gateway) -> None:
    gateway = await make_gateway(components=PORTAL_SERVICES)
    await add_home(gateway, "h1")
    await add_home(gateway, "h2")
    await gateway.registry.async_add_resident("h2-r1", "h2", "张")
    care = gateway.components["eldercare"]
    reminder = await care.async_add_reminder("h1", title="量血压", times=["07:00"])
    admin = await add_account(gateway, "li.admin", "household_admin", "h1")
    async with portal(gateway) as client:
        csrf = await api_sign_in(client, "li.admin", admin)
        url = f"/api/v1/households/h1/care/reminders/{reminder.id}"
        for body in (
            {"title": " ", "times": ["07:00"]},
            {"title": "x", "times": ["07:00"], "resident_id": "h2-r1"},
        ):
            refused = await client.put(url, json=body, headers=csrf)
            assert refused.status in (400, 404), await refused.text()
        assert list(care.reminders) == [reminder.id]
        changed = await client.put(url, json={"title": "量血压", "times": ["07:30"]}, headers=csrf)
        assert changed.status == 200
        body = await changed.json()
        assert body["replaces"] == reminder.id and [r.times for r in care.reminders.values()] == [["07:30"]]
