"""The SQLite store: migrations, batching, crash safety, durable writes and retention."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from linli.gateway.bus import EventBus
from linli.gateway.profiles import load_profiles
from linli.gateway.registry import Registry
from linli.gateway.store import (
    Migration,
    SchemaTooNewError,
    Store,
    async_apply_retention,
    migrate,
    schema_version,
)
from linli.gateway.store.database import connect
from linli.gateway.store.migrations import LATEST, MIGRATIONS

REPO = Path(__file__).resolve().parent.parent
DAY = 86400.0
HOUR = 3600.0
NOW = 1_700_000_000.0  # 22:13:20 UTC: the retention cutoff falls inside an hour


def query(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the file the way another process would: a fresh connection, closed after."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def telemetry_count(path: Path) -> int:
    return query(path, "SELECT count(*) FROM telemetry")[0][0]


def telemetry_rows(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM telemetry").fetchone()[0])


def entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def eventually(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(path: Path, **options: Any) -> AsyncIterator[Store]:
    store = Store(path, **options)
    await store.async_start()
    try:
        yield store
    finally:
        await store.async_stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with running(tmp_path / "linli.db", batch_ms=10) as opened:
        yield opened


def tables(path: Path) -> set[str]:
    return {name for (name,) in query(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}


def add_household_and_device(conn: sqlite3.Connection, device_row: int = 1) -> None:
    conn.execute("INSERT INTO communities VALUES ('c1', 'Community', 1.0)")
    conn.execute("INSERT INTO buildings VALUES ('b1', 'c1', 'Building 1')")
    conn.execute("INSERT INTO units VALUES ('u1', 'b1', '101')")
    conn.execute("INSERT INTO households VALUES ('h1', 'u1', 'Home', 1.0)")
    conn.execute(
        "INSERT INTO devices (row, id, household_id, name, profile_id, topic, created) "
        "VALUES (?, 'h1-thermo', 'h1', 'thermometer', 'aqara/wsdcgq11lm', 'linli/h1/thermo', 1.0)",
        (device_row,),
    )


# -- migrations ----------------------------------------------------------------------------------
# The per-owner ledger, components' own tables and files from before it: tests/test_migrations.py.


def test_empty_database_migrates_to_the_latest_core_schema(tmp_path: Path) -> None:
    # given a new, empty file
    path = tmp_path / "linli.db"
    conn = connect(path)
    # when it is migrated
    applied = migrate(conn)
    # then every core migration ran once, in order, and the core's tables exist (no service's)
    assert applied == list(range(1, LATEST + 1))
    assert schema_version(conn) == LATEST
    assert migrate(conn) == []
    conn.close()
    core = {"telemetry", "telemetry_hourly", "quarantine", "devices", "capability_state", "users"}
    assert core <= tables(path)
    assert not {"alerts", "health_readings", "alarm_panels", "inbox", "uplink_outbox"} & tables(path)


async def test_store_started_on_the_previous_schema_keeps_its_data_and_upgrades(tmp_path: Path) -> None:
    # given a database written by the previous Linli release
    path = tmp_path / "linli.db"
    conn = connect(path)
    assert migrate(conn, target=LATEST - 1) == list(range(1, LATEST))
    conn.execute("BEGIN")
    add_household_and_device(conn)
    conn.executemany(
        "INSERT INTO telemetry (device_row, capability, ts, num) VALUES (1, 'temperature', ?, ?)",
        [(1000.0 + i, 20.0 + i / 10) for i in range(10)],
    )
    conn.execute("COMMIT")
    conn.close()
    # when this release starts on it
    store = Store(path)
    applied = await store.async_start()
    households = await store.async_read(lambda c: c.execute("SELECT id, name FROM households").fetchall())
    await store.async_stop()
    # then only the new migration ran, the core is at the latest version and the old data is all there
    assert applied == [LATEST]
    assert query(path, "SELECT version FROM schema_versions WHERE owner = 'core'") == [(LATEST,)]
    assert households == [("h1", "Home")]
    assert query(path, "SELECT id, household_id FROM devices") == [("h1-thermo", "h1")]
    assert query(path, "SELECT count(*), sum(num) FROM telemetry") == [(10, pytest.approx(204.5))]
    assert "telemetry_hourly" in tables(path)


async def test_store_start_reports_the_migrations_it_applied(tmp_path: Path) -> None:
    path = tmp_path / "linli.db"
    async with running(path) as first:
        assert await first.async_read(lambda c: schema_version(c)) == LATEST
    store = Store(path)
    assert await store.async_start() == []
    await store.async_stop()


async def test_database_from_a_newer_linli_is_refused_untouched(tmp_path: Path) -> None:
    # given a database whose core tables a newer Linli has migrated further
    path = tmp_path / "linli.db"
    conn = connect(path)
    migrate(conn)
    conn.execute("UPDATE schema_versions SET version = ? WHERE owner = 'core'", (LATEST + 5,))
    conn.close()
    # when this Linli tries to open it
    store = Store(path)
    with pytest.raises(SchemaTooNewError) as caught:
        await store.async_start()
    await store.async_stop()
    # then it says whose tables, how new, and what to do; and the file keeps its version
    message = str(caught.value)
    assert f"schema of core is version {LATEST + 5}, this Linli knows up to {LATEST}" in message
    assert "upgrade Linli" in message
    assert query(path, "SELECT version FROM schema_versions WHERE owner = 'core'") == [(LATEST + 5,)]


def test_failing_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    # given a database at the latest version and a next migration that fails half way
    def half_way(db) -> None:  # type: ignore[no-untyped-def]
        db.execute("CREATE TABLE first_new (x)")
        db.execute("CREATE TABLE telemetry (x)")  # collides: the migration fails here

    path = tmp_path / "linli.db"
    conn = connect(path)
    migrate(conn)
    # when it is migrated
    with pytest.raises(sqlite3.OperationalError, match="already exists"):
        migrate(conn, "core", [*MIGRATIONS, Migration(half_way)])
    # then the table it had already created is gone and the version is unchanged
    assert schema_version(conn) == LATEST
    assert "first_new" not in {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()


async def test_store_file_is_in_wal_mode(store: Store) -> None:
    assert query(store.path, "PRAGMA journal_mode") == [("wal",)]


# -- telemetry batching ---------------------------------------------------------------------------


async def test_telemetry_is_committed_in_batches_by_row_count_and_on_flush_and_stop(tmp_path: Path) -> None:
    # given a store that commits every 10 s or every 5 values
    path = tmp_path / "linli.db"
    store = Store(path, batch_ms=10_000, batch_rows=5)
    await store.async_start()
    # when 4 single-value payloads are appended
    for i in range(4):
        store.append_telemetry(1, 1000.0 + i, {"temperature": 20 + i})
    await asyncio.sleep(0.2)
    # then nothing is on disk yet
    assert telemetry_count(path) == 0
    assert store.pending_rows == 4
    # when the 5th value arrives, the batch is committed without waiting for the timer
    store.append_telemetry(1, 1004.0, {"temperature": 24})
    await eventually(lambda: telemetry_count(path) == 5, timeout=2)
    # and a flush commits a partial batch
    store.append_telemetry(1, 1005.0, {"temperature": 25, "humidity": 40})
    await asyncio.sleep(0.05)
    assert telemetry_count(path) == 5
    await store.async_flush()
    assert telemetry_count(path) == 7
    # and stopping writes what is still queued, then closes
    store.append_telemetry(1, 1006.0, {"temperature": 26})
    await store.async_stop()
    assert telemetry_count(path) == 8
    with pytest.raises(RuntimeError, match="not open"):
        await store.async_read(lambda c: None)


async def test_telemetry_values_are_stored_by_type_and_latest_state_kept(store: Store) -> None:
    # given a registered device (row 1)
    def register(db) -> None:  # type: ignore[no-untyped-def]
        db.execute("INSERT INTO communities VALUES ('c', 'c', 0)")
        db.execute("INSERT INTO buildings VALUES ('b', 'c', 'b')")
        db.execute("INSERT INTO units VALUES ('u', 'b', 'u')")
        db.execute("INSERT INTO households VALUES ('h', 'u', 'h', 0)")
        db.execute(
            "INSERT INTO devices (row, id, household_id, name, profile_id, topic, created) "
            "VALUES (1, 'd', 'h', 'd', 'p', 't', 0)"
        )

    await store.async_write(register)
    # and payloads with numbers, booleans, text and a composite value
    store.append_telemetry(1, 100.0, {"temperature": 21.5, "door": True, "mode": "away"})
    store.append_telemetry(1, 101.0, {"temperature": 22, "bp": {"systolic": 120, "diastolic": 80}})
    # when they are written and the store stops
    await store.async_flush()
    await store.async_stop()
    # then each value is in the column that suits it
    rows = query(store.path, "SELECT capability, ts, num, value FROM telemetry ORDER BY rowid")
    assert rows == [
        ("temperature", 100.0, 21.5, None),
        ("door", 100.0, 1.0, None),
        ("mode", 100.0, None, '"away"'),
        ("temperature", 101.0, 22.0, None),
        ("bp", 101.0, None, '{"systolic":120,"diastolic":80}'),
    ]
    # and the latest value of each capability is the state
    state = dict(query(store.path, "SELECT capability, value FROM capability_state WHERE device_row = 1"))
    assert state == {
        "temperature": "22",
        "door": "true",
        "mode": '"away"',
        "bp": '{"systolic":120,"diastolic":80}',
    }


_KILL_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from linli.gateway.store import Store

    async def main():
        store = Store(Path(sys.argv[1]), batch_ms=2, batch_rows=300)
        await store.async_start()
        n = 0
        while True:  # until killed
            for _ in range(20):
                store.append_telemetry(n % 7, time.time(), {"a": n, "b": n / 2, "c": "x" * (n % 5)})
                n += 1
            await asyncio.sleep(0.0005)

    asyncio.run(main())
    """
)


