"""The regional tier: idempotent upserts into PostgreSQL, consumers sharing one subscription."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import sqlite_utils

from linli.gateway.uplink import outbox
from linli.region.consumer import Consumer
from linli.region.ingest import apply_batch
from linli.region.schema import KINDS, LATEST, SEQ_BITS, ensure_partitions, migrate, partition_of
from linli.wire.messages import Envelope
from tests import postgres, regional
from tests.homes import add_home
from tests.regional import REGION, uplink_config

region_broker = regional.region_broker
postgres_cluster = postgres.postgres_cluster
region_dsn = postgres.region_dsn


def envelope(n: int, kind: str, data: dict[str, Any], community: str = "east") -> Envelope:
    return Envelope(
        id=1_000_000 + n,
        seq=n,
        kind=kind,
        region=REGION,
        community=community,
        gateway="gw",
        ts=1.8e9 + n,
        data=data,
    )


def alert(state: str, **extra: Any) -> dict[str, Any]:
    return {
        "alert": {
            "id": 77,
            "kind": "sos",
            "severity": "critical",
            "household_id": "h1",
            "title": "SOS",
            "count": 1,
            "state": state,
            "raised_at": 1.8e9,
            "step": 0,
            "acknowledged_at": None,
            "resolved_at": None,
            **extra,
        },
        "transitions": [state],
    }


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[Any]]:
    return {
        table: [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY 1, 2, 3")]
        for table in ("events", "alerts", "communities", "announcement_receipts")
    }


def region_config(dsn: str, port: int, **consumer: Any) -> dict[str, Any]:
    from linli.region.config import load_region_config

    return load_region_config(
        None,
        environ={},
        overrides={
            "region": {"id": REGION},
            "broker": {"port": port, "client_prefix": "test-region"},
            "database": {"dsn": dsn},
            "consumer": {"batch": 200, "batch_ms": 10, **consumer},
        },
    )


async def test_a_redelivered_event_changes_nothing(region_dsn) -> None:
    conn = await asyncpg.connect(region_dsn)
    try:
        await migrate(conn, REGION)
        # given an alert raised, then acknowledged — applied out of order (two consumers raced)
        raised = envelope(1, "alert", alert("raised"))
        acked = envelope(2, "alert", alert("acknowledged", acknowledged_at=1.8e9 + 42))
        status = envelope(
            3, "status", {"name": "东园", "clock_offset_s": 0.5, "open_alerts": {"critical": 1}}
        )
        receipt = envelope(
            4, "receipt", {"announcement_id": "a-1", "state": "shown", "tvs_shown": 3, "tvs_total": 4}
        )
        first = await apply_batch(conn, [acked, status])
        second = await apply_batch(conn, [raised, receipt])
        assert (first.new, second.new) == (2, 2)
        # then the newest snapshot won
        row = await conn.fetchrow("SELECT state, acknowledged_at - raised_at AS ack_s FROM alerts")
        assert (row["state"], row["ack_s"]) == ("acknowledged", 42)
        before = await snapshot(conn)
        # when every event is delivered again, in another order and twice within one batch
        again = await apply_batch(conn, [receipt, status, raised, acked, raised])
        # then nothing changed at all
        assert (again.new, again.duplicates) == (0, 5)
        assert await snapshot(conn) == before
        assert await conn.fetchval("SELECT count(*) FROM events") == 4
        community = await conn.fetchrow("SELECT name, clock_offset_s FROM communities")
        assert (community["name"], community["clock_offset_s"]) == ("东园", 0.5)
    finally:
        await conn.close()


async def test_migrations_are_safe_to_run_from_many_consumers_at_once(region_dsn) -> None:
    conns = [await asyncpg.connect(region_dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c, REGION) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, LATEST]
        for kind in KINDS:
            regions = await conns[0].fetchval(
                f"SELECT count(*) FROM pg_inherits WHERE inhparent = '{kind.table}'::regclass"
            )
            times = await conns[0].fetchval(
                f"SELECT count(*) FROM pg_inherits WHERE inhparent = '{kind.table}_{REGION}'::regclass"
            )
            # the region + other regions; pg_partman's default, and its partitions before and ahead
            assert (regions, times) == (2, 1 + 2 * kind.premake + 1)
    finally:
        for c in conns:
            await c.close()


async def test_rows_of_two_regions_land_in_their_own_partitions_by_day(region_dsn) -> None:
    # given a database shared by two regions, each with its partitions
    conn = await asyncpg.connect(region_dsn)
    try:
        await migrate(conn, "hubei")
        await migrate(conn, "hunan")
        now = datetime.datetime.now(datetime.UTC)
        day = f"p{now:%Y_%m_%d}"  # raw events: one partition a day (pg_partman's name)
        in_month = (int(now.timestamp() * 1000) << SEQ_BITS) + 1
        far_ahead = int((now.timestamp() + 400 * 86400) * 1000) << SEQ_BITS

        def event(region: str, event_id: int, n: int) -> Envelope:
            return Envelope(
                id=event_id,
                seq=n,
                kind="rollup",
                region=region,
                community="east",
                gateway="gw",
                ts=now.timestamp(),
                data={"n": n},
            )

        # when each region's events arrive, one from a gateway whose clock is a year ahead,
        # and one from a third region that has no partitions yet
        await apply_batch(
            conn,
            [
                event("hubei", in_month, 1),
                event("hunan", in_month, 2),
                event("hunan", far_ahead, 3),
                event("guangxi", in_month, 4),
            ],
        )
        # then each row is in its region's partition for its day (or a default that waits for it)
        where = "data->>'n' = $1"
        assert await partition_of(conn, "events", where, "1") == [f"events_hubei_{day}"]
        assert await partition_of(conn, "events", where, "2") == [f"events_hunan_{day}"]
        assert await partition_of(conn, "events", where, "3") == ["events_hunan_default"]
        assert await partition_of(conn, "events", where, "4") == ["events_other"]
        # and a region's partitions confine its queries: hubei's holds nothing of hunan's
        assert await conn.fetchval(f"SELECT count(*) FROM events_hubei_{day}") == 1
        # when the third region gets its partitions, its waiting row moves into them
        created = await ensure_partitions(conn, "guangxi")
        assert "events_guangxi" in created
        assert await partition_of(conn, "events", where, "4") == [f"events_guangxi_{day}"]
        assert await conn.fetchval("SELECT count(*) FROM events") == 4
    finally:
        await conn.close()


async def test_a_database_of_schema_1_keeps_its_events_when_partitioned_by_region(region_dsn) -> None:
    # given a regional database made by the first release (events by time only), with events
    conn = await asyncpg.connect(region_dsn)
    try:
        assert await migrate(conn, target=1) == [1]
        now = datetime.datetime.now(datetime.UTC)
        first = dataclasses.replace(
            envelope(1, "rollup", {"n": 1}), id=int(now.timestamp() * 1000) << SEQ_BITS
        )
        # and one from before the raw events' retention (30 days by default)
        await conn.execute(
            "INSERT INTO events (region, community, id, seq, kind, gateway_ts, data) "
            "VALUES ($1, 'east', $2, 1, 'rollup', 0, '{}')",
            REGION,
            int((now.timestamp() - 40 * 86400) * 1000) << SEQ_BITS,
        )
        await conn.execute(
            "INSERT INTO events (region, community, id, seq, kind, gateway_ts, data) "
            "VALUES ($1, $2, $3, $4, $5, $6, '{}'), ('hunan', 'west', $3, $4, $5, $6, '{}')",
            first.region,
            first.community,
            first.id,
            first.seq,
            first.kind,
            first.ts,
        )
        # when it is migrated
        assert await migrate(conn, REGION) == list(range(2, LATEST + 1))
        # then every event within its retention is still there, each in its region's partition
        # for its day, and the one past it is gone with its partition
        rows = await conn.fetch("SELECT region, tableoid::regclass::text AS part FROM events ORDER BY 1")
        assert [(r["region"], r["part"]) for r in rows] == [
            ("hubei", f"events_hubei_p{now:%Y_%m_%d}"),
            ("hunan", f"events_hunan_p{now:%Y_%m_%d}"),
        ]
        # and a redelivery of the old event is still recognised
        assert (await apply_batch(conn, [first])).duplicates == 1
    finally:
        await conn.close()


async def test_shared_subscription_splits_load_across_two_consumers(
    make_gateway, region_broker, region_dsn
) -> None:
    # given two consumers sharing one subscription, and a community gateway with alerts
    config = region_config(region_dsn, region_broker.port)
    consumers = [Consumer(config, 0), Consumer(config, 1)]
    tasks = [asyncio.create_task(c.run()) for c in consumers]
    try:
        for c in consumers:
            await asyncio.wait_for(c.connected.wait(), 10)
        gateway = await make_gateway(
            components=["linli.services.alerts:AlertEngine"], uplink=uplink_config(region_broker.port)
        )
        await add_home(gateway)
        engine = gateway.components["alerts"]

        # when the gateway sends 600 events and an alert is raised and acknowledged
        def many(db: sqlite_utils.Database) -> None:
            for n in range(600):
                outbox.enqueue(db, "rollup", {"n": n}, retention=outbox.Retention.ROLLUP)

        await gateway.store.async_write(many)
        sos = await engine.async_raise(kind="sos", household_id="h1", title="SOS")
        await asyncio.sleep(0.05)
        await engine.async_acknowledge(sos.id, "warden")
        conn = await asyncpg.connect(region_dsn)
        try:
            # then every event is in PostgreSQL once, and both consumers carried part of the load
            await settle_db(conn, "SELECT count(*) FROM events WHERE kind = 'rollup'", 600)
            await settle_db(conn, "SELECT count(*) FROM alerts WHERE state = 'acknowledged'", 1)
            assert all(c.applied > 50 for c in consumers), [c.stats() for c in consumers]
            assert sum(c.duplicates for c in consumers) == 0
            row = await conn.fetchrow("SELECT community, household, kind, severity FROM alerts")
            assert tuple(row) == ("community", "h1", "sos", "critical")
            await settle_db(conn, "SELECT count(*) FROM communities WHERE online AND status IS NOT NULL", 1)
        finally:
            await conn.close()
    finally:
        for task in tasks:
            task.cancel()
        for task, c in zip(tasks, consumers, strict=True):
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await c.async_close()


async def settle_db(conn: asyncpg.Connection, query: str, expected: int, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while (value := await conn.fetchval(query)) != expected:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert value == expected


def consumer_process(config_file: Path, index: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "linli",
            "region",
            "consume",
            "--config",
            str(config_file),
            "--index",
            str(index),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )


async def test_a_consumer_killed_mid_stream_loses_and_doubles_nothing(
    make_gateway, region_broker, region_dsn, tmp_path
) -> None:
    # given two consumer processes (the real `linli region consume`)
    config_file = tmp_path / "region.toml"
    config_file.write_text(
        f'[region]\nid = "{REGION}"\n[broker]\nport = {region_broker.port}\nclient_prefix = "test-kill"\n'
        f'[database]\ndsn = "{region_dsn}"\n[consumer]\nbatch = 100\nbatch_ms = 5\n'
    )
    processes = [consumer_process(config_file, 0), consumer_process(config_file, 1)]
    conn = await asyncpg.connect(region_dsn)
    try:
        await settle_db(conn, "SELECT count(*) FROM pg_class WHERE relname = 'region_schema'", 1)
        await settle_db(conn, "SELECT max(version) FROM region_schema", LATEST)
        await asyncio.sleep(1.0)  # both subscribed
        gateway = await make_gateway(uplink=uplink_config(region_broker.port))
        total = 3000

        def many(db: sqlite_utils.Database) -> None:
            for n in range(total):
                outbox.enqueue(db, "rollup", {"n": n}, retention=outbox.Retention.ROLLUP)

        # when the gateway sends 3,000 events and one consumer is killed mid-stream
        await gateway.store.async_write(many)
        async with asyncio.timeout(15):
            while await conn.fetchval("SELECT count(*) FROM events WHERE kind = 'rollup'") < 300:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait()
        at_kill = await conn.fetchval("SELECT count(*) FROM events WHERE kind = 'rollup'")
        # then the other carries on; the killed one, back under its own id, finishes its share
        await asyncio.sleep(0.5)
        processes[0] = consumer_process(config_file, 0)
        await settle_db(conn, "SELECT count(*) FROM events WHERE kind = 'rollup'", total, timeout=30)
        assert at_kill < total
        numbers = [
            r[0] for r in await conn.fetch("SELECT (data->>'n')::int FROM events WHERE kind = 'rollup'")
        ]
        assert sorted(numbers) == list(range(total))  # each exactly once
        assert gateway.components["uplink"].relay.delivered >= total
    finally:
        await conn.close()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr:
                process.stderr.close()


ROOT = Path(__file__).resolve().parent.parent


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def children_of(pid: int) -> dict[int, str]:
    """The live child processes of `pid` and their command lines (from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == pid and "region consume" in command:
            found[int(entry.name)] = command
    return found


async def test_linli_region_serve_runs_the_dashboard_and_consumers_and_restarts_one_that_dies(
    make_gateway, region_broker, region_dsn, tmp_path
) -> None:
    import urllib.request

    from tests.brokers import free_port

    # given `linli region serve --consumers 2`, as an operator starts the region
    dashboard = free_port()
    config_file = tmp_path / "region.toml"
    config_file.write_text(
        f'[region]\nid = "{REGION}"\ndata_dir = "{tmp_path / "region"}"\n'
        f'[broker]\nport = {region_broker.port}\nclient_prefix = "test-serve"\n'
        f'[database]\ndsn = "{region_dsn}"\n[consumer]\nbatch = 100\nbatch_ms = 5\n'
        f"[dashboard]\nport = {dashboard}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    linli = [sys.executable, "-m", "linli", "region"]
    keygen = subprocess.run([*linli, "keygen", "--config", str(config_file)], env=env, capture_output=True)
    assert keygen.returncode == 0, keygen.stderr
    serve = subprocess.Popen(
        [*linli, "serve", "--config", str(config_file), "--consumers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    conn = await asyncpg.connect(region_dsn)
    try:
        # then the dashboard answers, and two consumers run under it
        async with asyncio.timeout(20):
            while True:
                try:
                    reply = await asyncio.to_thread(
                        urllib.request.urlopen, f"http://127.0.0.1:{dashboard}/login", timeout=2
                    )
                    break
                except OSError:
                    await asyncio.sleep(0.1)
        assert reply.status == 200
        async with asyncio.timeout(20):
            while len(consumers := children_of(serve.pid)) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # both subscribed
        gateway = await make_gateway(uplink=uplink_config(region_broker.port))

        def events(start: int, count: int) -> None:
            def write(db: sqlite_utils.Database) -> None:
                for n in range(start, start + count):
                    outbox.enqueue(db, "rollup", {"n": n}, retention=outbox.Retention.ROLLUP)

            return write

        # and a gateway's events reach PostgreSQL through them
        await gateway.store.async_write(events(0, 200))
        await settle_db(conn, "SELECT count(*) FROM events WHERE kind = 'rollup'", 200, timeout=20)

        # when one consumer dies
        killed = next(pid for pid, command in consumers.items() if "--index 1" in command)
        os.kill(killed, signal.SIGKILL)
        # then serve starts it again under the same index
        async with asyncio.timeout(15):
            while not any(  # noqa: ASYNC110
                "--index 1" in command and pid != killed for pid, command in children_of(serve.pid).items()
            ):
                await asyncio.sleep(0.1)
        await gateway.store.async_write(events(200, 200))
        await settle_db(conn, "SELECT count(*) FROM events WHERE kind = 'rollup'", 400, timeout=20)

        # and SIGTERM stops the whole region cleanly, its consumers with it
        running = set(children_of(serve.pid))
        serve.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(serve.wait, 20) == 0
        assert not any(alive(pid) for pid in running)  # stopped and reaped by serve, not orphaned
    finally:
        await conn.close()
        if serve.poll() is None:
            serve.kill()
            serve.wait()
