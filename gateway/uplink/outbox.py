"""The transactional outbox: what goes to the region, written with the change that caused it.

Any `Store.async_write(fn)` function may call `enqueue(db, kind, data)`: the row
commits (or rolls back) with everything else `fn` wrote, so the region hears of
a change exactly when the gateway has made it durable, never before and never
not at all. The relay (`gateway/uplink/relay.py`) publishes rows in `seq` order
and deletes them only after the broker's PUBACK.

The outbox is active only on a store whose gateway runs the uplink: elsewhere
`enqueue` does nothing, so a gateway without a region keeps no outbox.

Bounded: when the link is down for long, `prune` keeps the outbox within its
size and age limits by thinning superseded snapshots and dropping rollups,
then summaries — never alerts, receipts or rejections (class KEEP).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

import orjson
import sqlite_utils

from linli.common.ids import new_id

_LOGGER = logging.getLogger(__name__)


class Retention(IntEnum):
    """What may be dropped when the outbox is full, in the order it is dropped."""

    KEEP = 0  # alerts, announcement receipts, rejected downlink messages: never dropped
    SUMMARY = 1  # consented health summaries: dropped after every rollup is gone
    ROLLUP = 2  # status, device health, rollups: superseded ones thinned first, then oldest dropped


# id(write connection) → waker called after an enqueue (from the writer thread).
# sqlite3.Connection takes no weak reference, so the uplink registers and
# unregisters explicitly around its own lifetime.
_ACTIVE: dict[int, Callable[[], None]] = {}
_ACTIVE_LOCK: Final = threading.Lock()


def activate(db: sqlite_utils.Database, waker: Callable[[], None]) -> None:
    """Start keeping an outbox on this store (call inside `async_write`)."""
    with _ACTIVE_LOCK:
        _ACTIVE[id(db.conn)] = waker


def deactivate(db: sqlite_utils.Database) -> None:
    with _ACTIVE_LOCK:
        _ACTIVE.pop(id(db.conn), None)


def is_active(db: sqlite_utils.Database) -> bool:
    """True when this store's gateway runs the uplink (cheap: a dict lookup)."""
    return id(db.conn) in _ACTIVE


def enqueue(
    db: sqlite_utils.Database,
    kind: str,
    data: Mapping[str, Any],
    *,
    retention: Retention = Retention.KEEP,
    key: str | None = None,
    ts: float | None = None,
) -> int | None:
    """Add one event for the region, inside the caller's transaction; returns its id.

    `kind` becomes the last topic level (`.../up/<kind>`); `data` must be
    JSON-serialisable; `key` names what a newer row of the same kind supersedes
    (thinning keeps only the newest row per key). Returns None, writing nothing,
    when the uplink is not running on this store.
    """
    waker = _ACTIVE.get(id(db.conn))
    if waker is None:
        return None
    event_id = new_id()
    db.conn.execute(
        "INSERT INTO uplink_outbox (id, kind, class, key, ts, payload) VALUES (?, ?, ?, ?, ?, ?)",
        (event_id, kind, int(retention), key, time.time() if ts is None else ts, orjson.dumps(data)),
    )
    waker()
    return event_id


@dataclass(slots=True, kw_only=True)
class OutboxRow:
    seq: int
    id: int
    kind: str
    ts: float
    payload: bytes


