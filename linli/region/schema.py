"""The regional PostgreSQL schema, versioned; every consumer migrates on start, one at a time.

Each migration is a list of steps — SQL statements, or coroutines for what SQL
alone cannot say — run in one transaction; the version is kept in
`region_schema`. A transaction-level advisory lock serialises consumers that
start together. Never edit a released migration; add the next.

Partitioning, by region and then by time, each kind of record in its own table so
that each keeps its own retention (docs/scale.md, "PostgreSQL"):

    events                       LIST (region)            raw events: 30 days by default
      events_<region>              RANGE (at): pg_partman, one partition a day
        events_<region>_p2026_12_07
        events_<region>_default      times no partition was made for (a gateway far off in time)
      events_other                 DEFAULT: a region nobody made partitions for yet
    alerts                       LIST (region)            one row per alert: 2 years
      alerts_<region>              RANGE (raised): pg_partman, one partition a month
    health_summaries             LIST (region)            daily summaries: 10 years
      health_summaries_<region>    RANGE (day): pg_partman, one partition a month

`at` and `raised` are the time in the event's and the alert's id (the gateway's
millisecond clock << 22), so they are part of the key without changing what
is unique. A region's rows are never mixed with another's: a region leaves the
database by detaching its partition. Time partitions are pg_partman's
(`postgresql-15-partman`): `ensure_partitions(conn, region)` makes the region's
partition of each table and registers it with pg_partman (rows that waited in
`<table>_other` move into it), then runs pg_partman's maintenance for it, which
makes partitions ahead and drops those older than the kind's retention
(`DROP TABLE`: instant, no vacuum). `maintain(conn, region, retention)` also sets
each kind's retention from the region's config (`[retention]`).
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

from linli.region.config import DEFAULTS

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
        await _v2_partitions(conn, region)
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


@dataclass(slots=True, frozen=True)
class Kind:
    """One kind of regional record: its own table, time partitions and retention."""

    table: str
    column: str  # the time it is partitioned by
    interval: str  # one partition per (pg_partman's interval)
    premake: int  # partitions made ahead
    retention: str  # its key in the config's [retention] section, days
    touched: str  # when the region last wrote the row (its own clock, not the gateway's)


KINDS: Final = (
    Kind("events", "at", "daily", 4, "raw_events_days", "received"),
    Kind("alerts", "raised", "monthly", 3, "alerts_days", "updated"),
    Kind("health_summaries", "day", "monthly", 3, "health_summaries_days", "updated"),
)
# Raw events are superseded snapshots and the alerts' history (the alert itself is in `alerts`);
# alerts are the programme's record; consented daily summaries are what a decade of care is read from.
RETENTION_DEFAULTS: Final = {k: v for k, v in DEFAULTS["retention"].items() if k.endswith("_days")}
# The time in an id made by linli.common.ids: the gateway's millisecond clock << 22.
_ID_TIME: Final = "to_timestamp(({0} >> 22) / 1000.0)"


async def _partman(conn: asyncpg.Connection) -> None:
    available = await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_partman'")
    if not available:
        raise RuntimeError(
            "the regional database needs the pg_partman extension for its partitions and retention: "
            "install it on the database host (Debian: apt-get install postgresql-15-partman) and start again"
        )
    await conn.execute("CREATE SCHEMA IF NOT EXISTS partman")
    await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman")


async def _kinds_apart(conn: asyncpg.Connection) -> None:
    """Version 2's tables become version 3's, each kind partitioned on its own by pg_partman; rows kept."""
    await _partman(conn)
    for table in ("events", "alerts", "health_summaries"):
        await conn.execute(f"CREATE TABLE {table}_v2_rows AS SELECT * FROM {table}")
        await conn.execute(f"DROP TABLE {table} CASCADE")
    for statement in _V3_TABLES:
        await conn.execute(statement)
    regions = await conn.fetch(
        "SELECT region FROM events_v2_rows UNION SELECT region FROM alerts_v2_rows "
        "UNION SELECT region FROM health_summaries_v2_rows"
    )
    for region in [r["region"] for r in regions]:
        await ensure_partitions(conn, region, maintenance=False)
    await conn.execute(
        "INSERT INTO events (region, community, id, at, seq, kind, gateway_ts, received, arrival, data) "
        f"SELECT region, community, id, {_ID_TIME.format('id')}, seq, kind, gateway_ts, received, arrival, "
        "data FROM events_v2_rows"
    )
    await conn.execute(
        "INSERT INTO alerts (region, community, alert_id, raised, household, kind, severity, state, title, "
        "count, step, raised_at, acknowledged_at, resolved_at, clock_offset_s, last_seq, updated) "
        f"SELECT region, community, alert_id, {_ID_TIME.format('alert_id')}, household, kind, severity, "
        "state, title, count, step, raised_at, acknowledged_at, resolved_at, clock_offset_s, last_seq, "
        "updated FROM alerts_v2_rows"
    )
    await conn.execute("INSERT INTO health_summaries SELECT * FROM health_summaries_v2_rows")
    for table in ("events", "alerts", "health_summaries"):
        await conn.execute(f"DROP TABLE {table}_v2_rows")
    # Older rows landed in each region's default partition: give them partitions of their own
    # (the next maintenance then drops those past their kind's retention).
    for region in [r["region"] for r in regions]:
        for kind in KINDS:
            parent = f"public.{kind.table}_{region_slug(region)}"
            while await conn.fetchval(
                "SELECT partman.partition_data_time($1, p_batch_count := 1000, p_analyze := false)", parent
            ):
                pass


_V3_TABLES: Final = [
    """CREATE TABLE events (
        region text NOT NULL, community text NOT NULL, id bigint NOT NULL, at timestamptz NOT NULL,
        seq bigint NOT NULL, kind text NOT NULL, gateway_ts double precision NOT NULL,
        received timestamptz NOT NULL DEFAULT now(),
        arrival bigint NOT NULL DEFAULT nextval('events_arrival'),
        data jsonb NOT NULL,
        PRIMARY KEY (region, community, id, at)) PARTITION BY LIST (region)""",
    "CREATE TABLE events_other PARTITION OF events DEFAULT",
    "CREATE INDEX events_kind ON events (region, kind, received)",
    """CREATE TABLE alerts (
        region text NOT NULL, community text NOT NULL, alert_id bigint NOT NULL, raised timestamptz NOT NULL,
        household text, kind text NOT NULL, severity text NOT NULL, state text NOT NULL,
        title text, count integer NOT NULL DEFAULT 1, step integer,
        raised_at double precision NOT NULL, acknowledged_at double precision,
        resolved_at double precision, clock_offset_s double precision NOT NULL DEFAULT 0,
        last_seq bigint NOT NULL, updated timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (region, community, alert_id, raised)) PARTITION BY LIST (region)""",
    "CREATE TABLE alerts_other PARTITION OF alerts DEFAULT",
    "CREATE INDEX alerts_open ON alerts (region, severity) WHERE state <> 'resolved'",
    "CREATE INDEX alerts_acknowledged ON alerts (region, acknowledged_at)",
    """CREATE TABLE health_summaries (
        region text NOT NULL, community text NOT NULL, household text NOT NULL,
        resident text NOT NULL DEFAULT '', day date NOT NULL, vitals jsonb NOT NULL,
        readings integer NOT NULL, seq bigint NOT NULL, event_id bigint NOT NULL,
        updated timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (region, community, household, resident, day)) PARTITION BY LIST (region)""",
    "CREATE TABLE health_summaries_other PARTITION OF health_summaries DEFAULT",
]

_V3: Final[list[Step]] = [_kinds_apart]


async def _kind_partition(conn: asyncpg.Connection, kind: Kind, region: str) -> str | None:
    """The region's partition of `kind.table`, registered with pg_partman, made if missing."""
    name = f"{kind.table}_{region_slug(region)}"
    if await _exists(conn, name):
        return None
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        if await _exists(conn, name):  # another consumer has just made it
            return None
        await conn.execute(
            f"CREATE TABLE {name} (LIKE {kind.table} INCLUDING DEFAULTS) PARTITION BY RANGE ({kind.column})"
        )
        await conn.execute(
            "SELECT partman.create_parent($1, $2, 'native', $3, p_premake := $4)",
            f"public.{name}",
            kind.column,
            kind.interval,
            kind.premake,
        )
        # Maintenance follows the clock, not the newest row: a gateway far ahead in time must not
        # make partitions for years that have not come (its rows wait in the default partition).
        await conn.execute(
            "UPDATE partman.part_config SET infinite_time_partitions = true, ignore_default_data = true, "
            "retention = $2, retention_keep_table = false, retention_keep_index = false "
            "WHERE parent_table = $1",
            f"public.{name}",
            f"{RETENTION_DEFAULTS[kind.retention]} days",
        )
        # Rows this region already left in the table's DEFAULT partition would block the attach.
        await conn.execute(
            f"WITH moved AS (DELETE FROM {kind.table}_other WHERE region = $1 RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved",
            region,
        )
        await conn.execute(
            f"ALTER TABLE {kind.table} ATTACH PARTITION {name} FOR VALUES IN ({_literal(region)})"
        )
    return name


