"""Telemetry retention: raw rows for `raw_days`, hourly aggregates for `hourly_days`.

Raw rows are downsampled as they leave the raw window: each expiring chunk is
folded into `telemetry_hourly` (count of every reading; min, max, sum of the
numeric ones — a composite such as a blood-pressure panel is counted only, the
health service keeps those readings in full) and
deleted in the same transaction, so a reading is always either raw or counted
in its hour — never both, never neither.

Rows are appended in time order, so the expired rows are a prefix of the table
by rowid; no index on `ts` is needed (it would slow every insert).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import sqlite_utils

from linli.gateway.store.store import Store

DAY: Final = 86400.0
CHUNK_ROWS: Final = 50_000


@dataclass(slots=True)
class RetentionResult:
    raw_expired: int = 0
    hourly_expired: int = 0
    quarantine_expired: int = 0


def _expire_raw_chunk(db: sqlite_utils.Database, cutoff: float, limit: int) -> int:
    conn = db.conn
    first = conn.execute("SELECT min(rowid) FROM telemetry").fetchone()[0]
    if first is None:
        return 0
    end = first + limit
    keep = conn.execute(
        "SELECT rowid FROM telemetry WHERE rowid >= ? AND rowid < ? AND ts >= ? ORDER BY rowid LIMIT 1",
        (first, end, cutoff),
    ).fetchone()
    boundary = keep[0] if keep else end
    if boundary <= first:
        return 0
    conn.execute(
        """
        INSERT INTO telemetry_hourly (device_row, capability, hour, count, min, max, sum)
        SELECT device_row, capability, CAST(ts / 3600 AS INTEGER), count(*),
               min(num), max(num), sum(num)
        FROM telemetry WHERE rowid < ?
        GROUP BY device_row, capability, CAST(ts / 3600 AS INTEGER)
        ON CONFLICT (device_row, capability, hour) DO UPDATE SET
            count = telemetry_hourly.count + excluded.count,
            min = min(telemetry_hourly.min, excluded.min),
            max = max(telemetry_hourly.max, excluded.max),
            sum = telemetry_hourly.sum + excluded.sum
        """,
        (boundary,),
    )
    return conn.execute("DELETE FROM telemetry WHERE rowid < ?", (boundary,)).rowcount


async def async_apply_retention(
    store: Store, *, raw_days: float, hourly_days: float, now: float | None = None
) -> RetentionResult:
    """Downsample and expire; runs in chunks so the writer is never held for long."""
    now = time.time() if now is None else now
    result = RetentionResult()
    raw_cutoff = now - raw_days * DAY
    while True:
        expired = await store.async_write(lambda db: _expire_raw_chunk(db, raw_cutoff, CHUNK_ROWS))
        result.raw_expired += expired
        if expired < CHUNK_ROWS:
            break
    hour_cutoff = int((now - hourly_days * DAY) // 3600)
    result.hourly_expired = await store.async_write(
        lambda db: db.conn.execute("DELETE FROM telemetry_hourly WHERE hour < ?", (hour_cutoff,)).rowcount
    )
    result.quarantine_expired = await store.async_write(
        lambda db: db.conn.execute("DELETE FROM quarantine WHERE ts < ?", (now - 30 * DAY,)).rowcount
    )
    return result
