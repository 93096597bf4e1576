"""The regional PostgreSQL schema, versioned; every consumer migrates on start, one at a time.

Each migration is a list of statements run in one transaction; the version is
kept in `region_schema`. A transaction-level advisory lock serialises
consumers that start together. Never edit a released migration; add the next.

Partitioning: `events` is partitioned by RANGE of the event id, which is the
gateway's millisecond clock shifted left by 22 bits — so the partitions are
months of event time, and an old month is dropped whole. `ensure_partitions`
creates this month's and the next ones; a DEFAULT partition catches ids from a
gateway whose clock is far off. Regions split by database (one cluster per
province), see docs/scale.md.
"""

from __future__ import annotations

import datetime
import logging
from typing import Final

import asyncpg

_LOGGER = logging.getLogger(__name__)
_LOCK_KEY: Final = 0x4C494E4C49  # "LINLI"
SEQ_BITS: Final = 22  # gateway.ids: millisecond clock << 22 | sequence

MIGRATIONS: Final[list[list[str]]] = [
    [
        """CREATE TABLE communities (
            region text NOT NULL, community text NOT NULL, gateway text, name text,
            online boolean NOT NULL DEFAULT false, presence_ts double precision NOT NULL DEFAULT 0,
            last_seen timestamptz, clock_offset_s double precision NOT NULL DEFAULT 0,
            status jsonb, status_seq bigint NOT NULL DEFAULT 0,
            device_health jsonb, device_health_seq bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (region, community))""",
        "CREATE SEQUENCE events_arrival",
        """CREATE TABLE events (
            region text NOT NULL, community text NOT NULL, id bigint NOT NULL, seq bigint NOT NULL,
            kind text NOT NULL, gateway_ts double precision NOT NULL,
            received timestamptz NOT NULL DEFAULT now(),
            arrival bigint NOT NULL DEFAULT nextval('events_arrival'),
            data jsonb NOT NULL,
            PRIMARY KEY (region, community, id)) PARTITION BY RANGE (id)""",
        "CREATE TABLE events_default PARTITION OF events DEFAULT",
        "CREATE INDEX events_kind ON events (region, kind, received)",
        """CREATE TABLE alerts (
            region text NOT NULL, community text NOT NULL, alert_id bigint NOT NULL,
            household text, kind text NOT NULL, severity text NOT NULL, state text NOT NULL,
            title text, count integer NOT NULL DEFAULT 1, step integer,
            raised_at double precision NOT NULL, acknowledged_at double precision,
            resolved_at double precision, clock_offset_s double precision NOT NULL DEFAULT 0,
            last_seq bigint NOT NULL, updated timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (region, community, alert_id))""",
        "CREATE INDEX alerts_open ON alerts (region, severity) WHERE state <> 'resolved'",
        "CREATE INDEX alerts_acknowledged ON alerts (region, acknowledged_at)",
        """CREATE TABLE announcements (
            id text PRIMARY KEY, region text NOT NULL, kind text NOT NULL, targets jsonb NOT NULL,
            title text NOT NULL, body text NOT NULL, issued_at double precision NOT NULL,
            expires_at double precision NOT NULL, created_by text NOT NULL,
            gateways_targeted integer NOT NULL)""",
        """CREATE TABLE announcement_receipts (
            announcement_id text NOT NULL, region text NOT NULL, community text NOT NULL,
            state text NOT NULL, tvs_shown integer NOT NULL DEFAULT 0, tvs_total integer NOT NULL DEFAULT 0,
            received timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (announcement_id, region, community))""",
    ],
]
LATEST: Final = len(MIGRATIONS)


# Not to_regclass(): its catalog cache may not yet see a table another session just committed.
_EXISTS: Final = (
    "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = $1 AND n.nspname = current_schema())"
)


def month_start(day: datetime.date) -> datetime.datetime:
    return datetime.datetime(day.year, day.month, 1, tzinfo=datetime.UTC)


def _next_month(start: datetime.datetime) -> datetime.datetime:
    return start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)


def _id_at(moment: datetime.datetime) -> int:
    return int(moment.timestamp() * 1000) << SEQ_BITS


async def ensure_partitions(conn: asyncpg.Connection, months_ahead: int = 2) -> list[str]:
    """This month's and the next months' partitions of `events`; returns those created."""
    created = []
    start = month_start(datetime.datetime.now(datetime.UTC).date())
    for _ in range(months_ahead + 1):
        end = _next_month(start)
        name = f"events_{start:%Y_%m}"
        if not await conn.fetchval(_EXISTS, name):
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
                if not await conn.fetchval(_EXISTS, name):  # another consumer may have just made it
                    # Rows already in the DEFAULT partition for this range would block the
                    # attach; move them along (rare: only a gateway far ahead in time).
                    low, high = _id_at(start), _id_at(end)
                    await conn.execute(f"CREATE TABLE {name} (LIKE events INCLUDING DEFAULTS)")
                    await conn.execute(
                        f"WITH moved AS (DELETE FROM events_default WHERE id >= $1 AND id < $2 RETURNING *) "
                        f"INSERT INTO {name} SELECT * FROM moved",
                        low,
                        high,
                    )
                    await conn.execute(
                        f"ALTER TABLE events ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})"
                    )
                    created.append(name)
        start = end
    return created


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Bring the database to LATEST; safe to call from many consumers at once."""
    applied = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute("CREATE TABLE IF NOT EXISTS region_schema (version integer NOT NULL)")
        current = await conn.fetchval("SELECT max(version) FROM region_schema") or 0
        if current > LATEST:
            raise RuntimeError(
                f"regional database schema is version {current}, this Linli knows up to {LATEST}: "
                "upgrade Linli"
            )
        for version in range(current + 1, LATEST + 1):
            for statement in MIGRATIONS[version - 1]:
                await conn.execute(statement)
            await conn.execute("INSERT INTO region_schema (version) VALUES ($1)", version)
            applied.append(version)
    if applied:
        _LOGGER.info("regional database migrated to schema version %d", applied[-1])
    await ensure_partitions(conn)
    return applied
