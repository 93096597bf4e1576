"""Field-level privacy, generated from the OpenAPI document: role × route × field class.

A community where every class of personal data has a value: 李家 (h1) has not consented to
share health data, 王家 (h2) consents to carers and providers. In h1 李建国 pressed his SOS
pendant and measured 187/124 (a crisis: a vital-sign alert), a medication reminder for 阿托伐他汀
went unconfirmed, the door is open, the motion sensor and the bed pad see someone, the alarm is
armed, and the TV shows the SOS overlay; in h2 王秀英 measured 184/121. Every GET route of the
document is called as every role (resident, household admin, carer of each home, manager,
installer, provider key) for both homes and every id the path takes, and no answer — allowed
or refused — may carry a value of a class the rule (`portal/auth/principal.py` `sees`) keeps
from that caller: the names, the readings, the medicine as text; presence, alarm and care as
the fields that hold them. The WebSocket is held to the same rule for the same events.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from linli.gateway import users
from linli.gateway.privacy import FieldClass, class_of
from linli.gateway.runtime import Gateway
from linli.sim.dial_box import DialBox
from tests.brokers import settle
from tests.homes import add_home, publish
from tests.portal_accounts import PORTAL_SERVICES, portal
from tests.stb.boxes import STB_COMPONENTS, adopt, stb_settings

HOMES = ("h1", "h2")
PIN = "1357"
PASSWORD = "field-privacy-2026"
#: the provider key's grant: the door and the health kinds, not motion, bed or the TV
PROVIDER_KINDS = ["battery", "contact", "blood_pressure", "heart_rate", "spo2", "glucose", "weight"]
PROVIDER_KINDS += ["body_temperature"]
#: What each home's people and readings are, by class, as they would appear in a body.
NAMES = {"h1": ["李建国", "李小明", "li.xiaoming"], "h2": ["王秀英", "王大伟", "wang.dawei"]}
READINGS = {"h1": (187, 124, 113), "h2": (184, 121, 117)}
MEDICINE = "阿托伐他汀"
#: Callers: role, the household their account belongs to (None: community-wide or a key).
CALLERS = {
    "resident": ("resident", "h1"),
    "household_admin": ("household_admin", "h1"),
    "carer_h1": ("carer", "h1"),  # h1 does not consent: this carer reaches nothing
    "carer_h2": ("carer", "h2"),
    "manager": ("manager", None),
    "installer": ("installer", None),
    "provider": ("provider", None),
}
ALL = frozenset(FieldClass)


def forbidden(caller: str, household: str) -> frozenset[FieldClass]:
    """The classes of a household's data the caller may not see — the rule, restated as a table."""
    role, own = CALLERS[caller]
    if role in ("resident", "household_admin"):
        return frozenset() if household == own else ALL
    if role == "carer":
        return frozenset() if household == own and household == "h2" else ALL
    if role == "manager":
        return frozenset() if household == "h2" else frozenset({FieldClass.HEALTH})
    if role == "installer":
        return ALL
    # provider: its key names both homes; only h2 consents; never the alarm or the care plan
    if household == "h1":
        return ALL
    return frozenset({FieldClass.ALARM, FieldClass.CARE})


def tokens(caller: str) -> dict[str, re.Pattern[bytes]]:
    """The seeded values the caller must not find anywhere in a body, with what each is."""
    found: dict[str, re.Pattern[bytes]] = {}
    for household in HOMES:
        hidden = forbidden(caller, household)
        if FieldClass.IDENTITY in hidden:
            for name in NAMES[household]:
                found[f"{household} identity {name}"] = re.compile(re.escape(name.encode()))
        if FieldClass.HEALTH in hidden:
            for number in READINGS[household]:
                # as a number: not the digits inside a timestamp, an id, a UUID's hex or another number
                as_number = rb"(?<![0-9A-Za-z.-])%d(?![0-9A-Za-z])" % number
                found[f"{household} health {number}"] = re.compile(as_number)
            if household == "h1":
                found[f"h1 health {MEDICINE}"] = re.compile(re.escape(MEDICINE.encode()))
    return found


def walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def field_leaks(caller: str, body: Any, household_of: dict[str, str]) -> list[str]:
    """Values of a forbidden class held in the fields that carry them (presence, alarm, care)."""
    found = []
    role = CALLERS[caller][0]
    for node in walk(body):
        household = node.get("household_id") if isinstance(node.get("household_id"), str) else None
        # a capability's state (device lists, the TV, live state events)
        if isinstance(node.get("kind"), str) and "value" in node and node.get("value") is not None:
            field = class_of(node["kind"])
            where = household or household_of.get(str(node.get("device_id") or ""), "")
            if field is not None and where and field in forbidden(caller, where):
                found.append(f"{node['kind']} value of {where}: {str(node)[:120]}")
            if role == "provider" and node["kind"] not in PROVIDER_KINDS and field is not None:
                found.append(f"{node['kind']} value beyond the key's grant: {str(node)[:120]}")
        # the alarm panel, wherever it is summarised (the tree's status, the overview, live events)
        if role in ("installer", "provider") and node.get("alarm") not in (None, {}):
            found.append(f"alarm state {node['alarm']!r} in {str(node)[:120]}")
        if role in ("installer", "provider") and node.get("type") == "alarm":
            found.append(f"alarm event {str(node)[:120]}")
        # care: the check-in plan and reminders
        if role in ("installer", "provider") and node.get("check_in") is not None:
            found.append(f"check-in {str(node)[:120]}")
        # presence lists of the household overview
        if role == "installer" and (node.get("presence") or node.get("open_doors")):
            found.append(f"presence {str(node)[:120]}")
    return found


def scan(caller: str, body: Any, household_of: dict[str, str]) -> list[str]:
    raw = orjson.dumps(body)
    hits = [what for what, pattern in tokens(caller).items() if pattern.search(raw)]
    return hits + field_leaks(caller, body, household_of)


class Community:
    """The seeded community and a token for every caller."""

    def __init__(self, gateway: Gateway, client: Any) -> None:
        self.gateway = gateway
        self.client = client
        self.tokens: dict[str, str] = {}
        self.alerts: dict[str, list[str]] = {h: [] for h in HOMES}
        self.household_of: dict[str, str] = {}
        self.adapter_id = ""
        self.inbox_items: list[str] = []

    def bearer(self, caller: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[caller]}"}

    async def get(self, caller: str, url: str) -> tuple[int, Any]:
        self.client.session.cookie_jar.clear()
        response = await self.client.get(url, headers=self.bearer(caller))
        text = await response.read()
        try:
            return response.status, orjson.loads(text) if text else None
        except orjson.JSONDecodeError:
            return response.status, text.decode(errors="replace")


async def seed(gateway: Gateway, client: Any, broker_port: int, tvs: dict[str, DialBox]) -> Community:
    world = Community(gateway, client)
    registry = gateway.registry
    health, engine = gateway.components["health"], gateway.components["alerts"]
    topics: dict[str, str] = {}
    devices = {
        "door": "aqara/mccgq11lm",
        "motion": "aqara/rtcgq11lm",
        "bed": "linli/bed-sensor",
        "sos": "linli/sos-pendant",
        "bp": "yuwell/ye680a",
        "plug": "tuya/ts011f",
    }
    for household in HOMES:
        topics.update(await add_home(gateway, household, devices))
        await adopt(gateway, household, tvs[household])
        resident = await registry.async_add_resident(f"{household}-r1", household, NAMES[household][0])
        for device in ("sos", "bp", "bed"):
            await registry.async_assign_device(f"{household}-{device}", resident.id)
    for device in registry.devices.values():
        world.household_of[device.id] = device.household_id
    await health.async_grant_consent("h2", by="test", purposes=["carer", "provider"])
    # an account for every caller, named for the people they are
    digest = users.hash_password(PASSWORD)
    account_names = {"resident": ("h1", 2), "carer_h2": ("h2", 2)}

    def create(db: Any, caller: str) -> str:
        role, household = CALLERS[caller]
        home, index = account_names.get(caller, (None, None))
        name = NAMES[home][index] if home and index is not None else f"fp.{caller}"
        display = NAMES[home][1] if home else None
        user = users.add_user(
            db.conn, name, role, password_hash=digest, household_id=household, display_name=display, by="test"
        )
        return users.create_token(db.conn, kind=users.TokenKind.API, user_id=user.id, name="t", ttl_s=3600)[1]

    for caller in CALLERS:
        if caller != "provider":
            world.tokens[caller] = await gateway.store.async_write(lambda db, c=caller: create(db, c))
    issued = await client.post(
        "/api/v1/provider-keys",
        json={"provider": "care-centre", "households": list(HOMES), "kinds": PROVIDER_KINDS},
        headers=world.bearer("manager"),
    )
    assert issued.status == 201, await issued.text()
    world.tokens["provider"] = (await issued.json())["secret"]
    # the alarm armed in h1 by its resident
    security = gateway.components["security"]
    await security.async_set_pin("h1", NAMES["h1"][2], PIN, by="test")
    await security.async_arm("h1", "away", NAMES["h1"][2], PIN, force=True)
    # the readings, the SOS, someone home; a missed medication
    await publish(
        broker_port,
        [
            (topics["h1-door"], {"contact": True}),
            (topics["h1-motion"], {"occupancy": True}),
            (topics["h1-bed"], {"in_bed": True}),
            (topics["h1-sos"], {"sos": "idle"}),
            (topics["h1-sos"], {"sos": "pressed"}),
            *[(topics[f"{h}-bp"], dict(zip(("sys", "dia", "pul"), READINGS[h], strict=True))) for h in HOMES],
            (topics["h2-door"], {"contact": True}),
            (topics["h2-motion"], {"occupancy": True}),
        ],
    )
    await engine.async_raise(
        kind="missed_medication",
        household_id="h1",
        title=f"未确认服药 Not confirmed: {MEDICINE} (08:00)",
        severity="high",
        resident="h1-r1",
        dedup_key="fp-medication",
    )
    care = gateway.components["eldercare"]
    await care.async_add_reminder("h1", title=MEDICINE, times=["08:00"], resident_id="h1-r1")
    await care.async_configure("h1", {"check_in": {"enabled": True, "by": "09:00"}})
    await settle(
        lambda: {a.kind for a in engine.open_alerts("h1")} >= {"sos", "vital_sign", "missed_medication"}
    )
    await settle(lambda: any(a.kind == "vital_sign" for a in engine.open_alerts("h2")))
    # the SOS reached h1's TV: its overlay holds the resident's name
    await settle(lambda: "李建国" in orjson.dumps(tv_notify(gateway, "h1")).decode(), timeout=10)
    for household in HOMES:
        world.alerts[household] = [str(a.id) for a in engine.open_alerts(household)]
    adapters = await world.get("manager", "/api/v1/adapters")
    world.adapter_id = adapters[1]["items"][0]["id"]
    inbox = await world.get("manager", "/api/v1/inbox")
    listed = inbox[1].get("items", []) if inbox[0] == 200 else []
    world.inbox_items = [i["id"] for i in listed][:5] or ["no-such-item"]
    return world


