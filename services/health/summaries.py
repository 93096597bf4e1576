"""Consented daily health summaries for the regional tier, written with the readings they summarise.

What goes up is the least the region needs to follow a programme of care:
per resident (or per household, for readings nobody was named for) and local
day, the count and the min / mean / max of each vital — never a reading, a
device, a name or a time of day. It goes only while the household consents to
purpose `export` (automated export to systems outside the gateway), checked
inside the very transaction that commits the readings, so a summary is queued
exactly when its readings are durable and never after a withdrawal.

A withdrawal, in its own transaction, deletes the household's summaries still
waiting in the outbox and queues a `health_withdrawn` notice, on which the
region deletes what it holds of the household. A summary the relay handed to
the broker just before — in flight, at most the relay's window of
milliseconds — cannot be recalled; the region drops it on arrival, because the
notice names the outbox position from which nothing older is kept.

The outbox is the gateway core's (`gateway/uplink/outbox.py`), reached the way
the alert engine reaches it: services depend on the core, and the bus cannot
put a row in the same transaction as the readings. On a gateway without an
uplink nothing is written at all.
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Callable, Iterable
from datetime import tzinfo
from typing import Any, Final

import orjson
import sqlite_utils

from linli.gateway.uplink import outbox
from linli.services.health.consent import Purpose
from linli.services.health.readings import VITALS, Reading
from linli.services.health.storage import READING_COLUMNS, row_reading
from linli.services.health.trends import Period, summarise
from linli.wire.messages import HEALTH_SUMMARY, HEALTH_WITHDRAWN

#: The consent purpose that lets summaries leave the gateway for the region.
PURPOSE: Final = Purpose.EXPORT

MayShare = Callable[[str, str], bool]  # (household id, purpose) → consented


def _key(household_id: str, resident_id: str | None, day: str) -> str:
    # JSON, so that no household id can make one key a prefix of another household's.
    return orjson.dumps(["health", household_id, resident_id, day]).decode()


def _prefix(household_id: str) -> str:
    return _key(household_id, None, "")[: -len('null,""]')]


def _midnight(day: datetime.date, tz: tzinfo) -> float:
    return datetime.datetime.combine(day, datetime.time(0), tz).timestamp()


def _day_readings(
    conn: sqlite3.Connection, household_id: str, resident_id: str | None, start: float, end: float
) -> list[Reading]:
    if resident_id is not None:
        sql = f"SELECT {READING_COLUMNS} FROM health_readings WHERE resident_id = ? AND ts >= ? AND ts < ?"
        params: tuple[Any, ...] = (resident_id, start, end)
    else:
        sql = (
            f"SELECT {READING_COLUMNS} FROM health_readings "
            "WHERE household_id = ? AND resident_id IS NULL AND ts >= ? AND ts < ?"
        )
        params = (household_id, start, end)
    return [row_reading(row) for row in conn.execute(sql, params)]


def summary(
    readings: Iterable[Reading], household_id: str, resident_id: str | None, day: datetime.date, tz: tzinfo
) -> dict[str, Any]:
    """One day's summary of a resident's readings: per vital, the count and min / mean / max."""
    start, end = _midnight(day, tz), _midnight(day + datetime.timedelta(days=1), tz)
    readings = list(readings)
    vitals: dict[str, Any] = {}
    for kind in sorted({r.kind for r in readings}):
        spec = VITALS.get(kind)
        if spec is None:
            continue
        (point,) = summarise(readings, kind, Period.DAY, start, end, tz)
        if point.count:
            vitals[kind] = {
                "count": point.count,
                "loinc": spec.quantity.loinc,
                "unit": spec.quantity.unit,
                "values": {name: stats.as_dict() for name, stats in point.values.items()},
            }
    return {
        "household_id": household_id,
        "resident_id": resident_id,
        "day": day.isoformat(),
        "utc_offset_min": round(
            (datetime.datetime.fromtimestamp(start, tz).utcoffset() or datetime.timedelta()).total_seconds()
            / 60
        ),
        "readings": sum(v["count"] for v in vitals.values()),
        "vitals": vitals,
    }


def enqueue_summaries(
    db: sqlite_utils.Database, readings: Iterable[Reading], may_share: MayShare, tz: tzinfo, now: float
) -> int:
    """In the transaction that stored `readings`: queue the day summaries they changed; returns how many.

    Only for households that consent to PURPOSE at this moment; nothing at all
    when the gateway runs no uplink.
    """
    if not outbox.is_active(db):
        return 0
    touched: set[tuple[str, str | None, datetime.date]] = set()
    for reading in readings:
        if may_share(reading.household_id, PURPOSE):
            day = datetime.datetime.fromtimestamp(reading.ts, tz).date()
            touched.add((reading.household_id, reading.resident_id, day))
    queued = 0
    for household_id, resident_id, day in sorted(touched, key=lambda t: (t[0], t[1] or "", t[2])):
        start, end = _midnight(day, tz), _midnight(day + datetime.timedelta(days=1), tz)
        data = summary(
            _day_readings(db.conn, household_id, resident_id, start, end), household_id, resident_id, day, tz
        )
        if not data["vitals"]:
            continue
        outbox.enqueue(
            db,
            HEALTH_SUMMARY,
            data,
            retention=outbox.Retention.SUMMARY,
            key=_key(household_id, resident_id, data["day"]),  # a newer one supersedes it
            ts=now,
        )
        queued += 1
    return queued


def withdraw(db: sqlite_utils.Database, household_id: str, now: float) -> int:
    """In the withdrawal's transaction: drop the household's queued summaries, tell the region.

    Returns how many queued summaries were dropped.
    """
    if not outbox.is_active(db):
        return 0
    prefix = _prefix(household_id)
    dropped = db.conn.execute(
        "DELETE FROM uplink_outbox WHERE kind = ? AND substr(key, 1, ?) = ?",
        (HEALTH_SUMMARY, len(prefix), prefix),
    ).rowcount
    outbox.enqueue(db, HEALTH_WITHDRAWN, {"household_id": household_id}, ts=now)
    return max(dropped, 0)
