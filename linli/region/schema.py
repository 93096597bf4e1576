"""The regional PostgreSQL schema, versioned; every consumer migrates on start, one at a time.

Each migration is a list of steps — SQL statements, or coroutines for what SQL
alone cannot say — run in one transaction; the version is kept in
`region_schema`. A transaction-level advisory lock serialises consumers that
start together. Never edit a released migration; add the next.

Partitioning, by region and by time (docs/scale.md, "PostgreSQL"):

    events                       LIST (region)
      events_<region>              RANGE (id): the gateway's millisecond clock << 22
        events_<region>_2026_11      one month of event time each
        events_<region>_default      ids from a gateway whose clock is far off
      events_other                 DEFAULT: a region nobody made partitions for yet
    health_summaries             LIST (region)
      health_summaries_<region>    RANGE (day), months and a default, the same way

A region's rows are never mixed with another's: a region leaves the database
(to a cluster of its own, or for good) by detaching its partition, and a
month is dropped whole (retention without vacuum). `ensure_partitions(conn,
region)` makes the region's partition, this month's and the next ones; rows
that waited in a DEFAULT partition move into the partition made for them.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

_LOGGER = logging.getLogger(__name__)
_LOCK_KEY: Final = 0x4C494E4C49  # "LINLI"
SEQ_BITS: Final = 22  # linli.common.ids: millisecond clock << 22 | sequence

Step = str | Callable[[asyncpg.Connection], Awaitable[None]]

_V1: Final[list[Step]] = [
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
]


@dataclass(slots=True, frozen=True)
class _Partitioned:
    """A table partitioned by region, then by month of `column`."""

    table: str
    column: str
    bound: Callable[[datetime.datetime], str]  # a month's first moment → the range bound literal


def _id_bound(moment: datetime.datetime) -> str:
    return str(_id_at(moment))


def _day_bound(moment: datetime.datetime) -> str:
    return f"'{moment:%Y-%m-%d}'"


PARTITIONED: Final = (
    _Partitioned("events", "id", _id_bound),
    _Partitioned("health_summaries", "day", _day_bound),
)


async def _events_by_region(conn: asyncpg.Connection) -> None:
    """Version 1's `events` (by time only) becomes version 2's (by region, then time), rows kept."""
    for region in [r["region"] for r in await conn.fetch("SELECT DISTINCT region FROM events_v1")]:
        await ensure_partitions(conn, region)
    await conn.execute(
        "INSERT INTO events (region, community, id, seq, kind, gateway_ts, received, arrival, data) "
        "SELECT region, community, id, seq, kind, gateway_ts, received, arrival, data FROM events_v1"
    )
    await conn.execute("DROP TABLE events_v1")


_V2: Final[list[Step]] = [
    # events: by region, then by month (a region's partitions are made by ensure_partitions).
    "ALTER TABLE events RENAME TO events_v1",
    "ALTER INDEX events_kind RENAME TO events_v1_kind",
    "ALTER TABLE events_v1 RENAME CONSTRAINT events_pkey TO events_v1_pkey",
    """CREATE TABLE events (
        region text NOT NULL, community text NOT NULL, id bigint NOT NULL, seq bigint NOT NULL,
        kind text NOT NULL, gateway_ts double precision NOT NULL,
        received timestamptz NOT NULL DEFAULT now(),
        arrival bigint NOT NULL DEFAULT nextval('events_arrival'),
        data jsonb NOT NULL,
        PRIMARY KEY (region, community, id)) PARTITION BY LIST (region)""",
    "CREATE TABLE events_other PARTITION OF events DEFAULT",
    "CREATE INDEX events_kind ON events (region, kind, received)",
    # Consented health summaries: one row per resident (or household, for readings nobody was
    # named for) and local day, the newest version by the gateway's seq.
    """CREATE TABLE health_summaries (
        region text NOT NULL, community text NOT NULL, household text NOT NULL,
        resident text NOT NULL DEFAULT '', day date NOT NULL, vitals jsonb NOT NULL,
        readings integer NOT NULL, seq bigint NOT NULL, event_id bigint NOT NULL,
        updated timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (region, community, household, resident, day)) PARTITION BY LIST (region)""",
    "CREATE TABLE health_summaries_other PARTITION OF health_summaries DEFAULT",
    _events_by_region,
    # A household that withdrew its consent: its summaries are deleted, and older ones that
    # arrive late (another consumer, a redelivery) are not stored again.
    """CREATE TABLE health_withdrawals (
        region text NOT NULL, community text NOT NULL, household text NOT NULL, seq bigint NOT NULL,
        received timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (region, community, household))""",
    # Named operators of the dashboard: an argon2id password for people, a per-operator API
    # token (only its SHA-256 kept) for scripts; web sessions with their CSRF token.
    """CREATE TABLE operators (
        name text PRIMARY KEY, password_hash text NOT NULL, token_digest text UNIQUE,
        created timestamptz NOT NULL DEFAULT now(), created_by text NOT NULL,
        disabled boolean NOT NULL DEFAULT false, failures integer NOT NULL DEFAULT 0,
        locked_until timestamptz, last_login timestamptz)""",
    """CREATE TABLE operator_sessions (
        digest text PRIMARY KEY, operator text NOT NULL REFERENCES operators (name) ON DELETE CASCADE,
        csrf text NOT NULL, created timestamptz NOT NULL DEFAULT now(), expires timestamptz NOT NULL,
        ip text)""",
    "CREATE INDEX operator_sessions_expires ON operator_sessions (expires)",
    # Who signed in, who sent which broadcast: appended, never changed.
    """CREATE TABLE audit_log (
        id bigserial PRIMARY KEY, ts timestamptz NOT NULL DEFAULT now(), region text NOT NULL,
        operator text, action text NOT NULL, target text, outcome text NOT NULL DEFAULT 'ok',
        ip text, detail jsonb)""",
    "CREATE INDEX audit_log_region ON audit_log (region, id)",
    """CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$""",
    """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
]

