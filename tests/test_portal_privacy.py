"""Health data and people's data stay where the household's consent and the caller's role allow.

The health routes refuse a manager without the household's consent; the same readings must
not come back another way — as a device's state, in the inventory, on the demo's open views,
or over the live WebSocket — and an installer sees devices, not people.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from linli.gateway.component import ComponentApi
from linli.gateway.privacy import category_of
from linli.portal.app import create_app
from tests.brokers import settle
from tests.discovering import DISCOVERY, discovery_config
from tests.homes import add_home, publish
from tests.portal_accounts import PORTAL_SERVICES, add_account, api_token, portal

HEALTH = {"blood_pressure", "heart_rate", "spo2", "glucose", "weight", "body_temperature"}


async def _home_with_a_reading(make_gateway, broker, **config):  # type: ignore[no-untyped-def]
    """Homes h1, h2; 李建国 of h1 measured 137/87 on the cuff, and the door is closed."""
    gateway = await make_gateway(components=PORTAL_SERVICES, **config)
    topics = {**await add_home(gateway, "h1"), **await add_home(gateway, "h2")}
    await gateway.registry.async_add_resident("h1-r1", "h1", "李建国")
    await publish(
        broker.port,
        [(topics["h1-bp"], {"sys": 137, "dia": 87, "pul": 71}), (topics["h1-door"], {"contact": False})],
    )
    await settle(lambda: "blood_pressure" in gateway.registry.device("h1-bp").states)
    await settle(lambda: gateway.registry.device("h1-door").states)
    return gateway


def _health_caps(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for d in devices for c in d["capabilities"] if c["kind"] in HEALTH]


def _shows_no_reading(devices: list[dict[str, Any]], reason: str = "consent_required") -> None:
    caps = _health_caps(devices)
    assert caps, "the cuff's capabilities are still listed"
    for cap in caps:
        assert cap["value"] is None and cap["last_reported"] is None, cap
        assert cap["redacted"] == reason, cap
    # the reading (137/87) nowhere, as a number (a timestamp such as 1796591370.137 is no reading)
    assert not re.search(rb"[^0-9.]137[^0-9.]", orjson.dumps(devices))


def _shows_the_reading(devices: list[dict[str, Any]]) -> None:
    values = [c["value"] for c in _health_caps(devices) if c["value"] is not None]
    assert any(isinstance(v, dict) and v.get("systolic") == 137 for v in values) or b"137" in orjson.dumps(
        values
    ), values
    assert not any("redacted" in c for c in _health_caps(devices))


async def _device_views(client: TestClient[Any, Any], headers: dict[str, str]) -> list[list[dict[str, Any]]]:
    listed = await client.get("/api/v1/households/h1/devices", headers=headers)
    one = await client.get("/api/v1/households/h1/devices/h1-bp", headers=headers)
    inventory = await client.get("/api/v1/devices", params={"household_id": "h1"}, headers=headers)
    assert (listed.status, one.status, inventory.status) == (200, 200, 200)
    return [
        (await listed.json())["items"],
        [await one.json()],
        (await inventory.json())["items"],
    ]


def test_the_health_kinds_of_the_vocabulary_are_the_sensitive_ones() -> None:
    from linli.gateway.capabilities import KINDS

    assert {k for k in KINDS if category_of(k) == "health"} == HEALTH
    assert category_of("contact") is None and category_of("battery") is None


async def test_device_state_of_health_kinds_follows_the_health_routes_consent(make_gateway, broker) -> None:
    # given a household whose cuff holds a reading, and no consent to share beyond the household
    gateway = await _home_with_a_reading(make_gateway, broker)
    await add_account(gateway, "mgr", "manager")
    await add_account(gateway, "fitter", "installer")
    await add_account(gateway, "li", "resident", "h1")
    bearer = {
        name: {"Authorization": f"Bearer {await api_token(gateway, name)}"}
        for name in ("mgr", "fitter", "li")
    }
    async with portal(gateway) as client:
        # the health route refuses the manager…
        refused = await client.get(
            "/api/v1/households/h1/residents/h1-r1/health/readings", headers=bearer["mgr"]
        )
        assert (refused.status, (await refused.json())["error"]["code"]) == (403, "consent_required")
        # …and so does every device view: the cuff is listed, its reading is not
        for who in ("mgr", "fitter"):
            for view in await _device_views(client, bearer[who]):
                _shows_no_reading(view, "consent_required" if who == "mgr" else "not_permitted")
                doors = [c for d in view for c in d["capabilities"] if c["kind"] == "contact"]
                if who == "mgr":  # the duty desk sees the doors…
                    assert all(c["value"] is not None and "redacted" not in c for c in doors)
                else:  # …an installer, who sets up hardware, not when a door opens
                    assert all(c["value"] is None and c["redacted"] == "not_permitted" for c in doors)
        # the household's own resident sees it everywhere
        for view in await _device_views(client, bearer["li"]):
            _shows_the_reading(view)
        # when the household consents to share with providers (the community's care desk is one),
        # the manager sees it — on the health route and as device state alike; an installer never
        await gateway.components["health"].async_grant_consent("h1", by="h1 admin", purposes=["provider"])
        allowed = await client.get(
            "/api/v1/households/h1/residents/h1-r1/health/readings", headers=bearer["mgr"]
        )
        assert allowed.status == 200
        for view in await _device_views(client, bearer["mgr"]):
            _shows_the_reading(view)
        for view in await _device_views(client, bearer["fitter"]):
            _shows_no_reading(view, "not_permitted")
        spec = await (await client.get("/api/v1/openapi.json")).json()
        for path in ("/api/v1/devices", "/api/v1/households/{household_id}/devices/{device_id}"):
            assert "consent_required" in orjson.dumps(spec["paths"][path]["get"]["responses"]).decode()


async def test_the_demos_open_views_never_show_health_values_and_open_nothing_else(
    make_gateway, broker
) -> None:
    # given the demo's setting: read-only views open to this machine without signing in
    gateway = await _home_with_a_reading(make_gateway, broker, portal={"open_local_views": True})
    await add_account(gateway, "mgr", "manager")
    async with portal(gateway) as client:
        listed = await client.get("/api/v1/households/h1/devices")
        assert listed.status == 200
        _shows_no_reading((await listed.json())["items"], "not_permitted")
        # and nothing beyond those views opens: not the REST API, the inbox, adapters, screens
        for path in (
            "/api/v1/households/h1/devices/h1-bp",
            "/api/v1/devices",
            "/api/v1/inbox",
            "/api/v1/adapters",
        ):
            assert (await client.get(path)).status == 401, path


@pytest.mark.slow
async def test_live_state_events_carry_health_values_only_to_whom_may_see_them(make_gateway, broker) -> None:
    # given the household's resident and the manager (no consent) on the live WebSocket
    gateway = await make_gateway(components=PORTAL_SERVICES)
    topics = await add_home(gateway, "h1")
    await add_account(gateway, "mgr", "manager")
    await add_account(gateway, "li", "resident", "h1")
    async with portal(gateway) as client:
        sockets = {
            name: await client.ws_connect(
                "/api/v1/ws", headers={"Authorization": f"Bearer {await api_token(gateway, name)}"}
            )
            for name in ("mgr", "li")
        }
        for ws in sockets.values():
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
        # when the cuff reports a reading
        await publish(broker.port, [(topics["h1-bp"], {"sys": 137, "dia": 87, "pul": 71})])

        async def messages(ws: Any, wait: float) -> list[dict[str, Any]]:
            got = []
            try:
                while True:
                    got.append(await ws.receive_json(timeout=wait))
            except TimeoutError:
                return got

        mine = await messages(sockets["li"], 3.0)
        theirs = await messages(sockets["mgr"], 0.5)
        # then the resident gets it, the manager does not (no state event carries it to them)
        assert any(m["type"] == "state" and m["kind"] == "blood_pressure" and m["value"] for m in mine), mine
        assert b"137" not in orjson.dumps(theirs), theirs
        for ws in sockets.values():
            await ws.close()


async def test_an_installer_sees_a_households_devices_but_none_of_its_people(make_gateway, broker) -> None:
    # given a household with a resident who pressed the SOS pendant
    gateway = await make_gateway(components=PORTAL_SERVICES)
    topics = await add_home(gateway, "h1")
    await gateway.registry.async_add_resident("h1-r1", "h1", "李建国")
    await gateway.registry.async_add_resident("h1-r2", "h1", "王秀英")
    engine = gateway.components["alerts"]
    await publish(
        broker.port,
        [
            (topics["h1-sos"], {"sos": "idle"}),
            (topics["h1-sos"], {"sos": "pressed"}),
            (topics["h1-motion"], {"occupancy": True}),
        ],
    )
    await settle(lambda: engine.open_alerts("h1"))
    await add_account(gateway, "fitter", "installer")
    await add_account(gateway, "mgr", "manager")
    async with portal(gateway) as client:
        seen = {}
        for name in ("fitter", "mgr"):
            response = await client.get(
                "/api/v1/households/h1", headers={"Authorization": f"Bearer {await api_token(gateway, name)}"}
            )
            assert response.status == 200
            seen[name] = await response.json()
    # then the manager sees the people; the installer the devices and counts only
    assert {r["name"] for r in seen["mgr"]["residents"]} == {"李建国", "王秀英"} and seen["mgr"]["alerts"]
    fitter = seen["fitter"]
    assert fitter["residents"] == [] and fitter["alerts"] == [] and fitter["presence"] == []
    assert fitter["check_in"] is None and fitter["alarm"] is None and fitter["vitals"] == []
    text = orjson.dumps(fitter).decode()
    assert "李建国" not in text and "王秀英" not in text
    assert fitter["status"]["devices"] == len(topics) and fitter["status"]["open_alerts"] == 1


async def test_nothing_but_sign_in_setup_and_docs_works_before_the_first_account(make_gateway) -> None:
    # given `linli run` on its defaults (open_local_views off) and no account yet
    gateway = await make_gateway(
        components=[*PORTAL_SERVICES, *DISCOVERY], discovery=discovery_config("mqtt")
    )
    await add_home(gateway, "h1")
    async with TestClient(
        TestServer(create_app(ComponentApi(gateway, "portal")), host="127.0.0.1")
    ) as client:
        # then every read and every inbox decision is refused to an anonymous caller…
        for method, path, kw in [
            ("GET", "/api/v1/inbox", {}),
            ("GET", "/api/v1/households", {}),
            ("GET", "/api/v1/status", {}),
            ("GET", "/api/v1/households/h1/devices", {}),
            ("POST", "/api/v1/inbox/scan", {}),
            ("POST", "/api/v1/inbox/x/reject", {"json": {"by": "anon"}}),
            ("POST", "/api/v1/inbox/x/ignore", {"headers": {"X-Linli-User": "anon"}}),
        ]:
            response = await client.request(method, path, **kw)
            assert response.status == 401, f"{method} {path} -> {response.status}"
            assert (await response.json())["error"]["code"] == "unauthenticated"
        # …the old first page sends to sign-in…
        first = await client.get("/", allow_redirects=False)
        assert first.status == 302 and first.headers["Location"].startswith("/login")
        # …while sign-in, setup and the API docs answer
        for path in ("/login", "/setup", "/api/docs", "/api/v1/openapi.json"):
            assert (await client.get(path)).status == 200, path
