"""Deletion: when a household's data is deleted, and then the household itself, nothing names it.

The household is used the way a family uses it — readings, an SOS answered by the duty desk, a
check-in, a medication reminder, an alarm PIN and an armed-then-disarmed alarm, care settings,
consent, an announcement to the home, an export, a TV box — so that as many tables as the
services create hold a row about it. Its admin deletes its data: no table of the SQLite file
may then hold its residents' names or the medicine, and none of the per-household rows the
issue found left behind (care settings, announcements, alarm PIN hashes, panel state). The
office then removes its accounts, devices and the household: no table of the file (every one
sqlite_master lists), nor the alarm journal beside it, may hold the household's id, its
residents' names or its accounts' names. A neighbouring household keeps all of its data.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from linli.gateway import users
from linli.gateway.mqtt.topics import device_topic
from linli.gateway.runtime import Gateway
from linli.gateway.store.journal import journal_path
from linli.sim.dial_box import DialBox
from tests.brokers import settle
from tests.homes import DEVICES, publish
from tests.portal_accounts import PORTAL_SERVICES, portal
from tests.stb.boxes import STB_COMPONENTS, adopt, stb_settings

GONE, KEPT = "hzhao", "hqian"
RESIDENT = "赵德明"
NEIGHBOUR = "钱玉兰"
MEDICINE = "二甲双胍缓释片"
ACCOUNTS = {"zhao.admin": ("household_admin", "赵小红"), "zhao.res": ("resident", "赵家老三")}
PIN = "8642"
PASSWORD = "deletion-test-2026"


def scan(database: Path, needles: list[str]) -> list[str]:
    """Every (table, column, needle) where a value of any table of the file holds a needle."""
    hits = []
    conn = sqlite3.connect(database)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert tables, f"{database} has no tables"
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    text = value.decode("utf-8", "ignore") if isinstance(value, bytes) else str(value)
                    hits += [
                        f"{table}.{column}: {needle!r} in {text[:100]!r}"
                        for n in needles
                        if (needle := n) in text
                    ]
    finally:
        conn.close()
    return hits


async def home(gateway: Gateway, household: str, unit: str) -> dict[str, str]:
    """A household in its own flat (a unit that stays when the household goes), with devices."""
    registry = gateway.registry
    if "b1" not in registry.buildings:
        await registry.async_add_building("b1", "1号楼")
    await registry.async_add_unit(unit, "b1", unit.removeprefix("u-"))
    await registry.async_add_household(household, unit, f"{household} home")
    topics = {}
    for name, profile in DEVICES.items():
        device_id = f"{household}-{name}"
        topics[device_id] = device_topic(household, device_id)
        await registry.async_add_device(
            device_id, household_id=household, name=name, profile_id=profile, topic=topics[device_id]
        )
    return topics


async def fill(gateway: Gateway, client: Any, broker_port: int) -> dict[str, str]:
    """Both homes in use; returns the bearer tokens of the gone home's admin, resident, the manager."""
    registry = gateway.registry
    topics = {**await home(gateway, GONE, "u-301"), **await home(gateway, KEPT, "u-302")}
    tv = DialBox(name=f"{GONE}-tv")
    await tv.async_start()
    gateway_tv = await adopt(gateway, GONE, tv)
    resident = await registry.async_add_resident(f"{GONE}-r1", GONE, RESIDENT, data={"birth_year": 1948})
    await registry.async_add_resident(f"{KEPT}-r1", KEPT, NEIGHBOUR)
    for device in ("bp", "sos"):
        await registry.async_assign_device(f"{GONE}-{device}", resident.id)
    await registry.async_assign_device(f"{KEPT}-bp", f"{KEPT}-r1")
    digest = users.hash_password(PASSWORD)
    tokens = {}

    def account(db: Any, name: str, role: str, household: str | None, display: str | None) -> str:
        user = users.add_user(
            db.conn, name, role, password_hash=digest, household_id=household, display_name=display, by="test"
        )
        return users.create_token(db.conn, kind=users.TokenKind.API, user_id=user.id, name="t", ttl_s=3600)[1]

    for name, (role, display) in ACCOUNTS.items():
        tokens[name] = await gateway.store.async_write(
            lambda db, n=name, r=role, d=display: account(db, n, r, GONE, d)
        )
    tokens["mgr"] = await gateway.store.async_write(lambda db: account(db, "del.mgr", "manager", None, None))
    tokens["qian"] = await gateway.store.async_write(
        lambda db: account(db, "qian.res", "resident", KEPT, None)
    )
    headers = {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}

    async def call(method: str, url: str, who: str, body: Any = None, ok: int = 200) -> Any:
        response = await client.request(method, url, json=body, headers=headers[who])
        assert response.status == ok, f"{method} {url} as {who}: {response.status} {await response.text()}"
        return await response.json()

    # readings (one refused as implausible), someone home, a malformed payload, an SOS
    await publish(
        broker_port,
        [
            (topics[f"{GONE}-bp"], {"sys": 186, "dia": 123, "pul": 88}),
            (topics[f"{GONE}-bp"], {"sys": 900, "dia": 20, "pul": 88}),
            (topics[f"{KEPT}-bp"], {"sys": 128, "dia": 82, "pul": 70}),
            (topics[f"{GONE}-motion"], {"occupancy": True}),
            (topics[f"{GONE}-door"], {"contact": True}),
            (topics[f"{GONE}-door"], b"{not json"),
            (topics[f"{GONE}-sos"], {"sos": "idle"}),
            (topics[f"{GONE}-sos"], {"sos": "pressed"}),
            (topics[f"{KEPT}-sos"], {"sos": "idle"}),
            (topics[f"{KEPT}-sos"], {"sos": "pressed"}),
        ],
    )
    engine = gateway.components["alerts"]
    await settle(lambda: {a.kind for a in engine.open_alerts(GONE)} >= {"sos", "vital_sign"})
    await settle(lambda: engine.open_alerts(KEPT))
    sos = next(a for a in engine.open_alerts(GONE) if a.kind == "sos")
    await call("POST", f"/api/v1/alerts/{sos.id}/assign", "mgr", {"assignee": "值班员小周"})
    await call("POST", f"/api/v1/alerts/{sos.id}/acknowledge", "mgr")
    await call("POST", f"/api/v1/alerts/{sos.id}/resolve", "mgr", {"note": f"{RESIDENT} 已送医"})
    # care, consent, thresholds, the alarm, an announcement to the home, an export
    await call(
        "POST", f"/api/v1/households/{GONE}/consent", "zhao.admin", {"purpose": "carer", "granted": True}
    )
    await call(
        "PATCH",
        f"/api/v1/households/{GONE}/care/settings",
        "zhao.admin",
        {
            "check_in": {"enabled": True, "by": "09:30"},
            "inactivity": {"residents": {resident.id: {"daytime_limit_s": 7200}}},
        },
    )
    made = await call(
        "POST",
        f"/api/v1/households/{GONE}/care/reminders",
        "zhao.admin",
        {"title": MEDICINE, "times": ["08:00"]},
        201,
    )
    await call("POST", f"/api/v1/households/{GONE}/care/reminders/{made['id']}/confirm", "zhao.res")
    await call("POST", f"/api/v1/households/{GONE}/care/check-in", "zhao.res", {"resident_id": resident.id})
    await call(
        "PATCH",
        f"/api/v1/households/{GONE}/health/thresholds/{resident.id}",
        "zhao.admin",
        {"systolic_crisis": 175},
    )
    security = gateway.components["security"]
    for name in ACCOUNTS:
        await security.async_set_pin(GONE, name, PIN, by="test")
    await call(
        "POST",
        f"/api/v1/households/{GONE}/alarm/arm",
        "zhao.res",
        {"mode": "home", "pin": PIN, "force": True},
    )
    await call("POST", f"/api/v1/households/{GONE}/alarm/disarm", "zhao.res", {"pin": PIN})
    await call(
        "POST",
        "/api/v1/announcements",
        "mgr",
        {"title": "上门服务", "body": f"{RESIDENT} 家明天上午测血压", "scope": "household", "scope_id": GONE},
        201,
    )
    await call("GET", f"/api/v1/households/{GONE}/export", "zhao.admin")
    await gateway.store.async_flush()
    tv_id = gateway_tv.id
    await tv.async_stop()
    return {"tv": tv_id}


