"""Chinese first, everywhere (issue 14): names in the reader's language, alerts said from a key,
audit entries and validation errors as sentences, and never an internal id on a screen.

The pages run in a real headless Chromium against a gateway holding the demo's own community
(linli/sim/layout.py: the same buildings, homes, 15 devices each, residents), with alerts raised
by real MQTT messages from the demo's devices.
"""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator

from linli.gateway.mqtt.topics import device_topic
from linli.portal.api.messages import sentence
from linli.sim.community import _add_residents
from linli.sim.layout import GLUCOSE_METER, HOME_DEVICES, ROOMS, layout
from tests.brokers import settle
from tests.homes import publish
from tests.portal_accounts import add_account, portal, sign_in
from tests.test_portal_browser import PHONE, TV, at, browser_page, portal_gateway
from tests.test_portal_browser import sign_in as sign_in_page

# What must never be on a screen: a household id (h0001), a device id (h0001-sos-pendant), an empty
# object or an unfilled template (`{}`, `{name}`), a raw audit action (`user.add`).
INTERNAL = re.compile(r"\bh\d{4}\b|\bh\d{4}-[a-z]|\{\}|\{[a-z_]+\}|\buser\.add\b|\blogin\b")
# English names of the demo's devices and rooms, each of which has a Chinese form.
ENGLISH = sorted(
    {forms["en"] for *_, forms in HOME_DEVICES} | {GLUCOSE_METER["en"]} | {r["en"] for r in ROOMS.values()},
    key=len,
    reverse=True,
)


def leaks(text: str) -> list[str]:
    """Internal ids and English device or room names found in a page's visible text."""
    found = [m.group(0) for m in INTERNAL.finditer(text)]
    found += [name for name in ENGLISH if re.search(rf"\b{re.escape(name)}\b", text)]
    return found


async def demo_community(make_gateway: Any) -> tuple[Any, str]:
    """A portal gateway holding the demo's first two homes, their devices and residents."""
    gateway, base = await portal_gateway(make_gateway, "linli.services.security:Security")
    await gateway.registry.async_import(**layout(2))
    await _add_residents(gateway, 2)
    return gateway, base


async def raise_demo_alerts(gateway: Any, broker: Any) -> None:
    """In h0001: the front door opens, the pendant is pressed, the kitchen smoke alarm goes off."""

    def topic(suffix: str) -> str:
        return device_topic("h0001", f"h0001-{suffix}")

    await publish(
        broker.port,
        [
            (topic("front-door"), {"contact": True}),
            (topic("front-door"), {"contact": False}),  # Zigbee2MQTT: contact true is closed
            (topic("sos-pendant"), {"sos": "idle"}),
            (topic("sos-pendant"), {"sos": "pressed"}),
            (topic("smoke-kitchen"), {"smoke": False}),
            (topic("smoke-kitchen"), {"smoke": True}),
        ],
    )
    engine = gateway.components["alerts"]
    await settle(lambda: {a.kind for a in engine.open_alerts("h0001")} >= {"sos", "smoke"}, timeout=10)


async def visible_text(page: Any) -> str:
    return str(await page.evaluate("document.body.innerText"))


# -- the pages -----------------------------------------------------------------------------------