MIGRATIONS: Final[list[list[Step]]] = [_V1, _V2]
LATEST: Final = len(MIGRATIONS)


# Not to_regclass(): its catalog cache may not yet see a table another session just committed.
_EXISTS: Final = (
    "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = $1 AND n.nspname = current_schema())"
)
_PLAIN_REGION: Final = re.compile(r"^[a-z0-9_]{1,24}$")


def month_start(day: datetime.date) -> datetime.datetime:
    return datetime.datetime(day.year, day.month, 1, tzinfo=datetime.UTC)


def _next_month(start: datetime.datetime) -> datetime.datetime:
    return start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)


def _id_at(moment: datetime.datetime) -> int:
    return int(moment.timestamp() * 1000) << SEQ_BITS


def region_slug(region: str) -> str:
    """The region's part of its partitions' names: the id itself when it is a plain name, else a hash."""
    if _PLAIN_REGION.match(region):
        return region
    return "r" + hashlib.sha256(region.encode()).hexdigest()[:16]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def _exists(conn: asyncpg.Connection, name: str) -> bool:
    return bool(await conn.fetchval(_EXISTS, name))


async def _region_partition(conn: asyncpg.Connection, spec: _Partitioned, region: str) -> str | None:
    """The region's partition of `spec.table` (itself partitioned by month), made if missing."""
    name = f"{spec.table}_{region_slug(region)}"
    if await _exists(conn, name):
        return None
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        if await _exists(conn, name):  # another consumer has just made it
            return None
        await conn.execute(
            f"CREATE TABLE {name} (LIKE {spec.table} INCLUDING DEFAULTS) PARTITION BY RANGE ({spec.column})"
        )
        await conn.execute(f"CREATE TABLE {name}_default PARTITION OF {name} DEFAULT")
        # Rows this region already left in the table's DEFAULT partition would block the attach.
        await conn.execute(
            f"WITH moved AS (DELETE FROM {spec.table}_other WHERE region = $1 RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved",
            region,
        )
        await conn.execute(
            f"ALTER TABLE {spec.table} ATTACH PARTITION {name} FOR VALUES IN ({_literal(region)})"
        )
    return name


async def _month_partition(
    conn: asyncpg.Connection, spec: _Partitioned, parent: str, start: datetime.datetime
) -> str | None:
    end = _next_month(start)
    name = f"{parent}_{start:%Y_%m}"
    if await _exists(conn, name):
        return None
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        if await _exists(conn, name):
            return None
        low, high = spec.bound(start), spec.bound(end)
        await conn.execute(f"CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS)")
        # Rows already in the DEFAULT partition for this month would block the attach; move
        # them along (rare: only a gateway far ahead in time).
        await conn.execute(
            f"WITH moved AS (DELETE FROM {parent}_default WHERE {spec.column} >= {low} "
            f"AND {spec.column} < {high} RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        )
        await conn.execute(
            f"ALTER TABLE {parent} ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})"
        )
    return name


async def ensure_partitions(
    conn: asyncpg.Connection, region: str, months_ahead: int = 2, *, now: datetime.datetime | None = None
) -> list[str]:
    """The region's partitions, with this month's and the next months'; returns those created."""
    created: list[str] = []
    first = month_start((now or datetime.datetime.now(datetime.UTC)).date())
    for spec in PARTITIONED:
        made = await _region_partition(conn, spec, region)
        if made:
            created.append(made)
        parent = f"{spec.table}_{region_slug(region)}"
        start = first
        for _ in range(months_ahead + 1):
            made = await _month_partition(conn, spec, parent, start)
            if made:
                created.append(made)
            start = _next_month(start)
    return created


async def partition_of(conn: asyncpg.Connection, table: str, where: str, *args: Any) -> list[str]:
    """Which partitions hold the rows of `table` matching `where` (for checks and tests)."""
    rows = await conn.fetch(
        f"SELECT DISTINCT tableoid::regclass::text AS part FROM {table} WHERE {where} ORDER BY 1", *args
    )
    return [r["part"] for r in rows]


async def migrate(conn: asyncpg.Connection, region: str | None = None, *, target: int = LATEST) -> list[int]:
    """Bring the database to `target`, and `region`'s partitions up to date; safe to run concurrently."""
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
        for version in range(current + 1, target + 1):
            for step in MIGRATIONS[version - 1]:
                if isinstance(step, str):
                    await conn.execute(step)
                else:
                    await step(conn)
            await conn.execute("INSERT INTO region_schema (version) VALUES ($1)", version)
            applied.append(version)
    if applied:
        _LOGGER.info("regional database migrated to schema version %d", applied[-1])
    if region is not None and (applied[-1] if applied else current) >= 2:
        await ensure_partitions(conn, region)
    return applied