@pytest.mark.slow
async def test_deleting_a_household_leaves_no_row_that_names_it(make_gateway, broker, monkeypatch) -> None:
    monkeypatch.setenv("LINLI_WAKE_LOOPBACK_ONLY", "1")
    gateway = await make_gateway(
        components=[*PORTAL_SERVICES, "linli.services.security:Security", *STB_COMPONENTS],
        adapters=stb_settings(),
    )
    database = Path(gateway.store.path)
    async with portal(gateway) as client:
        # given two homes in use, every service having written about them
        await fill(gateway, client, broker.port)
        people = [RESIDENT, MEDICINE]
        before = scan(database, [*people, NEIGHBOUR])
        assert len(before) > 10 and any(NEIGHBOUR in h for h in before), before
        tables_with_home = {h.split(".")[0] for h in scan(database, [GONE])}
        assert len(tables_with_home) >= 15, sorted(tables_with_home)  # the test fills many tables

        async def call(method: str, url: str, token_of: str, body: Any = None) -> Any:
            token = await gateway.store.async_write(
                lambda db: users.create_token(
                    db.conn,
                    kind=users.TokenKind.API,
                    user_id=users.get_user(db.conn, name=token_of).id,  # type: ignore[union-attr]
                    name="t",
                    ttl_s=600,
                )[1]
            )
            response = await client.request(
                method, url, json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status == 200, f"{method} {url}: {response.status} {await response.text()}"
            return await response.json()

        # when its admin deletes the household's data
        await call("DELETE", f"/api/v1/households/{GONE}/data", "zhao.admin", {"confirm": GONE})
        await gateway.store.async_flush()
        # then no table holds its residents' names or their medicine…
        assert not scan(database, people), "\n".join(scan(database, people))
        # …nor the per-household rows that used to stay behind
        with sqlite3.connect(database) as conn:
            for table in (
                "eldercare_settings",
                "alarm_pins",
                "alarm_panels",
                "care_reminders",
                "alarm_events",
            ):
                count = conn.execute(
                    f"SELECT count(*) FROM {table} WHERE household_id = ?", (GONE,)
                ).fetchone()[0]
                assert count == 0, f"{table}: {count} rows of {GONE} after the deletion"
            left = conn.execute("SELECT count(*) FROM announcements WHERE scope_id = ?", (GONE,)).fetchone()[
                0
            ]
            assert left == 0, "the household's announcements stayed"
            ips = conn.execute(  # the deletion's own line says who deleted, from where
                "SELECT count(*) FROM audit WHERE household_id = ? AND ip IS NOT NULL "
                "AND action != 'privacy.delete'",
                (GONE,),
            )
            assert ips.fetchone()[0] == 0, "audit lines of the household kept addresses"
        # and the neighbours' data is all there
        assert any(NEIGHBOUR in h for h in scan(database, [NEIGHBOUR]))
        assert gateway.components["alerts"].open_alerts(KEPT)

        # when the office removes its accounts, its devices, and the household
        for name in ACCOUNTS:
            user = await gateway.store.async_read(lambda c, n=name: users.get_user(c, name=n))
            await call("DELETE", f"/api/v1/users/{user.id}", "del.mgr")
        for device in gateway.registry.household_devices(GONE):
            await gateway.registry.async_remove_device(device.id)
        await call("DELETE", f"/api/v1/households/{GONE}", "del.mgr")
        await gateway.store.async_flush()
        # then nothing in any table of the file, or in the alarm journal, names it or its people
        needles = [GONE, RESIDENT, MEDICINE, *ACCOUNTS, *(d for _, d in ACCOUNTS.values())]
        hits = scan(database, needles) + scan(journal_path(database), needles)
        assert not hits, f"{len(hits)} rows still name the household:\n" + "\n".join(hits[:40])
        # while the neighbours keep theirs
        assert any(NEIGHBOUR in h for h in scan(database, [NEIGHBOUR]))
        assert scan(database, [KEPT])


async def test_a_household_is_exported_and_deleted_where_no_service_is_configured(make_gateway) -> None:
    # given a gateway running no service (no alert, health, care, alarm or discovery tables in its file)
    gateway = await make_gateway()
    database = Path(gateway.store.path)
    with sqlite3.connect(database) as conn:
        present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not {"alerts", "health_thresholds", "care_reminders", "alarm_pins", "inbox_decisions"} & present
    await home(gateway, GONE, "u-301")
    await gateway.registry.async_add_resident(f"{GONE}-r1", GONE, RESIDENT)
    await gateway.registry.async_add_resident(f"{GONE}-r2", GONE, "搬走的人")
    await gateway.registry.async_remove_resident(f"{GONE}-r2")  # no health thresholds to forget here
    digest = users.hash_password(PASSWORD)

    def account(db: Any, name: str, role: str, household: str | None) -> str:
        user = users.add_user(db.conn, name, role, password_hash=digest, household_id=household, by="test")
        return users.create_token(db.conn, kind=users.TokenKind.API, user_id=user.id, name="t", ttl_s=600)[1]

    admin = await gateway.store.async_write(lambda db: account(db, "zhao.admin", "household_admin", GONE))
    office = await gateway.store.async_write(lambda db: account(db, "del.mgr", "manager", None))
    async with portal(gateway) as client:

        async def call(method: str, url: str, token: str, body: Any = None) -> Any:
            response = await client.request(
                method, url, json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status == 200, f"{method} {url}: {response.status} {await response.text()}"
            return await response.json()

        # when its admin exports and deletes its data, and the office removes it
        exported = await call("GET", f"/api/v1/households/{GONE}/export", admin)
        await call("DELETE", f"/api/v1/households/{GONE}/data", admin, {"confirm": GONE})
        user = await gateway.store.async_read(lambda c: users.get_user(c, name="zhao.admin"))
        await call("DELETE", f"/api/v1/users/{user.id}", office)
        for device in gateway.registry.household_devices(GONE):
            await gateway.registry.async_remove_device(device.id)
        await call("DELETE", f"/api/v1/households/{GONE}", office)
    # then the export had what there was (and nothing of the absent services) and nothing names it now
    assert [r["name"] for r in exported["data"]["residents"]] == [RESIDENT]
    assert exported["data"]["alerts"] == [] and exported["data"]["health_readings"] == []
    await gateway.store.async_flush()
    assert not scan(database, [GONE, RESIDENT, "zhao.admin"])