@pytest.mark.slow
async def test_kill_9_mid_batch_leaves_a_consistent_database(tmp_path: Path) -> None:
    # given a process writing 3-value payloads as fast as it can, killed at different moments
    script = tmp_path / "writer.py"
    script.write_text(_KILL_SCRIPT, encoding="utf-8")
    path = tmp_path / "linli.db"
    counts = []
    for delay in (0.0, 0.03, 0.07, 0.15, 0.23):
        before = counts[-1] if counts else 0
        child = subprocess.Popen([sys.executable, str(script), str(path)], cwd=REPO)
        try:
            deadline = time.monotonic() + 20
            while True:
                assert child.poll() is None, "writer process died on its own"
                assert time.monotonic() < deadline, "writer process wrote nothing"
                with contextlib.suppress(sqlite3.OperationalError):
                    if telemetry_count(path) > before:
                        break
                await asyncio.sleep(0.01)
            await asyncio.sleep(delay)
            # when it is killed without warning
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
            child.wait(10)
        # then the file is intact and holds whole payloads only
        assert query(path, "PRAGMA integrity_check") == [("ok",)]
        count = telemetry_count(path)
        assert count > before
        assert count % 3 == 0, f"{count} rows: a payload was half written"
        # and the gateway starts on it again
        async with running(path) as store:
            assert await store.async_read(telemetry_rows) == count
        counts.append(count)


