"""Each owner's tables: the core's when the store starts, a component's just before it starts.

Files made by the one global list of earlier releases (PRAGMA user_version 1..15, every
service's tables whatever was configured) open with all their data: the ledger starts each
owner at the steps that list had already run, so nothing runs twice. A component that is not
configured leaves no tables, and what reads a component's tables copes with their absence.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlite_utils

from linli.gateway.discovery import migrations as discovery
from linli.gateway.store import Migration, SchemaTooNewError, Store, migrate, schema_version
from linli.gateway.store import migrations as core
from linli.gateway.store.database import connect
from linli.gateway.uplink import migrations as uplink
from linli.services.alerts import migrations as alerts
from linli.services.eldercare import migrations as eldercare
from linli.services.health import migrations as health
from linli.services.security import migrations as security
from tests.brokers import settle

# Every owner of tables, by the component name it is migrated under.
OWNERS: dict[str, Sequence[Migration]] = {
    "core": core.MIGRATIONS,
    "alerts": alerts.MIGRATIONS,
    "discovery": discovery.MIGRATIONS,
    "health": health.MIGRATIONS,
    "security": security.MIGRATIONS,
    "eldercare": eldercare.MIGRATIONS,
    "uplink": uplink.MIGRATIONS,
}
SERVICES = [
    "linli.adapters.mqtt_device:MqttDeviceAdapter",
    "linli.services.alerts:AlertEngine",
    "linli.services.health:Health",
    "linli.services.eldercare:ElderCare",
    "linli.services.security:Security",
]


def released(migrations: Sequence[Migration], up_to: int = core.LEGACY_LATEST) -> int:
    """How many of an owner's steps the global list had run on a file at version `up_to`."""
    return sum(1 for m in migrations if m.released_as is not None and m.released_as <= up_to)


def global_list_database(path: Path, version: int = core.LEGACY_LATEST) -> None:
    """A file as a release before the ledger left it: every owner's steps in the global list's order,
    each in its transaction with `PRAGMA user_version`, up to `version`."""
    steps = sorted(
        ((m.released_as, m) for ms in OWNERS.values() for m in ms if m.released_as is not None),
        key=lambda pair: pair[0],
    )
    conn = connect(path)
    db = sqlite_utils.Database(conn)
    for number, step in steps:
        if number > version:
            break
        conn.execute("BEGIN IMMEDIATE")
        step.apply(db)
        conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    conn.close()


def schema(path: Path) -> set[tuple[str, str, str]]:
    with sqlite3.connect(path) as conn:
        return {
            (kind, name, sql)
            for kind, name, sql in conn.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
            )
            if name != "schema_versions"
        }