async def partitions(conn: asyncpg.Connection, parent: str) -> list[str]:
    """The partitions of `parent`, by name."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = $1::regclass ORDER BY 1",
        parent,
    )
    return [r["relname"] for r in rows]


async def set_retention(conn: asyncpg.Connection, region: str, retention: dict[str, Any]) -> None:
    """Each kind's retention for `region`, in days, from the config's [retention] section."""
    for kind in KINDS:
        days = retention.get(kind.retention, RETENTION_DEFAULTS[kind.retention])
        await conn.execute(
            "UPDATE partman.part_config SET retention = $2 WHERE parent_table = $1",
            f"public.{kind.table}_{region_slug(region)}",
            f"{int(days)} days",
        )


async def ensure_partitions(
    conn: asyncpg.Connection,
    region: str,
    *,
    retention: dict[str, Any] | None = None,
    maintenance: bool = True,
) -> list[str]:
    """The region's partition of each kind's table, and pg_partman's maintenance of them.

    Returns the partitions made and dropped (prefixed "-"). `retention` (days per kind, the
    config's [retention]) is set first when given; maintenance makes the partitions ahead
    and drops those past each kind's retention.
    """
    changed: list[str] = []
    for kind in KINDS:
        made = await _kind_partition(conn, kind, region)
        if made:
            changed.append(made)
    if retention is not None:
        await set_retention(conn, region, retention)
    if maintenance:
        for kind in KINDS:
            parent = f"{kind.table}_{region_slug(region)}"
            if parent in changed and retention is None:
                continue  # pg_partman has just made its partitions, and nothing is old yet
            before = set(await partitions(conn, parent))
            await conn.execute("SELECT partman.run_maintenance($1, p_jobmon := false)", f"public.{parent}")
            after = set(await partitions(conn, parent))
            changed += sorted(after - before) + [f"-{name}" for name in sorted(before - after)]
            await _prune_default(conn, kind, parent)
    return changed


async def _prune_default(conn: asyncpg.Connection, kind: Kind, parent: str) -> int:
    """Rows in the kind's DEFAULT partition the region has held past its retention: deleted.

    They carry a time no partition was made for — a gateway whose clock was far off, say an
    RTC reset to 1970 — so that time says nothing about their age. The region's own clock
    does: a row goes once the region last wrote it longer ago than the kind's retention
    (pg_partman leaves the DEFAULT partition alone). Returns how many went.
    """
    default = f"{parent}_default"
    retention = await conn.fetchval(
        "SELECT retention FROM partman.part_config WHERE parent_table = $1", f"public.{parent}"
    )
    if not retention or not await _exists(conn, default):
        return 0
    status = await conn.execute(
        f"DELETE FROM {default} WHERE {kind.touched} < now() - $1::text::interval", retention
    )
    deleted = int(status.rsplit(" ", 1)[-1])
    if deleted:
        _LOGGER.info("%s: %d rows past its %s retention left the default", parent, deleted, retention)
    return deleted


async def maintain(conn: asyncpg.Connection, region: str, retention: dict[str, Any]) -> list[str]:
    """`linli region maintain` and the dashboard's hourly job: retention from the config, then maintenance."""
    changed = await ensure_partitions(conn, region, retention=retention)
    if changed:
        _LOGGER.info("region %s: partitions made %s", region, [c for c in changed if not c.startswith("-")])
        dropped = [c[1:] for c in changed if c.startswith("-")]
        if dropped:
            _LOGGER.info("region %s: partitions past their retention dropped %s", region, dropped)
    return changed


MIGRATIONS: Final[list[list[Step]]] = [_V1, _V2, _V3]
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


async def _v2_partitions(
    conn: asyncpg.Connection, region: str, months_ahead: int = 2, *, now: datetime.datetime | None = None
) -> list[str]:
    """Version 2's monthly partitions of a region, made by hand (the V1→V2 migration makes them)."""
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
    version = applied[-1] if applied else current
    if region is not None and version >= 3:
        await ensure_partitions(conn, region)
    elif region is not None and version == 2:  # a target short of the latest (tests of the migrations)
        await _v2_partitions(conn, region)
    return applied