# -- durable writes ----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_checkpoints_keep_the_wal_small_between_telemetry_commits(tmp_path: Path) -> None:
    # given a store taking four bursts of telemetry a little over a second apart
    store = Store(tmp_path / "linli.db", batch_ms=10)
    await store.async_start()
    wal = tmp_path / "linli.db-wal"
    sizes = []
    try:
        for _burst in range(4):
            for n in range(20000):
                store.append_telemetry(n % 50, time.time(), {"a": n, "b": "x" * 40})
            await store.async_flush()
            sizes.append(wal.stat().st_size)
            await asyncio.sleep(1.3)
        # then checkpoints ran between the telemetry commits, and the WAL was reused, not grown
        assert store.stats()["checkpoints"] >= 3
        assert sizes[-1] < 2 * sizes[0], sizes
        # and the writer's own jobs are counted for diagnosis
        assert store.stats()["writes"] >= 4 and store.stats()["max_write_ms"] > 0
    finally:
        await store.async_stop()
    assert telemetry_count(tmp_path / "linli.db") == 160000


async def test_async_write_is_committed_when_it_returns(store: Store) -> None:
    # when a write returns
    result = await store.async_write(
        lambda db: db.conn.execute("INSERT INTO meta (key, value) VALUES ('alarm', 'armed')").rowcount
    )
    # then another process already sees it
    assert result == 1
    assert query(store.path, "SELECT value FROM meta WHERE key = 'alarm'") == [("armed",)]


async def test_async_write_that_raises_leaves_nothing_behind(store: Store) -> None:
    # given a write that fails half way (raw SQL and the sqlite-utils API alike)
    def half_then_fail(db: Any) -> None:
        db.conn.execute("INSERT INTO meta (key, value) VALUES ('one', '1')")
        db["meta"].insert({"key": "two", "value": "2"})
        raise ValueError("validation failed after the inserts")

    # when it runs, the caller gets the error
    with pytest.raises(ValueError, match="validation failed"):
        await store.async_write(half_then_fail)
    # then none of it was committed, and the store goes on working
    assert query(store.path, "SELECT key FROM meta") == []
    await store.async_write(lambda db: db.conn.execute("INSERT INTO meta VALUES ('three', '3')"))
    assert query(store.path, "SELECT key FROM meta") == [("three",)]
    assert await store.async_read(lambda c: c.execute("SELECT key FROM meta").fetchall()) == [("three",)]