def tv_notify(gateway: Gateway, household: str) -> Any:
    tv = gateway.components["screens"].tv(household)
    keys = [c.key for c in tv.profile.capabilities if c.kind == "notify"] if tv else []
    return [tv.states[k].value for k in keys if k in tv.states] if tv else None


def urls(path: str, world: Community) -> list[tuple[str, str | None]]:
    """Every URL of the path for the seeded ids: (url, the household it is about)."""
    params = re.findall(r"{(\w+)}", path)
    if not params:
        return [(path, None)]
    known = {"household_id", "device_id", "alert_id", "resident_id", "adapter_id", "item_id"}
    unknown = set(params) - known
    assert not unknown, f"{path}: give {sorted(unknown)} a seeded id in urls() (tests/test_field_privacy.py)"
    if params == ["adapter_id"]:
        return [(path.replace("{adapter_id}", world.adapter_id), None)]
    if params == ["item_id"]:
        return [(path.replace("{item_id}", item), None) for item in world.inbox_items]
    found = []
    for household in HOMES:
        if "alert_id" in params:
            choices = [{"alert_id": a} for a in world.alerts[household]]
        elif "device_id" in params:
            choices = [{"device_id": d} for d, h in world.household_of.items() if h == household]
        else:
            choices = [{}]
        for ids in choices:
            values = {"household_id": household, "resident_id": f"{household}-r1", **ids}
            url = re.sub(r"{(\w+)}", lambda m, v=values: v[m.group(1)], path)  # type: ignore[misc]
            found.append((url, household))
    return found


@pytest.mark.slow
async def test_no_role_reads_a_field_class_it_may_not_on_any_route_or_live(
    make_gateway, broker, monkeypatch
) -> None:
    # given the seeded community (see the module's docstring), its TVs and every caller
    monkeypatch.setenv("LINLI_WAKE_LOOPBACK_ONLY", "1")
    gateway = await make_gateway(
        components=[*PORTAL_SERVICES, "linli.services.security:Security", *STB_COMPONENTS],
        adapters=stb_settings(),
    )
    tvs = {h: DialBox(name=f"{h}-tv") for h in HOMES}
    for tv in tvs.values():
        await tv.async_start()
    try:
        async with portal(gateway) as client:
            world = await seed(gateway, client, broker.port, tvs)
            await every_get_route(world)
            await live_messages(world, broker.port)
    finally:
        for tv in tvs.values():
            await tv.async_stop()


