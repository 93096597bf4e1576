"""Each kind of regional record keeps its own retention: pg_partman drops its old partitions, no other's."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator

import asyncpg
import pytest

from linli.region.config import DEFAULTS
from linli.region.schema import KINDS, SEQ_BITS, maintain, migrate, partitions
from tests import postgres

postgres_cluster = postgres.postgres_cluster
region_dsn = postgres.region_dsn
REGION = "hubei"


@pytest.fixture
async def db(region_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(region_dsn)
    await migrate(conn, REGION)
    yield conn
    await conn.close()


def id_at(moment: datetime.datetime) -> int:
    return int(moment.timestamp() * 1000) << SEQ_BITS


async def one_of_each(conn: asyncpg.Connection, moment: datetime.datetime, n: int) -> None:
    """A raw event, an alert and a day's health summary from `moment`."""
    ident = id_at(moment) + n
    await conn.execute(
        "INSERT INTO events (region, community, id, at, seq, kind, gateway_ts, data) "
        "VALUES ($1, 'east', $2, to_timestamp(($2::bigint >> 22) / 1000.0), $3, 'status', 0, '{}')",
        REGION,
        ident,
        n,
    )
    await conn.execute(
        "INSERT INTO alerts (region, community, alert_id, raised, kind, severity, state, raised_at, "
        "last_seq) "
        "VALUES ($1, 'east', $2, to_timestamp(($2::bigint >> 22) / 1000.0), "
        "'sos', 'critical', 'resolved', $3, $4)",
        REGION,
        ident,
        moment.timestamp(),
        n,
    )
    await conn.execute(
        "INSERT INTO health_summaries (region, community, household, day, vitals, readings, seq, event_id) "
        "VALUES ($1, 'east', 'h1', $2, '{}', 3, $3, $4)",
        REGION,
        moment.date(),
        n,
        ident,
    )


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {k.table: await conn.fetchval(f"SELECT count(*) FROM {k.table}") for k in KINDS}


async def test_old_partitions_of_a_kind_go_by_its_own_retention_while_the_others_stay(db) -> None:
    # given a raw event, an alert and a health summary from 40 days ago, and another of each from now,
    # each in a partition of its own kind's table for its day or month
    now = datetime.datetime.now(datetime.UTC)
    old = now - datetime.timedelta(days=40)
    await one_of_each(db, old, 1)
    await one_of_each(db, now, 2)
    for kind in KINDS:  # (the old rows waited in the default partition, as after an upgrade)
        await db.fetchval(
            "SELECT partman.partition_data_time($1, p_batch_count := 10)", f"public.{kind.table}_{REGION}"
        )
    old_day = f"events_{REGION}_p{old:%Y_%m_%d}"
    old_months = {k.table: f"{k.table}_{REGION}_p{old:%Y_%m}" for k in KINDS if k.interval == "monthly"}
    assert old_day in await partitions(db, f"events_{REGION}")
    assert await counts(db) == {"events": 2, "alerts": 2, "health_summaries": 2}

    # when the region's maintenance runs with the default retention (raw 30 days, alerts 2 years,
    # summaries 10 years)
    changed = await maintain(db, REGION, DEFAULTS["retention"])
    # then the raw events' old day is dropped, and the alerts' and summaries' old months stay
    assert f"-{old_day}" in changed
    assert await counts(db) == {"events": 1, "alerts": 2, "health_summaries": 2}
    for table, month in old_months.items():
        assert month in await partitions(db, f"{table}_{REGION}")

    # when the region keeps alerts for a week only
    changed = await maintain(db, REGION, DEFAULTS["retention"] | {"alerts_days": 7})
    # then the alerts' old month is dropped, and the summaries' stays
    assert f"-{old_months['alerts']}" in changed
    assert await counts(db) == {"events": 1, "alerts": 1, "health_summaries": 2}
    assert old_months["health_summaries"] in await partitions(db, f"health_summaries_{REGION}")
    # and what is current is untouched
    assert await db.fetchval("SELECT count(*) FROM alerts WHERE last_seq = 2") == 1
    retention = dict(await db.fetch("SELECT parent_table, retention FROM partman.part_config"))
    assert retention == {
        f"public.events_{REGION}": "30 days",
        f"public.alerts_{REGION}": "7 days",
        f"public.health_summaries_{REGION}": "3650 days",
    }


async def test_rows_in_the_default_partition_go_by_how_long_the_region_has_held_them(db) -> None:
    # given rows from a gateway whose clock had been reset to 1970 (pg_partman puts them in the
    # region's DEFAULT partitions): one set the region received 60 days ago, one set just now
    reset = datetime.datetime(1970, 1, 2, tzinfo=datetime.UTC)
    await one_of_each(db, reset, 1)
    for kind in KINDS:
        await db.execute(f"UPDATE {kind.table} SET {kind.touched} = now() - interval '60 days'")
    await one_of_each(db, reset + datetime.timedelta(days=1), 2)
    default = f"events_{REGION}_default"
    assert await db.fetchval(f"SELECT count(*) FROM {default}") == 2
    # when maintenance runs with the default retention (raw 30 days, alerts 2 years)
    await maintain(db, REGION, DEFAULTS["retention"])
    # then the raw event the region has held for 60 days is gone, like any other past 30 days
    assert await db.fetchval(f"SELECT seq FROM {default}") == 2
    # and the alerts and summaries stay: a 1970 clock does not make an alert 56 years old
    assert await counts(db) == {"events": 1, "alerts": 2, "health_summaries": 2}
