"""The authorization matrix, generated from the OpenAPI document.

Every operation the document lists × every role (resident, household admin,
carer with the household's consent, manager, installer, provider key) × the
caller's own household and another one, plus nobody signed in. The document's
`x-linli-roles` says who may call an operation; a household bound to the call
(in the path, or owning the alert or account in the path) must be within the
caller's reach. Allowed calls use real ids made in setup (fresh alerts,
accounts, reminders, keys and inbox devices for calls that use them up; a
simulated TV box in each home) and must succeed — only the first-run setup
link cannot, being spent; every other call must be refused with 403 or 404
and change nothing. Answers to a household-bound caller must not name the
other household, a provider's device answers only its granted kinds, and no
route the app serves is missing from the document.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from linli.gateway import users
from linli.gateway.runtime import Gateway
from linli.portal.api.health import KINDS as HEALTH_KINDS
from linli.portal.auth.pairing import PAIRINGS, display
from linli.sim import discovery_payloads as payloads
from linli.sim.dial_box import DialBox
from tests.brokers import settle
from tests.discovering import DISCOVERY, discovery_config, inbox_of, publish_retained
from tests.homes import add_home
from tests.portal_accounts import PORTAL_SERVICES, portal
from tests.stb.boxes import STB_COMPONENTS, adopt, stb_settings

OWN, OTHER = "h1", "h2"
ROLES = ("resident", "household_admin", "carer", "manager", "installer", "provider")
COMMUNITY_WIDE = frozenset({"manager", "installer"})
HOUSEHOLD_BOUND = frozenset({"resident", "household_admin", "carer"})
PROVIDER_KINDS = ["battery", "contact", *HEALTH_KINDS]  # FHIR export needs every health kind
PIN = "2468"
PASSWORD = "matrix-password-2026"
#: Pages and static files: not API routes, so not in the API's document (checked by name).
PAGES = re.compile(
    r"^/(|app/?|app/pair|app/manifest\.webmanifest|app/sw\.js|favicon\.ico|login|setup|manage/?|tv/?|static|screens/overlay)$"
)
#: Allowed calls that cannot succeed in this setup, and the error they must give instead.
NEEDS_MORE = {
    # the first-run setup link is spent once an account exists
    "POST /api/v1/auth/setup": {"invalid_token"},
    # a household's alarm arms once: a second member's arm meets it armed, a disarm meets it disarmed
    "POST /api/v1/households/{household_id}/alarm/arm": {"conflict", "invalid_state"},
    "POST /api/v1/households/{household_id}/alarm/disarm": {"conflict", "invalid_state"},
    "POST /api/v1/alerts/{alert_id}/acknowledge": {"conflict", "invalid_state"},
    # the homes here have devices, residents and accounts: a household is removed only when empty
    "DELETE /api/v1/households/{household_id}": {"conflict"},
    # the matrix's gateway is on the test's own broker, which takes no credentials from Linli
    # (issuing them is tried against the managed Mosquitto in test_device_plane.py)
    "POST /api/v1/households/{household_id}/mqtt-clients": {"not_supported"},
    # a TV polls with the device code only it was shown (pairing itself: tests of the pairing)
    "POST /api/v1/tv/pairings/token": {"invalid_grant"},
    # casting is not switched on in the matrix's gateway (pairing a phone: tests/stb/test_cast.py)
    "POST /api/v1/households/{household_id}/cast/pair": {"not_supported"},
    # erasing a household's data waits until its alarm (armed above) is disarmed
    "DELETE /api/v1/households/{household_id}/data": {"conflict"},
}


class World:
    """Two homes with a resident each, an account and token of every role for h1, and helpers."""

    def __init__(self, gateway: Gateway, client: Any) -> None:
        self.gateway = gateway
        self.client = client
        self.tokens: dict[str, str] = {}  # role → bearer secret (h1's, or the community's)
        self.users: dict[str, str] = {}  # role → user id
        self.adapter_id = ""
        self.inbox_items: list[str] = []  # discovered devices, pending, one for each call that needs one
        self.serial = itertools.count()
        self.digest = users.hash_password(PASSWORD)

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self.serial)}"

    async def account(self, role: str, household: str | None) -> tuple[str, str]:
        """A user of the role (as `linli user add` makes one) and an API token; (user id, token)."""
        name = self.unique(f"m.{role}")

        def create(db: Any) -> tuple[str, str]:
            user = users.add_user(
                db.conn, name, role, password_hash=self.digest, household_id=household, by="test"
            )
            token = users.create_token(
                db.conn, kind=users.TokenKind.API, user_id=user.id, name="t", ttl_s=3600
            )
            return user.id, token[1]

        return await self.gateway.store.async_write(create)

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, url: str, token: str | None, body: Any = None) -> tuple[int, Any]:
        headers = self.bearer(token) if token else {}
        self.client.session.cookie_jar.clear()  # a sign-in's cookie must not ride along
        response = await self.client.request(method, url, json=body, headers=headers)
        text = await response.text()
        data: Any = text
        if response.content_type == "application/json" and text:
            data = await response.json()
        return response.status, data

    async def as_manager(self, method: str, url: str, body: Any = None) -> Any:
        status, data = await self.call(method, url, self.tokens["manager"], body)
        assert status < 300, f"setup: {method} {url} -> {status} {data}"
        return data

    async def provider_key(self) -> str:
        issued = await self.as_manager(
            "POST",
            "/api/v1/provider-keys",
            {"provider": "care-centre", "households": [OWN], "kinds": PROVIDER_KINDS},
        )
        return str(issued["secret"])

    async def alert(self, household: str, role: str) -> str:
        """A fresh open alert in the household: an SOS, or for an installer a device gone offline
        (installers see device alerts only)."""
        kind = "device_offline" if role == "installer" else "sos"
        alert = await self.gateway.components["alerts"].async_raise(
            kind=kind,
            household_id=household,
            title=f"{kind} in {household}",
            severity="warning" if role == "installer" else "critical",
            dedup_key=self.unique("matrix"),
        )
        return str(alert.id)


async def build_world(gateway: Gateway, client: Any, broker_port: int) -> World:
    world = World(gateway, client)
    registry, health = gateway.registry, gateway.components["health"]
    for household in (OWN, OTHER):
        await registry.async_add_resident(f"{household}-r1", household, f"resident of {household}")
        await health.async_grant_consent(household, by="test", purposes=["carer", "provider"])
    for role in ROLES:
        if role == "provider":
            continue
        user_id, token = await world.account(role, None if role in COMMUNITY_WIDE else OWN)
        world.users[role], world.tokens[role] = user_id, token
    world.tokens["provider"] = await world.provider_key()
    security = gateway.components["security"]
    for role in ("resident", "household_admin"):
        user = await gateway.store.async_read(lambda c, r=role: users.get_user(c, user_id=world.users[r]))
        await security.async_set_pin(OWN, user.name, PIN, by="test")
    await gateway.store.async_write(  # the account the sign-in route is called with
        lambda db: users.add_user(
            db.conn, "m.login", "resident", password_hash=world.digest, household_id=OWN, by="test"
        )
    )
    # discovered devices waiting in the inbox (native Linli radars announced over MQTT)
    serials = [f"fr60-m{i:03d}" for i in range(5 * (len(ROLES) + 1))]
    await publish_retained(broker_port, [m for s in serials for m in payloads.linli_native(s, "FR-60")])
    inbox = inbox_of(gateway)
    await settle(lambda: all(inbox.find(f"linli:{s}") for s in serials), timeout=10)
    world.inbox_items = [inbox.find(f"linli:{s}").id for s in serials]  # type: ignore[union-attr]
    adapters = await world.as_manager("GET", "/api/v1/adapters")
    world.adapter_id = adapters["items"][0]["id"]
    return world


async def _reminder(world: World, household: str, _role: str) -> str:
    made = await world.as_manager(
        "POST", f"/api/v1/households/{household}/care/reminders", {"title": "降压药", "times": ["08:00"]}
    )
    return str(made["id"])


async def _member(world: World, household: str, _role: str) -> str:
    return (await world.account("resident", household))[0]


async def _announcement(world: World, _: str, _role: str) -> str:
    made = await world.as_manager("POST", "/api/v1/announcements", {"title": "停水", "scope": "community"})
    return str(made["id"])


async def _inbox_item(world: World, _: str, _role: str) -> str:
    return world.inbox_items.pop()


async def _building(world: World, _: str, _role: str) -> str:
    made = await world.gateway.registry.async_add_building(world.unique("mb"), "矩阵楼")
    return made.id


async def _unit(world: World, _: str, _role: str) -> str:
    made = await world.gateway.registry.async_add_unit(world.unique("mu"), "b1", "矩阵单元")
    return made.id


async def _mqtt_client(world: World, household: str, _role: str) -> str:
    issued = await world.gateway.mqtt_credentials.async_issue_bridge(
        household, world.unique(f"z2m-{household}")
    )
    return issued.principal.username


async def _screen(world: World, household: str, _role: str) -> str:
    token, _secret = await world.client.server.app[PAIRINGS].async_issue(
        household, name="矩阵电视", by="test"
    )
    return str(token.id)


def _user_code(world: World) -> dict[str, str]:
    """A TV showing a fresh code, for the admin to confirm or refuse."""
    _device_code, pairing = world.client.server.app[PAIRINGS].start()
    return {"user_code": display(pairing.user_code)}


async def _key(world: World, _: str, _role: str) -> str:
    listed = await world.as_manager("GET", "/api/v1/provider-keys")
    await world.provider_key()
    fresh = await world.as_manager("GET", "/api/v1/provider-keys")
    known = {k["id"] for k in listed["items"]}
    return next(k["id"] for k in fresh["items"] if k["id"] not in known)


def fill(path: str, world: World, household: str | None, ids: dict[str, str] | None = None) -> str:
    h = household or OWN
    values = {
        "household_id": h,
        "resident_id": f"{h}-r1",
        "device_id": f"{h}-plug",
        "adapter_id": world.adapter_id,
        **(ids or {}),
    }
    unknown = set(re.findall(r"{(\w+)}", path)) - values.keys()
    assert not unknown, f"{path}: give {sorted(unknown)} a real id in fill() or FRESH (test_portal_matrix.py)"
    return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], path)


#: Bodies (and fresh sub-resources) for operations that need more than the document's path.
BODIES: dict[str, Any] = {
    "POST /api/v1/auth/login": lambda w, h: {"name": "m.login", "password": PASSWORD},
    "POST /api/v1/auth/setup": lambda w, h: {"token": "spent", "name": "x.y", "password": PASSWORD},
    "PATCH /api/v1/auth/me": lambda w, h: {"display_name": "矩阵"},
    "POST /api/v1/auth/password": lambda w, h: {"current": PASSWORD, "new": PASSWORD + "-2"},
    "POST /api/v1/users": lambda w, h: {"name": w.unique("new"), "role": "resident", "household_id": h},
    "PATCH /api/v1/users/{user_id}": lambda w, h: {"disabled": True},
    "POST /api/v1/households/{household_id}/devices/{device_id}/commands": lambda w, h: {
        "capability": "relay",
        "value": True,
    },
    "POST /api/v1/alerts/{alert_id}/resolve": lambda w, h: {"note": "矩阵"},
    "POST /api/v1/alerts/{alert_id}/assign": lambda w, h: {"assignee": "wang"},
    "POST /api/v1/households/{household_id}/help": lambda w, h: {},
    "POST /api/v1/households/{household_id}/alarm/arm": lambda w, h: {
        "mode": "away",
        "pin": PIN,
        "force": True,
    },
    "POST /api/v1/households/{household_id}/alarm/disarm": lambda w, h: {"pin": PIN},
    "PUT /api/v1/households/{household_id}/alarm/pin": lambda w, h: {"pin": PIN, "current": PIN},
    "POST /api/v1/households/{household_id}/consent": lambda w, h: {"purpose": "export", "granted": True},
    "PATCH /api/v1/households/{household_id}/care/settings": lambda w, h: {"away": False},
    "POST /api/v1/households/{household_id}/care/reminders": lambda w, h: {
        "title": "复诊",
        "times": ["09:30"],
    },
    "PUT /api/v1/households/{household_id}/care/reminders/{reminder_id}": lambda w, h: {
        "title": "复诊",
        "times": ["10:00"],
    },
    "POST /api/v1/announcements": lambda w, h: {"title": "通知", "scope": "community"},
    "DELETE /api/v1/households/{household_id}/data": lambda w, h: {"confirm": h},
    "POST /api/v1/provider-keys": lambda w, h: {
        "provider": "care-centre",
        "households": [OWN],
        "kinds": ["battery"],
    },
    "POST /api/v1/inbox/{item_id}/approve": lambda w, h: {"household_id": h},
    # a selection with one item that is not there: the call succeeds, refusing that item
    "POST /api/v1/inbox/bulk-approve": lambda w, h: {"household_id": "h1", "items": ["no-such-item"]},
    "POST /api/v1/households/{household_id}/mqtt-clients": lambda w, h: {
        "kind": "bridge",
        "base_topic": w.unique(f"z2m-{h}"),
    },
    "POST /api/v1/households/{household_id}/screens/tv/notify": lambda w, h: {"text": "吃药了"},
    "POST /api/v1/screens/pair": lambda w, h: _user_code(w),
    "POST /api/v1/screens/pair/deny": lambda w, h: _user_code(w),
    "POST /api/v1/tv/pairings/token": lambda w, h: {"device_code": "not-a-code"},
    "POST /api/v1/households/{household_id}/screens/tv/play": lambda w, h: {
        "url": "http://127.0.0.1:9/a.mp4"
    },
    "POST /api/v1/households/{household_id}/screens/tv/open": lambda w, h: {"url": "http://127.0.0.1:9/menu"},
    "POST /api/v1/buildings": lambda w, h: {"name": "矩阵楼"},
    "PATCH /api/v1/buildings/{building_id}": lambda w, h: {"name": "矩阵楼"},
    "POST /api/v1/buildings/{building_id}/units": lambda w, h: {"name": "矩阵单元"},
    "PATCH /api/v1/units/{unit_id}": lambda w, h: {"name": "矩阵单元"},
    "POST /api/v1/units/{unit_id}/households": lambda w, h: {"name": "矩阵家"},
    "PATCH /api/v1/households/{household_id}": lambda w, h: {"name": f"{h} home"},
    "POST /api/v1/households/{household_id}/residents": lambda w, h: {"name": "矩阵"},
    "PATCH /api/v1/households/{household_id}/residents/{resident_id}": lambda w, h: {
        "name": f"resident of {h}"
    },
}
#: Sub-resources in the path that a call may use up: made fresh for each call.
FRESH: dict[str, Callable[[World, str, str], Awaitable[str]]] = {
    "alert_id": lambda w, h, role: w.alert(h, role),
    "user_id": _member,
    "reminder_id": _reminder,
    "announcement_id": _announcement,
    "key_id": _key,
    "item_id": _inbox_item,
    "building_id": _building,
    "unit_id": _unit,
    "username": _mqtt_client,
    "screen_id": _screen,
}


def household_of(path: str) -> bool:
    """Whether a call on this path belongs to one household (in the path, or owning the resource)."""
    return any(f"{{{p}}}" in path for p in ("household_id", "alert_id", "user_id"))


def may(role: str, roles: list[str], household: str | None) -> bool:
    if "anyone" in roles:
        return True
    if role not in roles:
        return False
    return household is None or role in COMMUNITY_WIDE or household == OWN


def fingerprint(gateway: Gateway) -> str:
    """What a refused call must not change: every table people act on (not telemetry or timers)."""
    queries = [
        "SELECT id, name, role, household_id, disabled, display_name, locale FROM users",
        "SELECT id, user_id, kind, expires, revoked, scope FROM tokens",
        "SELECT * FROM audit WHERE action != 'login'",
        "SELECT id, acknowledged_by, resolved_by, resolution_note FROM alerts",
        "SELECT * FROM alert_assignments",
        "SELECT * FROM announcements",
        "SELECT * FROM residents",
        "SELECT * FROM health_consent",
        "SELECT * FROM health_thresholds",
        "SELECT * FROM alarm_panels",
        "SELECT * FROM alarm_pins",
        "SELECT * FROM eldercare_settings",
        "SELECT * FROM care_check_ins",
        "SELECT * FROM care_reminders",
        "SELECT * FROM care_reminder_log",
        "SELECT id, household_id, name FROM devices",
        "SELECT * FROM inbox_decisions",
        "SELECT username, household_id, password_hash FROM mqtt_clients",
    ]
    digest = hashlib.sha256()
    with sqlite3.connect(gateway.store.path) as conn:
        for query in queries:
            digest.update(repr(sorted(map(repr, conn.execute(query).fetchall()))).encode())
    return digest.hexdigest()


def leaks(data: Any, role: str) -> list[str]:
    """Ids of the other household in an answer to a caller bound to their own."""
    if role not in HOUSEHOLD_BOUND | {"provider"}:
        return []
    text = str(data)
    return re.findall(r"['\"/]h2(?:['\"/-]|$)[^'\"]{0,20}", text)


async def live_events_for_every_role_and_nobody(world: World) -> None:
    """The WebSocket opens for every role, each greeted with the households it reaches."""
    for role in ROLES:
        ws = await world.client.ws_connect("/api/v1/ws", headers=world.bearer(world.tokens[role]))
        hello = await ws.receive_json(timeout=5)
        await ws.close()
        assert hello["type"] == "hello", hello
        reach = [OWN, OTHER] if role in COMMUNITY_WIDE else [OWN]
        assert hello["households"] == reach, f"{role}: {hello['households']}"
    status, data = await world.call("GET", "/api/v1/ws", None)
    assert status == 401 and data["error"]["code"] == "unauthenticated", data


@pytest.mark.slow
async def test_every_route_every_role_own_and_other_household_and_no_login(
    make_gateway, broker, monkeypatch
) -> None:
    # given two homes with a TV box each, consenting to carers and providers, an account of every
    # role for h1, and discovered devices waiting in the inbox
    monkeypatch.setenv("LINLI_WAKE_LOOPBACK_ONLY", "1")  # no magic packet beyond 127.0.0.1
    gateway = await make_gateway(
        components=[
            *PORTAL_SERVICES,
            "linli.services.security:Security",
            *DISCOVERY,
            *STB_COMPONENTS,
        ],
        discovery=discovery_config("mqtt"),  # on loopback MQTT only
        adapters=stb_settings(),
    )
    tvs = [DialBox(name=f"{household}-tv") for household in (OWN, OTHER)]
    for household, tv in zip((OWN, OTHER), tvs, strict=True):
        await tv.async_start()
        await add_home(gateway, household)
        await adopt(gateway, household, tv)
    try:
        await check_every_route(gateway, broker.port)
    finally:
        for tv in tvs:
            await tv.async_stop()


async def check_every_route(gateway: Gateway, broker_port: int) -> None:
    async with portal(gateway) as client:
        world = await build_world(gateway, client, broker_port)
        spec = await (await client.get("/api/v1/openapi.json")).json()
        documented = {(m.upper(), p) for p, methods in spec["paths"].items() for m in methods}
        # then every route the app serves is in the document (pages aside)
        served = {
            (route.method, route.resource.canonical)
            for route in client.server.app.router.routes()
            if route.resource is not None and route.method not in ("HEAD", "OPTIONS", "*")
        }
        missing = sorted(r for r in served - documented if not PAGES.match(r[1]))
        assert not missing, f"served but not in the OpenAPI document: {missing}"
        assert not documented - served, f"documented but not served: {sorted(documented - served)}"
        operations = [
            (method.upper(), path, op)
            for path, methods in spec["paths"].items()
            for method, op in methods.items()
        ]
        # …and every one of them says who may call it
        assert all(op["x-linli-roles"] for _, _, op in operations), [
            f"{m} {p}" for m, p, op in operations if not op["x-linli-roles"]
        ]
        # the live greeting goes first (it lists every household, and calls below add some);
        # erasing a household's data goes last: everything before needs the data
        operations.sort(
            key=lambda o: (
                o[1] != "/api/v1/ws",
                o[:2] == ("DELETE", "/api/v1/households/{household_id}/data"),
            )
        )
        outcomes: Counter[str] = Counter()
        unexpected: list[str] = []
        for method, path, op in operations:
            if path == "/api/v1/ws":
                await live_events_for_every_role_and_nobody(world)
                outcomes["allowed and done"] += len(ROLES)
                outcomes["refused"] += 1
                continue
            key = f"{method} {path}"
            roles = op["x-linli-roles"]
            households: tuple[str | None, ...] = (OWN, OTHER) if household_of(path) else (None,)
            for role, household in [*itertools.product(ROLES, households), ("nobody", OWN)]:
                allowed = (role != "nobody" and may(role, roles, household)) or roles == ["anyone"]
                token = world.tokens.get(role)
                if path.startswith("/api/v1/auth/") and role not in ("nobody", "provider"):
                    # signing out or a new password ends the token: a throwaway account of the role
                    token = (await world.account(role, None if role in COMMUNITY_WIDE else OWN))[1]
                elif key == "POST /api/v1/auth/logout" and role == "provider":
                    token = await world.provider_key()
                ids = {}
                for name, make in FRESH.items():
                    if f"{{{name}}}" in path:
                        ids[name] = await make(world, household or OWN, role)
                if key == "DELETE /api/v1/households/{household_id}/residents/{resident_id}":
                    # a resident of its own, so that the world's stays for the calls after
                    made = await gateway.registry.async_add_resident(
                        world.unique("mr"), household or OWN, "搬走的人"
                    )
                    ids["resident_id"] = made.id
                if key == "POST /api/v1/inbox/{item_id}/restore":  # only a hidden item comes back
                    await inbox_of(gateway).async_ignore(ids["item_id"], by="test")
                url = fill(path, world, household, ids)
                body = BODIES[key](world, household or OWN) if key in BODIES else None
                if body is None and "requestBody" in op:
                    body = {}
                before = None if allowed else fingerprint(gateway)
                status, data = await world.call(method, url, token if role != "nobody" else None, body)
                where = f"{key} as {role} for {household}: {status} {str(data)[:200]}"
                if role == "nobody" and roles != ["anyone"]:
                    assert status == 401 and data["error"]["code"] == "unauthenticated", where
                    assert fingerprint(gateway) == before, f"changed: {where}"
                    outcomes["refused"] += 1
                elif not allowed:
                    # then a call outside the caller's role or reach is refused and changes nothing
                    assert status in (403, 404), where
                    assert fingerprint(gateway) == before, f"changed: {where}"
                    outcomes["refused"] += 1
                else:
                    # and an allowed one is not refused, and does what it says where it can here
                    code = data["error"]["code"] if status >= 300 and isinstance(data, dict) else None
                    if code in NEEDS_MORE.get(key, ()):
                        outcomes["allowed, not done here"] += 1
                    elif status >= 300:
                        assert status not in (401, 403, 404), where
                        unexpected.append(where)
                    else:
                        outcomes["allowed and done"] += 1
                    assert not leaks(data, role), f"another household in the answer: {where}"
                    if role == "provider" and "/devices" in path and isinstance(data, dict):
                        kinds = {
                            c["kind"] for d in data.get("items", [data]) for c in d.get("capabilities", [])
                        }
                        assert kinds <= set(PROVIDER_KINDS), f"kinds {kinds}: {where}"
        assert not unexpected, (
            "allowed calls that did not succeed (a new operation needs a body in BODIES, "
            "or, if it cannot succeed here, its error code in NEEDS_MORE):\n" + "\n".join(unexpected)
        )
        assert outcomes["refused"] > 400 and outcomes["allowed and done"] > 250, outcomes