async def every_get_route(world: Community) -> None:
    spec = await (await world.client.get("/api/v1/openapi.json")).json()
    routes = sorted(
        path for path, methods in spec["paths"].items() if "get" in methods and path.startswith("/api/v1/")
    )
    routes = [p for p in routes if p not in ("/api/v1/ws", "/api/v1/openapi.json")]
    assert len(routes) > 25, routes
    leaks: list[str] = []
    outcomes: Counter[str] = Counter()
    for path in routes:
        for url, household in urls(path, world):
            for caller in CALLERS:
                # when the caller reads the route
                status, body = await world.get(caller, url)
                outcomes["answered" if status == 200 else "refused"] += 1
                # then nothing of a class kept from them is anywhere in it
                leaks += [
                    f"{caller} GET {url} ({status}): {hit}" for hit in scan(caller, body, world.household_of)
                ]
                if status == 200 and household and caller in ("resident", "household_admin"):
                    outcomes["own home read"] += household == "h1"
    assert not leaks, f"{len(leaks)} leaks:\n" + "\n".join(leaks[:60])
    # the seeded values are really there, for whom may see them (else the test could not fail)
    for caller, url, must in [
        ("resident", "/api/v1/households/h1", ["李建国", "187"]),
        ("manager", "/api/v1/alerts?household_id=h2", ["王秀英", "184"]),
        ("manager", "/api/v1/alerts?household_id=h1", ["李建国"]),
        ("household_admin", "/api/v1/households/h1/care", [MEDICINE]),
        ("resident", "/api/v1/households/h1/screens", ["李建国"]),
    ]:
        body = orjson.dumps((await world.get(caller, url))[1]).decode()
        assert all(m in body for m in must), f"{caller} {url}: {must} not in {body[:300]}"
    assert outcomes["answered"] > 200 and outcomes["refused"] > 200 and outcomes["own home read"], outcomes


async def live_messages(world: Community, broker_port: int) -> None:
    # given every caller on the live WebSocket
    sockets = {}
    for caller in CALLERS:
        ws = await world.client.ws_connect("/api/v1/ws", headers=world.bearer(caller))
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        sockets[caller] = ws
    engine = world.gateway.components["alerts"]
    registry = world.gateway.registry
    topics = {d.id: d.topic for d in registry.devices.values()}
    # (both homes' policies tell the household, the carers and the duty desk at once, so that every
    # role's screen is sent these alerts: screens hear of an alert only at their step of the policy)
    at_once = {
        "steps": [{"after_s": 0, "audience": a} for a in ("household", "carers", "duty_desk")],
        "repeat_s": None,
    }
    for home in HOMES:
        for kind in ("sos", "vital_sign", "missed_medication"):
            await engine.async_set_policy(home, kind, at_once)
    # when the same events happen again: new readings and an SOS in both homes, doors, motion
    for alert in [*engine.open_alerts("h1"), *engine.open_alerts("h2")]:
        await engine.async_resolve(alert.id, "test", "seen")
    await publish(
        broker_port,
        [
            *[(topics[f"{h}-sos"], {"sos": "idle"}) for h in HOMES],
            *[(topics[f"{h}-sos"], {"sos": "pressed"}) for h in HOMES],
            *[(topics[f"{h}-bp"], dict(zip(("sys", "dia", "pul"), READINGS[h], strict=True))) for h in HOMES],
            *[(topics[f"{h}-door"], {"contact": False}) for h in HOMES],
            *[(topics[f"{h}-motion"], {"occupancy": False}) for h in HOMES],
        ],
    )
    await world.gateway.components["security"].async_disarm("h1", NAMES["h1"][2], PIN)
    await engine.async_raise(
        kind="missed_medication",
        household_id="h1",
        title=f"未确认服药 Not confirmed: {MEDICINE} (20:00)",
        severity="high",
        resident="h1-r1",
        dedup_key="fp-medication-2",
    )
    received: dict[str, list[dict[str, Any]]] = {caller: [] for caller in CALLERS}

    async def drain(caller: str) -> None:
        try:
            while True:
                received[caller].append(await sockets[caller].receive_json(timeout=3))
        except (TimeoutError, TypeError):
            return

    await asyncio.gather(*(drain(c) for c in CALLERS))
    for ws in sockets.values():
        await ws.close()
    # then each gets only what they may see of them
    leaks = [
        f"{caller} live: {hit}"
        for caller, messages in received.items()
        for message in messages
        for hit in scan(caller, message, world.household_of)
    ]
    assert not leaks, "\n".join(leaks[:40])
    # and the messages did flow: the household and the duty desk heard of the alerts
    kinds = {c: {m["alert"]["kind"] for m in ms if "alert" in m} for c, ms in received.items()}
    assert {"sos", "vital_sign", "missed_medication"} <= kinds["resident"], kinds
    assert {"sos", "vital_sign", "missed_medication"} <= kinds["manager"], kinds
    assert any(m.get("type") == "state" for m in received["resident"])
    managers = orjson.dumps(received["manager"]).decode()
    assert "王秀英" in managers and "184" in managers and "李建国" in managers