async def test_no_page_in_chinese_shows_an_internal_id_or_an_english_name_with_a_chinese_one(
    make_gateway, broker, tmp_path
) -> None:
    # given the demo's community, a household admin of its first home and the property manager,
    # with an SOS, a smoke alarm and an open front door in that home
    gateway, base = await demo_community(make_gateway)
    admin = await add_account(gateway, "wang.admin", "household_admin", "h0001")
    manager = await add_account(gateway, "zhou.manager", "manager")
    resident = await add_account(gateway, "wang.resident", "resident", "h0001")
    await raise_demo_alerts(gateway, broker)
    seen: dict[str, list[str]] = {}

    # when the household admin opens /app in Chinese (the default) and goes through its tabs
    async with browser_page(tmp_path, PHONE) as page:
        await sign_in_page(page, base, "wang.admin", admin, "/app")
        await page.wait_for_selector("#alert-banner .alert")
        await page.wait_for_function("document.body.innerText.includes('前门')")
        text = await visible_text(page)
        # then the alerts and the open door are said in Chinese, by name, with the room
        assert "紧急求助" in text and "紧急呼叫挂件" in text, text
        assert "烟雾报警" in text and "厨房烟雾报警器（厨房）" in text, text
        assert "前门 · 玄关" in text, text
        seen["/app home"] = leaks(text)
        for tab in ("devices", "alarm", "care", "family"):
            await page.click(f'#tabs button[data-tab="{tab}"]')
            await page.wait_for_timeout(600)
            text = await visible_text(page)
            if tab == "devices":
                await page.wait_for_function("document.body.innerText.includes('卫生间跌倒雷达')")
                text = await visible_text(page)
            seen[f"/app {tab}"] = leaks(text)

    # when the manager opens /manage in Chinese, section by section
    async with browser_page(tmp_path, {"width": 1400, "height": 900}) as page:
        await sign_in_page(page, base, "zhou.manager", manager, "/manage")
        for section, shows in (
            ("queue", "紧急求助"),
            ("community", "1号楼"),
            ("inventory", "前门"),
            ("consent", "1号楼"),
            ("care", "关怀设置"),
            ("announcements", "通知公告"),
            ("audit", "登录了"),
        ):
            await page.click(f'#sections button[data-section="{section}"]')
            await page.wait_for_function(f"document.querySelector('#view').innerText.includes({shows!r})")
            text = await visible_text(page)
            if section == "queue":
                # then a household is shown by its family name and unit, never by its id
                assert re.search(r"[\u4e00-\u9fff]家 \(1-101\)", text), text
            seen[f"/manage {section}"] = leaks(text)

    # when the resident's TV shows the alert
    async with browser_page(tmp_path, TV) as page:
        # (signed in on the box's browser; an unpaired /tv shows its pairing code instead)
        await page.goto(f"{base}/login?next=/tv")
        await page.fill("#name", "wang.resident")
        await page.fill("#password", resident)
        await page.keyboard.press("Enter")
        await page.wait_for_url(at("/tv"))
        await page.wait_for_selector("#alert:not(.hidden) h2")
        text = await visible_text(page)
        assert "紧急求助" in text or "烟雾报警" in text, text
        seen["/tv"] = leaks(text)

    # then no screen shows an internal id, `{}` or an English name where a Chinese one exists
    assert {where: found for where, found in seen.items() if found} == {}


async def test_the_same_alert_and_device_read_in_english_for_an_english_reader(
    make_gateway, broker, tmp_path
) -> None:
    # given the demo's first home with an SOS, and its admin who reads English
    gateway, base = await demo_community(make_gateway)
    admin = await add_account(gateway, "wang.admin", "household_admin", "h0001")
    await raise_demo_alerts(gateway, broker)
    async with browser_page(tmp_path, PHONE) as page:
        await sign_in_page(page, base, "wang.admin", admin, "/app")
        await page.wait_for_selector("#alert-banner .alert")
        # when they switch the app to English
        await page.click("#language")
        await page.wait_for_function("document.body.innerText.includes('Front door')")
        text = await visible_text(page)
        # then the same alerts and names are in English, and the Chinese device names are gone
        assert "SOS" in text and "SOS pendant" in text, text
        assert "Smoke alarm" in text and "Kitchen smoke alarm (Kitchen)" in text, text
        assert "Front door · Hallway" in text, text
        assert "紧急呼叫挂件" not in text and "前门" not in text, text