def ledger(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT owner, version FROM schema_versions").fetchall())


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_each_global_version_is_one_owners_step_and_the_split_makes_the_same_schema(tmp_path: Path) -> None:
    # given the steps of every owner, each saying which global version it shipped as
    numbers = sorted(m.released_as for ms in OWNERS.values() for m in ms if m.released_as is not None)
    assert numbers == list(range(1, core.LEGACY_LATEST + 1))
    # when one file is made the old way (global order) and one owner by owner (core first)
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    global_list_database(old)
    conn = connect(new)
    for owner, migrations in OWNERS.items():
        migrate(conn, owner, migrations, target=released(migrations))
    conn.close()
    # then both hold the same tables, columns, indexes and triggers
    assert schema(new) == schema(old)


async def test_file_from_the_global_list_opens_with_its_data_and_no_step_runs_twice(
    make_gateway, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given a file the last release before the ledger made (version 15), with a household's history
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    path = data_dir / "linli.db"
    global_list_database(path)
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            INSERT INTO communities VALUES ('community', 'Linli community', 1.0);
            INSERT INTO buildings VALUES ('b1', 'community', '1号楼');
            INSERT INTO units VALUES ('u1', 'b1', '301');
            INSERT INTO households VALUES ('h1', 'u1', '王家', 1.0);
            INSERT INTO residents (id, household_id, name, created) VALUES ('r1', 'h1', '王秀英', 1.0);
            INSERT INTO alerts (id, kind, severity, household_id, title, detail, state, raised_at,
                                last_seen_at, resolved_at, resolved_by)
                VALUES (7, 'sos', 'critical', 'h1', 'SOS 王秀英', '', 'resolved',
                        100.0, 100.0, 160.0, 'desk');
            INSERT INTO alert_events (alert_id, ts, action, actor) VALUES (7, 100.0, 'raised', NULL);
            INSERT INTO health_readings (household_id, resident_id, attribution, kind, loinc, unit, value,
                                         device_id, ts, received)
                VALUES ('h1', 'r1', 'assigned', 'body_temperature', '8310-5', 'Cel', 36.6,
                        'h1-thermo', 90.0, 91.0);
            INSERT INTO care_reminders (id, household_id, kind, title, times, window_min, active, created)
                VALUES ('rem1', 'h1', 'medication', '二甲双胍', '["08:00"]', 60, 0, 1.0);
            INSERT INTO alarm_events (household_id, ts, action, actor, state)
                VALUES ('h1', 50.0, 'arm', 'u', 'armed');
            """
        )
    # when this Linli starts on it with the services configured
    caplog.set_level(logging.INFO, logger="linli.gateway.store")
    gateway = await make_gateway(data_dir=data_dir, components=SERVICES)
    # then the history is there, read by the services that own it…
    engine = gateway.components["alerts"]
    alert = await engine.async_get(7)
    assert alert is not None and alert.title == "SOS 王秀英" and alert.state == "resolved"
    readings = await gateway.components["health"].async_readings("r1")
    assert [(r.kind, r.value) for r in readings] == [("body_temperature", 36.6)]
    rows = await gateway.store.async_read(
        lambda c: (
            c.execute("SELECT title FROM care_reminders").fetchall(),
            c.execute("SELECT action FROM alarm_events").fetchall(),
        )
    )
    assert rows == ([("二甲双胍",)], [("arm",)])
    # …and only the steps added since the ledger ran (a repeated CREATE TABLE would have failed the start)
    configured = ("core", "alerts", "health", "eldercare", "security")
    migrated = sorted(
        r.getMessage().split(": ", 1)[1] for r in caplog.records if "tables migrated" in r.getMessage()
    )
    assert migrated == sorted(
        f"{owner} tables migrated to version {len(OWNERS[owner])}"
        for owner in configured
        if len(OWNERS[owner]) > released(OWNERS[owner])
    )
    # …each owner the ledger knows is at its latest, and an old Linli would refuse the file now
    assert ledger(path) == {owner: len(OWNERS[owner]) for owner in configured}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == core.LEDGER_MARK + core.LEGACY_LATEST


async def test_a_component_configured_later_on_an_old_file_finds_its_tables(tmp_path: Path) -> None:
    # given a file of version 15 opened once by this Linli without the uplink or discovery
    path = tmp_path / "linli.db"
    global_list_database(path)
    store = Store(path)
    await store.async_start()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO uplink_state VALUES ('clock_offset', '0.25')")
    # when the uplink is configured afterwards
    applied = await store.async_migrate("uplink", uplink.MIGRATIONS)
    offset = await store.async_read(lambda c: c.execute("SELECT value FROM uplink_state").fetchall())
    await store.async_stop()
    # then its tables from the global list are its own: nothing ran, nothing was lost
    assert applied == [] and offset == [("0.25",)]
    assert ledger(path)["uplink"] == len(uplink.MIGRATIONS)


async def test_file_from_an_older_global_version_gets_only_what_it_lacks(tmp_path: Path) -> None:
    # given a file of version 12 (before the care routine, regional announcements and MQTT clients)
    path = tmp_path / "linli.db"
    global_list_database(path, version=12)
    # when the store and elder care start on it
    store = Store(path)
    core_applied = await store.async_start()
    care_applied = await store.async_migrate("eldercare", eldercare.MIGRATIONS)
    await store.async_stop()
    # then the core ran its steps from after 12, elder care only the routine
    assert core_applied == list(range(released(core.MIGRATIONS, 12) + 1, core.LATEST + 1))
    assert care_applied == [2]
    assert {"care_activity", "mqtt_clients", "care_reminders"} <= tables(path)


async def test_component_tables_appear_only_when_the_component_is_configured(
    make_gateway, tmp_path: Path
) -> None:
    # given a gateway with no service configured
    data_dir = tmp_path / "data"
    gateway = await make_gateway(data_dir=data_dir)
    path = Path(gateway.store.path)
    # then the file holds the core's tables only
    assert {"devices", "telemetry", "residents", "users", "audit"} <= tables(path)
    service_tables = {"alerts", "alert_events", "health_readings", "alarm_panels", "care_reminders", "inbox"}
    assert not service_tables & tables(path)
    assert set(ledger(path)) == {"core"}
    await gateway.async_stop()
    # when the alert engine is configured and the gateway starts again
    gateway = await make_gateway(data_dir=data_dir, gateway_id="gw-again", components=SERVICES[:2])
    # then its tables are there (and only its), and it works on them
    assert {"alerts", "alert_events", "alert_policies"} <= tables(path)
    assert not {"health_readings", "alarm_panels", "care_reminders", "inbox"} & tables(path)
    assert ledger(path) == {"core": core.LATEST, "alerts": len(alerts.MIGRATIONS)}
    await gateway.registry.async_add_building("b1", "1号楼")
    await gateway.registry.async_add_unit("u1", "b1", "301")
    await gateway.registry.async_add_household("h1", "u1", "王家")
    raised = await gateway.components["alerts"].async_raise(kind="sos", household_id="h1", title="SOS")
    await settle(lambda: gateway.components["alerts"].open_alerts("h1"))
    assert (await gateway.components["alerts"].async_get(raised.id)) is not None


async def test_component_tables_from_a_newer_linli_are_refused_naming_the_component(tmp_path: Path) -> None:
    # given a file whose alert tables a newer Linli has migrated further
    path = tmp_path / "linli.db"
    store = Store(path)
    await store.async_start()
    await store.async_migrate("alerts", alerts.MIGRATIONS)
    newer = len(alerts.MIGRATIONS) + 3
    await store.async_write(
        lambda db: db.conn.execute("UPDATE schema_versions SET version = ? WHERE owner = 'alerts'", (newer,))
    )
    # when this Linli would start the alert engine on it
    with pytest.raises(SchemaTooNewError) as caught:
        await store.async_migrate("alerts", alerts.MIGRATIONS)
    await store.async_stop()
    # then it is refused with whose tables, how new, and what to do; the file is untouched
    assert str(caught.value) == (
        f"database schema of alerts is version {newer}, this Linli knows up to {len(alerts.MIGRATIONS)}: "
        "upgrade Linli or restore a backup"
    )
    assert ledger(path)["alerts"] == newer


def test_file_of_an_unknown_format_is_refused(tmp_path: Path) -> None:
    # given a file whose user_version no Linli wrote (nor the global list, nor the ledger)
    path = tmp_path / "linli.db"
    conn = connect(path)
    conn.execute("PRAGMA user_version = 40")
    # when it is migrated, then it is refused before anything is written
    with pytest.raises(
        SchemaTooNewError, match="schema is version 40, this Linli knows up to 115: upgrade Linli"
    ):
        migrate(conn)
    assert schema_version(conn) == 0
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    conn.close()


async def test_gateway_owner_name_is_not_a_components(tmp_path: Path) -> None:
    store = Store(tmp_path / "linli.db")
    await store.async_start()
    with pytest.raises(ValueError, match="'core' is the owner of the gateway's own tables"):
        await store.async_migrate("core", alerts.MIGRATIONS)
    await store.async_stop()