@pytest.mark.parametrize("folder", ["linli #2", "data?copy"])
async def test_reads_see_writes_whatever_the_data_folder_is_called(tmp_path: Path, folder: str) -> None:
    # given a data folder whose name has a character that is special in URIs
    store = Store(tmp_path / folder / "linli.db")
    try:
        await store.async_start()
        # when something is written
        await store.async_write(lambda db: db.conn.execute("INSERT INTO meta VALUES ('k', 'v')"))
        # then reads see it
        assert await store.async_read(lambda c: c.execute("SELECT value FROM meta").fetchall()) == [("v",)]
    finally:
        await store.async_stop()
    assert entries(tmp_path) == [folder]  # and no stray files


async def test_new_device_does_not_inherit_a_removed_devices_telemetry_or_state(tmp_path: Path) -> None:
    # given a thermometer in household h1 that reported, then was removed
    path = tmp_path / "linli.db"
    async with running(path, batch_ms=10) as store:
        registry = Registry(store, EventBus(), load_profiles(), "c1")
        await registry.async_load("Community")
        await registry.async_add_building("b1", "Building 1")
        for household in ("h1", "h2"):
            await registry.async_add_unit(f"u-{household}", "b1", household)
            await registry.async_add_household(household, f"u-{household}", household)
        old = await registry.async_add_device(
            "h1-thermo", household_id="h1", name="t", profile_id="aqara/wsdcgq11lm", topic="t/h1"
        )
        registry.report(old, {"temperature": 21.5}, NOW, "test")
        await store.async_flush()
        registry.report(old, {"temperature": 22.5}, NOW + 60, "test")
        await store.async_flush()
        await registry.async_remove_device("h1-thermo")
        # when household h2 adds a new thermometer
        new = await registry.async_add_device(
            "h2-thermo", household_id="h2", name="t", profile_id="aqara/wsdcgq11lm", topic="t/h2"
        )
    # then none of h1's readings or state are filed under h2's device, now or after a restart
    assert query(path, "SELECT count(*) FROM telemetry WHERE device_row = ?", (new.row,)) == [(0,)]
    async with running(path) as store:
        registry = Registry(store, EventBus(), load_profiles(), "c1")
        await registry.async_load("Community")
        assert registry.device("h2-thermo").states == {}


# -- retention -------------------------------------------------------------------------------------

SERIES = [(1, "temperature"), (1, "humidity"), (2, "temperature"), (2, "humidity")]