async def test_a_device_named_with_one_string_keeps_that_name_in_every_language(make_gateway) -> None:
    # given a device added the old way, with a single name, and one with both forms
    gateway, _ = await demo_community(make_gateway)
    registry = gateway.registry
    await registry.async_add_device(
        "h0001-lamp",
        household_id="h0001",
        name="台灯",
        room="书房",
        profile_id="tuya/ts011f",
        topic=device_topic("h0001", "h0001-lamp"),
    )
    # then its name is the one form, and the demo's device carries both, also after a restart
    lamp = registry.devices["h0001-lamp"].as_dict()
    assert (lamp["name"], lamp["names"], lamp["room_names"]) == ("台灯", {"zh-CN": "台灯"}, {"zh-CN": "书房"})
    door = registry.devices["h0001-front-door"]
    assert (door.name, door.room) == ("前门", "玄关")
    assert door.as_dict()["names"] == {"zh-CN": "前门", "en": "Front door"}
    await registry.async_load(registry.community_name)
    assert registry.devices["h0001-front-door"].names == {"zh-CN": "前门", "en": "Front door"}
    assert registry.devices["h0001-lamp"].room_names == {"zh-CN": "书房"}


# -- audit sentences -------------------------------------------------------------------------------


AUDIT_ENTRIES = [
    {
        "actor": "zhou.manager",
        "role": "manager",
        "action": "user.add",
        "household_id": "h0001",
        "target": "wang.carer",
        "outcome": "ok",
        "detail": {"role": "carer"},
    },
    {"actor": "wang.admin", "role": "household_admin", "action": "login", "outcome": "ok", "detail": {}},
    {"actor": "nobody", "action": "login", "outcome": "failed", "detail": {}},
    {
        "actor": "zhou.manager",
        "role": "manager",
        "action": "device.approve",
        "target": "zigbee-0x00158d",
        "household_id": "h0001",
        "outcome": "ok",
        "detail": {},
    },
    {
        "actor": "zhou.manager",
        "role": "manager",
        "action": "mqtt_client.issue",
        "target": "bridge-7",
        "household_id": "h0001",
        "outcome": "ok",
        "detail": {},
    },
    {
        "actor": "wang.admin",
        "role": "household_admin",
        "action": "alarm.arm",
        "household_id": "h0001",
        "outcome": "wrong_pin",
        "detail": {"mode": "away"},
    },
    {
        "actor": "zhou.manager",
        "role": "manager",
        "action": "household.remove",
        "target": "h0002",
        "household_id": "h0002",
        "outcome": "ok",
        "detail": {},
    },
    {
        "actor": "zhou.manager",
        "role": "manager",
        "action": "door.paint",
        "target": "前门",
        "household_id": "h0001",
        "outcome": "ok",
        "detail": {},
    },
]


async def audit_sentences(page: Any, locale: str) -> list[str]:
    return list(
        await page.evaluate(
            """async ([entries, locale]) => {
                const i18n = await import("/static/shared/i18n.js");
                const { auditSentence } = await import("/static/shared/audit.js");
                i18n.setLocale(locale);
                return entries.map((e) => auditSentence(e, { h0001: "王家 (1-101)" }));
            }""",
            [AUDIT_ENTRIES, locale],
        )
    )


async def test_audit_entries_read_as_sentences_in_chinese_and_english(make_gateway, tmp_path) -> None:
    # given the portal's own audit formatter, loaded in a page
    gateway, base = await portal_gateway(make_gateway)
    async with browser_page(tmp_path, PHONE) as page:
        await page.goto(f"{base}/login")
        # when the entries are said in Chinese and in English
        zh = await audit_sentences(page, "zh-CN")
        en = await audit_sentences(page, "en")
    # then each is a sentence with who, what and whom, and whether it worked
    assert zh[0] == "zhou.manager 添加了账号 wang.carer（家属照护人）（王家 (1-101)）"
    assert en[0] == "zhou.manager added the account wang.carer (Family carer) (王家 (1-101))"
    assert (zh[1], en[1]) == ("wang.admin 登录了", "wang.admin signed in")
    assert "未成功" in zh[2] and "用户名或密码不对" in zh[2] and "not done" in en[2]
    assert zh[3].startswith("zhou.manager 批准了一台新设备") and "approved a new device" in en[3]
    assert "签发了设备接入凭据 bridge-7" in zh[4] and "issued the device credential bridge-7" in en[4]
    assert "离家布防" in zh[5] and "密码 PIN 不对" in zh[5] and "Wrong PIN" in en[5]
    # a household no longer there is "a household", not its id
    assert (zh[6], en[6]) == ("zhou.manager 删除了一户住户", "zhou.manager removed a household")
    # an action without a sentence of its own still reads as one, naming the action
    assert zh[7] == "zhou.manager 对 前门 执行了操作“door.paint”（王家 (1-101)）"
    assert en[7] == "zhou.manager did “door.paint” on 前门 (王家 (1-101))"
    for line in zh + en:
        assert "{" not in line and "}" not in line and "undefined" not in line, line
        assert not re.search(r"\bh\d{4}\b", line), line