def read_batch(conn: sqlite3.Connection, after_seq: int, limit: int) -> list[OutboxRow]:
    """The next rows to publish, in delivery order."""
    return [
        OutboxRow(seq=r[0], id=r[1], kind=r[2], ts=r[3], payload=r[4])
        for r in conn.execute(
            "SELECT seq, id, kind, ts, payload FROM uplink_outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
    ]


def mark_delivered(db: sqlite_utils.Database, seqs: list[int]) -> None:
    """The broker acknowledged these rows (PUBACK): they leave the outbox."""
    db.conn.executemany("DELETE FROM uplink_outbox WHERE seq = ?", [(s,) for s in seqs])


def depth(conn: sqlite3.Connection) -> dict[str, Any]:
    """Rows and bytes waiting, by retention class, and the oldest row's age."""
    by_class = {int(c): (n, b or 0, t) for c, n, b, t in conn.execute(_STATS)}
    now = time.time()
    oldest = min((t for _, _, t in by_class.values() if t is not None), default=None)
    return {
        "rows": sum(n for n, _, _ in by_class.values()),
        "bytes": sum(b for _, b, _ in by_class.values()),
        "alerts_and_receipts": by_class.get(Retention.KEEP, (0, 0, None))[0],
        "oldest_s": round(now - oldest, 1) if oldest is not None else None,
    }


_STATS: Final = "SELECT class, count(*), sum(length(payload)), min(ts) FROM uplink_outbox GROUP BY class"


@dataclass(slots=True, kw_only=True)
class Bounds:
    max_rows: int
    max_bytes: int
    max_age_s: float


@dataclass(slots=True, kw_only=True)
class PruneReport:
    thinned: int = 0  # superseded snapshots removed
    dropped: dict[str, int] = field(default_factory=dict)  # retention class name → rows dropped
    over_bound_keep: int = 0  # rows that must be kept although the bound is exceeded

    @property
    def removed(self) -> int:
        return self.thinned + sum(self.dropped.values())


def _totals(conn: sqlite3.Connection) -> tuple[int, int]:
    rows, size = conn.execute(
        "SELECT count(*), coalesce(sum(length(payload)), 0) FROM uplink_outbox"
    ).fetchone()
    return int(rows), int(size)


def prune(db: sqlite_utils.Database, bounds: Bounds, now: float | None = None) -> PruneReport:
    """Keep the outbox within its bounds; the droppable classes go first, KEEP never.

    1. rollups and summaries older than `max_age_s` are dropped;
    2. while over `max_rows` / `max_bytes`: superseded rollups (not the newest of
       their key) are thinned, then the oldest rollups dropped, then superseded
       and oldest summaries;
    3. what is left over the bound is alerts and receipts, and stays.
    """
    conn = db.conn
    now = time.time() if now is None else now
    report = PruneReport()

    def drop(retention: Retention, cursor: sqlite3.Cursor) -> None:
        if cursor.rowcount > 0:
            name = retention.name.lower()
            report.dropped[name] = report.dropped.get(name, 0) + cursor.rowcount

    for retention in (Retention.ROLLUP, Retention.SUMMARY):
        drop(
            retention,
            conn.execute(
                "DELETE FROM uplink_outbox WHERE class = ? AND ts < ?",
                (int(retention), now - bounds.max_age_s),
            ),
        )
    rows, size = _totals(conn)
    for retention in (Retention.ROLLUP, Retention.SUMMARY):
        if rows <= bounds.max_rows and size <= bounds.max_bytes:
            break
        thinned = conn.execute(
            "DELETE FROM uplink_outbox WHERE class = ?1 AND key IS NOT NULL AND seq NOT IN "
            "(SELECT max(seq) FROM uplink_outbox WHERE class = ?1 AND key IS NOT NULL GROUP BY key)",
            (int(retention),),
        ).rowcount
        report.thinned += max(thinned, 0)
        rows, size = _totals(conn)
        while rows > bounds.max_rows or size > bounds.max_bytes:
            # Oldest first, in chunks sized to what is over (bytes: a row is a few hundred).
            excess = max(rows - bounds.max_rows, (size - bounds.max_bytes) // 256 + 1, 1)
            cursor = conn.execute(
                "DELETE FROM uplink_outbox WHERE seq IN "
                "(SELECT seq FROM uplink_outbox WHERE class = ? ORDER BY seq LIMIT ?)",
                (int(retention), excess),
            )
            if cursor.rowcount <= 0:
                break
            drop(retention, cursor)
            rows, size = _totals(conn)
    if rows > bounds.max_rows or size > bounds.max_bytes:
        report.over_bound_keep = rows
    if report.removed:
        counters = {f"dropped_{k}": v for k, v in report.dropped.items()}
        if report.thinned:
            counters["thinned"] = report.thinned
        for key, value in counters.items():
            conn.execute(
                "INSERT INTO uplink_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                "SET value = CAST(value AS INTEGER) + excluded.value",
                (key, str(value)),
            )
    return report


def read_state(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM uplink_state").fetchall())


def write_state(db: sqlite_utils.Database, key: str, value: Any) -> None:
    db.conn.execute(
        "INSERT INTO uplink_state (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, str(value)),
    )
