"""Consented health summaries: up to the region only while the household consents, forgotten on withdrawal.

A real gateway (MQTT health devices on the community broker, the health
service, the uplink) sends to a real regional broker, a real consumer stores
in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest

from linli.region.consumer import Consumer
from linli.region.ingest import apply_batch
from linli.region.schema import migrate
from linli.wire.messages import Envelope
from tests import postgres, regional
from tests.brokers import free_port
from tests.regional import REGION, uplink_config
from tests.test_health import start, take
from tests.test_region import region_config, settle_db

region_broker = regional.region_broker
postgres_cluster = postgres.postgres_cluster
region_dsn = postgres.region_dsn


@pytest.fixture
async def consumer(region_broker, region_dsn) -> AsyncIterator[Consumer]:
    running = Consumer(region_config(region_dsn, region_broker.port), 0)
    task = asyncio.create_task(running.run())
    await asyncio.wait_for(running.connected.wait(), 10)
    try:
        yield running
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await running.async_close()


@pytest.fixture
async def db(region_dsn) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(region_dsn)
    try:
        yield conn
    finally:
        await conn.close()


def queued(gateway: Any, kind: str) -> list[dict[str, Any]]:
    with sqlite3.connect(gateway.store.path) as conn:
        return [
            orjson.loads(p)
            for (p,) in conn.execute("SELECT payload FROM uplink_outbox WHERE kind = ? ORDER BY seq", (kind,))
        ]


async def status_round_trip(gateway: Any, db: asyncpg.Connection) -> None:
    """A barrier: the uplink sends in outbox order, so once this status is in PostgreSQL,
    everything queued before it has arrived too."""
    before = await db.fetchval("SELECT count(*) FROM events WHERE kind = 'status'")
    await gateway.components["uplink"].async_report_status()
    await settle_db(db, "SELECT count(*) FROM events WHERE kind = 'status'", before + 1)


async def test_consented_summaries_reach_the_region_and_a_withdrawal_forgets_them(
    make_gateway, broker, region_broker, consumer, db, tmp_path
) -> None:
    # given a household whose resident measures blood pressure, consenting to export
    gateway, health, _, topics = await start(make_gateway, tmp_path, uplink=uplink_config(region_broker.port))
    await health.async_grant_consent("h1", by="r-wang", purposes=["export"])
    # when two readings are taken
    await take(broker, health, [(topics["h1-bp"], {"sys": 128, "dia": 82, "pul": 70})], 2)
    await take(broker, health, [(topics["h1-bp"], {"sys": 136, "dia": 88, "pul": 74})], 2)
    await health.async_flush()
    # then the region holds the resident's day summary: counts and min / mean / max, no readings
    await settle_db(db, "SELECT max(readings) FROM health_summaries", 4)
    row = await db.fetchrow("SELECT * FROM health_summaries")
    assert (row["community"], row["household"], row["resident"]) == ("community", "h1", "r-wang")
    vitals = orjson.loads(row["vitals"])
    assert vitals["blood_pressure"]["count"] == 2
    assert vitals["blood_pressure"]["values"]["systolic"] == {"min": 128, "mean": 132.0, "max": 136}
    assert vitals["heart_rate"]["values"]["heart_rate"] == {"min": 70, "mean": 72.0, "max": 74}
    event = await db.fetchval(
        "SELECT data FROM events WHERE kind = 'health_summary' ORDER BY seq DESC LIMIT 1"
    )
    assert set(orjson.loads(event)) == {
        "household_id",
        "resident_id",
        "day",
        "utc_offset_min",
        "readings",
        "vitals",
    }
    assert "王秀英" not in event and "h1-bp" not in event
    # and the dashboard's count sees it
    from linli.region.queries import overview

    counts = (await overview(db, REGION, 300))["health_summaries_7d"]
    assert counts == {"summaries": 1, "households": 1, "residents": 1}

    # when the household withdraws its consent
    await health.async_withdraw_consent("h1", by="r-wang", purposes=["export"])
    # then the region forgets the household's summaries, their raw events included
    await settle_db(db, "SELECT count(*) FROM health_summaries", 0)
    await settle_db(db, "SELECT count(*) FROM events WHERE kind = 'health_summary'", 0)
    # and readings taken after it send nothing more
    await take(broker, health, [(topics["h1-bp"], {"sys": 150, "dia": 95, "pul": 80})], 2)
    await health.async_flush()
    await status_round_trip(gateway, db)
    assert await db.fetchval("SELECT count(*) FROM events WHERE kind = 'health_summary'") == 0
    assert await db.fetchval("SELECT count(*) FROM health_summaries") == 0

    # when it consents again, the next reading's summary goes up (the whole day's, as its own)
    await health.async_grant_consent("h1", by="r-wang", purposes=["export"])
    await take(broker, health, [(topics["h1-bp"], {"sys": 120, "dia": 80, "pul": 66})], 2)
    await health.async_flush()
    await settle_db(db, "SELECT count(*) FROM health_summaries", 1)


async def test_without_consent_no_summary_goes_up(
    make_gateway, broker, region_broker, consumer, db, tmp_path
) -> None:
    # given a household that consented to its carers, but not to export
    gateway, health, _, topics = await start(make_gateway, tmp_path, uplink=uplink_config(region_broker.port))
    await health.async_grant_consent("h1", by="r-wang", purposes=["carer", "provider"])
    # when readings are taken
    await take(broker, health, [(topics["h1-oximeter"], {"spo2": 97, "pr": 68})], 2)
    await take(broker, health, [(topics["h1-scale"], {"weight_g": 61500})], 1)
    await health.async_flush()
    await status_round_trip(gateway, db)
    # then nothing about them was queued or arrived
    assert queued(gateway, "health_summary") == []
    assert await db.fetchval("SELECT count(*) FROM events WHERE kind LIKE 'health%'") == 0
    assert await db.fetchval("SELECT count(*) FROM health_summaries") == 0


async def test_a_withdrawal_drops_summaries_still_waiting_in_the_outbox(
    make_gateway, broker, tmp_path
) -> None:
    # given a gateway whose link to the region is down (nothing listens on its port)
    gateway, health, _, topics = await start(make_gateway, tmp_path, uplink=uplink_config(free_port()))
    await health.async_grant_consent("h1", by="r-wang", purposes=["export"])
    await take(broker, health, [(topics["h1-thermometer"], {"temp_c": 36.6})], 1)
    await health.async_flush()
    # the summary waits in the outbox, with the reading it came with
    assert [s["vitals"]["body_temperature"]["count"] for s in queued(gateway, "health_summary")] == [1]
    # when the household withdraws before the link returns
    await health.async_withdraw_consent("h1", by="r-wang", purposes=["export"])
    # then the waiting summary is gone, and the region will be told to forget the household
    assert queued(gateway, "health_summary") == []
    assert queued(gateway, "health_withdrawn") == [{"household_id": "h1"}]
    # and withdrawing only carer consent leaves the export alone
    await health.async_grant_consent("h1", by="r-wang", purposes=["export"])
    await take(broker, health, [(topics["h1-thermometer"], {"temp_c": 36.8})], 1)
    await health.async_flush()
    await health.async_withdraw_consent("h1", by="r-wang", purposes=["carer"])
    assert len(queued(gateway, "health_summary")) == 1


def summary(seq: int, household: str = "h1", count: int = 1) -> Envelope:
    return Envelope(
        id=5_000_000 + seq,
        seq=seq,
        kind="health_summary",
        region=REGION,
        community="east",
        gateway="gw",
        ts=1.8e9,
        data={
            "household_id": household,
            "resident_id": "r1",
            "day": "2026-11-28",
            "utc_offset_min": 480,
            "readings": count,
            "vitals": {"weight": {"count": count, "values": {"weight": {"min": 60, "mean": 60, "max": 60}}}},
        },
    )


def withdrawn(seq: int, household: str = "h1") -> Envelope:
    return Envelope(
        id=5_000_000 + seq,
        seq=seq,
        kind="health_withdrawn",
        region=REGION,
        community="east",
        gateway="gw",
        ts=1.8e9,
        data={"household_id": household},
    )


async def test_a_summary_older_than_the_withdrawal_is_not_stored_whatever_the_arrival_order(db) -> None:
    await migrate(db, REGION)
    # given two households' summaries, then h1's withdrawal (seq 3) — applied withdrawal first
    # (two consumers raced), then the older summary, redelivered
    await apply_batch(db, [withdrawn(3), summary(4, "h2")])
    await apply_batch(db, [summary(2), summary(2)])
    # then h1 has nothing, not even the raw event; h2 is untouched
    rows = await db.fetch("SELECT household, readings FROM health_summaries ORDER BY household")
    assert [(r["household"], r["readings"]) for r in rows] == [("h2", 1)]
    held = await db.fetch("SELECT data->>'household_id' AS h FROM events WHERE kind = 'health_summary'")
    assert [r["h"] for r in held] == ["h2"]
    # when h1 consents again and a newer summary arrives, it is stored; an older one never wins
    await apply_batch(db, [summary(6, count=3), summary(5, count=2)])
    rows = await db.fetch("SELECT household, readings FROM health_summaries ORDER BY household")
    assert [(r["household"], r["readings"]) for r in rows] == [("h1", 3), ("h2", 1)]
    # and the rows sit in the region's partition for their month
    parts = await db.fetch("SELECT DISTINCT tableoid::regclass::text AS p FROM health_summaries")
    assert [p["p"] for p in parts] in (
        [f"health_summaries_{REGION}_p2026_11"],  # pg_partman's monthly partition
        [f"health_summaries_{REGION}_default"],  # when this test runs long after November 2026
    )