# -- validation errors ------------------------------------------------------------------------------


def first_error(schema: dict[str, Any], data: Any) -> Any:
    return next(iter(Draft202012Validator(schema).iter_errors(data)))


NOTE = {"type": "object", "properties": {"note": {"type": "string", "minLength": 1, "maxLength": 500}}}


def test_schema_failures_become_sentences_in_chinese_and_english() -> None:
    # an empty note, a note too long, a missing field, an unknown field, a wrong type, a value not allowed
    empty = first_error(NOTE, {"note": ""})
    assert sentence(empty, "body", "zh-CN") == "请填写处理说明"
    assert sentence(empty, "body", "en") == "Fill in the note"
    long = first_error(NOTE, {"note": "x" * 501})
    assert sentence(long, "body", "zh-CN") == "处理说明太长了：最多 500 个字"
    assert sentence(long, "body", "en") == "The note is too long: at most 500 characters"
    required = {
        "type": "object",
        "properties": {"household_id": {"type": "string"}},
        "required": ["household_id"],
    }
    assert sentence(first_error(required, {}), "body", "zh-CN") == "缺少住户：请填写后再提交"
    closed = {"type": "object", "properties": {"name": {"type": "string"}}, "additionalProperties": False}
    assert sentence(first_error(closed, {"name": "x", "floors": 9}), "body", "zh-CN") == (
        "不认识的字段：floors；可用的字段：name"
    )
    typed = {"type": "object", "properties": {"count": {"type": "integer"}}}
    assert sentence(first_error(typed, {"count": "3"}), "query", "en") == (
        "`query.count` has the wrong form: it should be a whole number"
    )
    choice = {"type": "object", "properties": {"mode": {"enum": ["home", "away"]}}}
    assert (
        sentence(first_error(choice, {"mode": "x"}), "body", "zh-CN") == "布防模式只能是以下之一：home、away"
    )


async def test_the_api_answers_a_bad_field_with_a_sentence_in_the_callers_language(
    make_gateway, broker
) -> None:
    # given an open SOS in the demo's first home and its admin, who reads Chinese (the default)
    gateway, _ = await demo_community(make_gateway)
    password = await add_account(gateway, "wang.admin", "household_admin", "h0001")
    await raise_demo_alerts(gateway, broker)
    alert = gateway.components["alerts"].open_alerts("h0001")[0]
    async with portal(gateway) as client:
        csrf = await sign_in(client, "wang.admin", password)
        # when they resolve it with an empty note
        response = await client.post(f"/api/v1/alerts/{alert.id}/resolve", json={"note": ""}, headers=csrf)
        error = (await response.json())["error"]
        # then the answer is a Chinese sentence, and the machine fields are still there
        assert response.status == 400
        assert error["message"] == "请填写处理说明", error
        assert (error["code"], error["field"], error["reason"]) == ("invalid_body", "body.note", "minLength")
        assert "should be non-empty" in error["detail"]
        # and after switching to English, the same mistake is told in English
        await client.patch("/api/v1/auth/me", json={"locale": "en"}, headers=csrf)
        response = await client.post(f"/api/v1/alerts/{alert.id}/resolve", json={"note": ""}, headers=csrf)
        assert (await response.json())["error"]["message"] == "Fill in the note"
    # and a caller with no account is answered in the language it asks for
    async with portal(gateway) as client:
        response = await client.post(
            "/api/v1/auth/login", json={"name": ""}, headers={"Accept-Language": "zh-CN,zh;q=0.9"}
        )
        error = (await response.json())["error"]
        assert response.status == 400 and re.search(r"[\u4e00-\u9fff]", error["message"]), error