def reading(ts: float, device_row: int, capability: str) -> float:
    step = int(ts // 600)
    return round(((step * 37 + device_row * 11 + len(capability)) % 101) / 4 - 5, 2)


def ten_days_of_readings() -> list[tuple[int, str, float, float]]:
    """Every 10 minutes for 10 days, 4 series, in arrival (= time) order."""
    rows = []
    ts = NOW - 10 * DAY + 17
    while ts < NOW:
        for device_row, capability in SERIES:
            rows.append((device_row, capability, ts, reading(ts, device_row, capability)))
        ts += 600
    return rows


def hourly_model(rows: list[tuple[int, str, float, float]]) -> dict[tuple[int, str, int], tuple]:
    groups: dict[tuple[int, str, int], list[float]] = defaultdict(list)
    for device_row, capability, ts, num in rows:
        groups[(device_row, capability, int(ts // HOUR))].append(num)
    return {key: (len(v), min(v), max(v), pytest.approx(sum(v))) for key, v in groups.items()}


async def insert_readings(store: Store, rows: list[tuple[int, str, float, float]]) -> None:
    await store.async_write(
        lambda db: db.conn.executemany(
            "INSERT INTO telemetry (device_row, capability, ts, num, value) VALUES (?, ?, ?, ?, NULL)", rows
        )
    )


def hourly_rows(path: Path) -> dict[tuple[int, str, int], tuple]:
    rows = query(path, "SELECT device_row, capability, hour, count, min, max, sum FROM telemetry_hourly")
    return {(d, c, h): (n, lo, hi, total) for d, c, h, n, lo, hi, total in rows}


def raw_rows(path: Path) -> list[tuple[int, str, float, float]]:
    return query(path, "SELECT device_row, capability, ts, num FROM telemetry ORDER BY rowid")


async def test_retention_folds_expired_readings_into_hours_exactly_once(store: Store) -> None:
    # given 10 days of readings and some old hourly aggregates
    readings = ten_days_of_readings()
    await insert_readings(store, readings)
    now_hour = int(NOW // HOUR)
    await store.async_write(
        lambda db: db.conn.executemany(
            "INSERT INTO telemetry_hourly VALUES (9, 'energy', ?, 1, 5.0, 5.0, 5.0)",
            [(now_hour - 401 * 24,), (now_hour - 399 * 24,)],
        )
    )
    # when retention keeps 7 days of raw rows and 400 days of hours
    result = await async_apply_retention(store, raw_days=7, hourly_days=400, now=NOW)
    # then no raw row older than 7 days is left, and newer ones are untouched
    cutoff = NOW - 7 * DAY
    expired = [r for r in readings if r[2] < cutoff]
    kept = [r for r in readings if r[2] >= cutoff]
    assert result.raw_expired == len(expired) > 0
    assert raw_rows(store.path) == kept
    # and every expired reading is counted once, in its hour, with the right min/max/sum
    hours = hourly_rows(store.path)
    assert sum(n for key, (n, *_) in hours.items() if key[0] != 9) == len(expired)
    assert {k: v for k, v in hours.items() if k[0] != 9} == hourly_model(expired)
    # (one hour worked out by hand: NOW - 10 days is 800 s into its hour, so the first
    # reading is at +817 s and the next hour has readings at +217, +817, … +3217 s)
    first_hour = int((NOW - 10 * DAY) // HOUR) + 1
    by_hand = [reading(first_hour * HOUR + offset, 1, "temperature") for offset in range(217, 3600, 600)]
    assert len(by_hand) == 6
    expected = (6, min(by_hand), max(by_hand), pytest.approx(sum(by_hand)))
    assert hours[(1, "temperature", first_hour)] == expected
    # and hourly rows past 400 days are gone, younger ones kept
    assert result.hourly_expired == 1
    assert [k[2] for k in hours if k[0] == 9] == [now_hour - 399 * 24]


async def test_retention_run_twice_changes_nothing_the_second_time(store: Store) -> None:
    await insert_readings(store, ten_days_of_readings())
    await async_apply_retention(store, raw_days=7, hourly_days=400, now=NOW)
    raw, hours = raw_rows(store.path), hourly_rows(store.path)
    again = await async_apply_retention(store, raw_days=7, hourly_days=400, now=NOW)
    assert (again.raw_expired, again.hourly_expired, again.quarantine_expired) == (0, 0, 0)
    assert raw_rows(store.path) == raw
    assert hourly_rows(store.path) == hours


async def test_hour_expiring_across_two_runs_is_counted_once_in_total(store: Store) -> None:
    # given readings, and a first run whose cutoff falls inside an hour
    readings = ten_days_of_readings()
    await insert_readings(store, readings)
    await async_apply_retention(store, raw_days=7, hourly_days=400, now=NOW)
    # when retention runs again an hour later, expiring the rest of that hour
    later = NOW + HOUR
    await async_apply_retention(store, raw_days=7, hourly_days=400, now=later)
    # then each hour holds every one of its readings, whichever run expired them
    expired = [r for r in readings if r[2] < later - 7 * DAY]
    assert hourly_rows(store.path) == hourly_model(expired)
    split_hour = int((NOW - 7 * DAY) // HOUR)
    assert hourly_rows(store.path)[(1, "temperature", split_hour)][0] == 6


async def test_retention_expires_quarantined_payloads_after_30_days(store: Store) -> None:
    store.append_quarantine(NOW - 31 * DAY, "linli/h1/door", "h1-door", "not JSON", b"\x00old")
    store.append_quarantine(NOW - 29 * DAY, "linli/h1/door", "h1-door", "not JSON", b"\x00new")
    await store.async_flush()
    result = await async_apply_retention(store, raw_days=7, hourly_days=400, now=NOW)
    assert result.quarantine_expired == 1
    assert query(store.path, "SELECT payload FROM quarantine") == [(b"\x00new",)]


async def test_retention_of_an_empty_store_does_nothing(store: Store) -> None:
    result = await async_apply_retention(store, raw_days=7, hourly_days=400, now=NOW)
    assert (result.raw_expired, result.hourly_expired, result.quarantine_expired) == (0, 0, 0)
