"""The health tables: readings and refusals written in batches, and the queries on them.

Readings arrive on the ingest hot path, so they are queued in memory and
committed together every `batch_s` (or as soon as `batch_rows` wait): one
transaction, one fsync, for all the readings of that moment. A reading that
raised an alert is durable anyway — the alert engine writes the alert, with
the reading in it, before anyone is told. Queries flush the queue first, so a
reading is visible to the API as soon as it was taken.

Consent and thresholds are rare, deliberate changes: each is its own durable
write (`Store.async_write`), committed before the call returns.

`on_commit` (readings) and `also` (consent) let the service add to the same
transaction — the consented summaries for the region (`summaries.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from typing import Any, Final

import orjson
import sqlite_utils

from linli.gateway.store import Store
from linli.services.health.consent import ConsentRecord, Purpose
from linli.services.health.readings import Attribution, Reading, Rejection
from linli.services.health.thresholds import Thresholds

_LOGGER = logging.getLogger(__name__)
READING_COLUMNS: Final = ", ".join(
    (
        "id",
        "household_id",
        "resident_id",
        "attribution",
        "kind",
        "loinc",
        "unit",
        "value",
        "components",
        "device_id",
        "ts",
        "received",
    )
)


def _reading_row(r: Reading) -> tuple[Any, ...]:
    value = r.value
    simple, composite = (None, orjson.dumps(value).decode()) if isinstance(value, dict) else (value, None)
    return (
        r.id,
        r.household_id,
        r.resident_id,
        r.attribution.value,
        r.kind,
        r.loinc,
        r.unit,
        simple,
        composite,
        r.device_id,
        r.ts,
        r.received,
    )


def row_reading(row: tuple[Any, ...]) -> Reading:
    rid, household, resident, attribution, kind, _loinc, _unit, value, components, device, ts, received = row
    return Reading(
        id=rid,
        household_id=household,
        resident_id=resident,
        attribution=Attribution(attribution),
        kind=kind,
        value=orjson.loads(components) if components is not None else value,
        device_id=device,
        ts=ts,
        received=received,
    )


class HealthStorage:
    """Batched writes and the reads of the health tables."""

    def __init__(
        self,
        store: Store,
        *,
        batch_s: float = 0.2,
        batch_rows: int = 1000,
        on_commit: Callable[[sqlite_utils.Database, list[Reading]], object] | None = None,
    ) -> None:
        self._store = store
        self._on_commit = on_commit  # runs in each batch's transaction, after its readings
        self.batch_s = batch_s
        self.batch_rows = batch_rows
        self._readings: list[Reading] = []
        self._rejections: list[Rejection] = []
        self._lock = asyncio.Lock()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.batches_written = 0
        self.readings_written = 0

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._write_loop(), name="linli-health-writer")

    async def async_stop(self) -> None:
        """Write what is queued, then stop the writer."""
        self._stopping = True
        if self._task is not None:
            assert self._wake is not None
            self._wake.set()
            await self._task
            self._task = None

    # -- hot path ------------------------------------------------------------------

    def append_reading(self, reading: Reading) -> None:
        """Queue a reading for the next batch (no I/O)."""
        self._readings.append(reading)
        if len(self._readings) >= self.batch_rows and self._wake is not None:
            self._wake.set()

    def append_rejection(self, rejection: Rejection) -> None:
        self._rejections.append(rejection)
        if len(self._rejections) >= self.batch_rows and self._wake is not None:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._readings) + len(self._rejections)

    # -- the writer ----------------------------------------------------------------

    async def _write_loop(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.batch_s)
            self._wake.clear()
            try:
                await self.async_flush()
            except Exception:
                _LOGGER.exception("writing %d health readings failed; retrying in 1 s", self.pending)
                if not self._stopping:
                    await asyncio.sleep(1.0)
                    continue
            if self._stopping:
                return

    async def async_flush(self) -> None:
        """Commit everything queued before this call (one transaction)."""
        async with self._lock:
            if not self._readings and not self._rejections:
                return
            readings, self._readings = self._readings, []
            rejections, self._rejections = self._rejections, []
            rows = [_reading_row(r) for r in readings]
            refused = [
                (
                    r.household_id,
                    r.resident_id,
                    r.kind,
                    r.device_id,
                    r.ts,
                    r.received,
                    r.value,
                    r.code,
                    r.reason,
                )
                for r in rejections
            ]

            def write(db: sqlite_utils.Database) -> None:
                db.conn.executemany(
                    f"INSERT OR IGNORE INTO health_readings ({READING_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                db.conn.executemany(
                    "INSERT INTO health_rejected (household_id, resident_id, kind, device_id, ts, "
                    "received, value, code, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    refused,
                )
                if self._on_commit is not None and readings:
                    self._on_commit(db, readings)

            try:
                await self._store.async_write(write)
            except BaseException:
                self._readings[:0] = readings
                self._rejections[:0] = rejections
                raise
            self.batches_written += 1
            self.readings_written += len(rows)

    # -- reading queries -----------------------------------------------------------

    async def async_readings(
        self,
        *,
        resident_id: str | None,
        household_id: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[Reading]:
        """Readings in time order; `resident_id=None` with a household: its unattributed ones."""
        await self.async_flush()
        where: list[str] = []
        params: list[Any] = []
        if resident_id is not None:
            where.append("resident_id = ?")
            params.append(resident_id)
        else:
            where.append("resident_id IS NULL")
        if household_id is not None:
            where.append("household_id = ?")
            params.append(household_id)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        if until is not None:
            where.append("ts < ?")
            params.append(until)
        sql = f"SELECT {READING_COLUMNS} FROM health_readings WHERE {' AND '.join(where)} ORDER BY ts, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"

        def read(conn: sqlite3.Connection) -> list[Reading]:
            return [row_reading(row) for row in conn.execute(sql, params)]

        return await self._store.async_read(read)

    async def async_rejections(
        self, household_id: str, *, since: float | None = None, limit: int = 1000
    ) -> list[Rejection]:
        await self.async_flush()

        def read(conn: sqlite3.Connection) -> list[Rejection]:
            rows = conn.execute(
                "SELECT household_id, resident_id, kind, device_id, value, ts, received, code, reason "
                "FROM health_rejected WHERE household_id = ? AND received >= ? ORDER BY id LIMIT ?",
                (household_id, since if since is not None else 0.0, limit),
            ).fetchall()
            return [
                Rejection(
                    household_id=h,
                    resident_id=r,
                    kind=k,
                    device_id=d,
                    value=v,
                    ts=ts,
                    received=rec,
                    code=code,
                    reason=reason,
                )
                for h, r, k, d, v, ts, rec, code, reason in rows
            ]

        return await self._store.async_read(read)

    # -- thresholds and consent (durable, one write each) ---------------------------

    async def async_load_settings(
        self,
    ) -> tuple[dict[str, Thresholds], list[ConsentRecord]]:
        def read(conn: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            return (
                conn.execute("SELECT resident_id, thresholds FROM health_thresholds").fetchall(),
                conn.execute(
                    "SELECT household_id, purpose, granted, by, ts, note FROM health_consent ORDER BY id"
                ).fetchall(),
            )

        thresholds, consents = await self._store.async_read(read)
        return (
            {rid: Thresholds.from_dict(orjson.loads(data)) for rid, data in thresholds},
            [
                ConsentRecord(household_id=h, purpose=Purpose(p), granted=bool(g), by=b, ts=ts, note=n)
                for h, p, g, b, ts, n in consents
                if p in Purpose.__members__.values()
            ],
        )

    async def async_save_thresholds(
        self, resident_id: str, thresholds: Thresholds | None, by: str, ts: float
    ) -> None:
        """Store a resident's thresholds (None: back to the defaults)."""
        if thresholds is None:
            await self._store.async_write(
                lambda db: db.conn.execute(
                    "DELETE FROM health_thresholds WHERE resident_id = ?", (resident_id,)
                )
            )
            return
        text = orjson.dumps(thresholds.as_dict()).decode()
        await self._store.async_write(
            lambda db: db.conn.execute(
                "INSERT OR REPLACE INTO health_thresholds (resident_id, thresholds, updated_by, updated_at) "
                "VALUES (?, ?, ?, ?)",
                (resident_id, text, by, ts),
            )
        )

    async def async_record_consent(
        self,
        records: list[ConsentRecord],
        also: Callable[[sqlite_utils.Database], object] | None = None,
    ) -> None:
        """Append grants or withdrawals, and whatever `also` writes, in one transaction."""
        rows = [(r.household_id, r.purpose.value, 1 if r.granted else 0, r.by, r.ts, r.note) for r in records]

        def write(db: sqlite_utils.Database) -> None:
            db.conn.executemany(
                "INSERT INTO health_consent (household_id, purpose, granted, by, ts, note) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            if also is not None:
                also(db)

        await self._store.async_write(write)

    async def async_consent_history(self, household_id: str) -> list[ConsentRecord]:
        def read(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(
                "SELECT household_id, purpose, granted, by, ts, note FROM health_consent "
                "WHERE household_id = ? ORDER BY id",
                (household_id,),
            ).fetchall()

        rows = await self._store.async_read(read)
        return [
            ConsentRecord(household_id=h, purpose=Purpose(p), granted=bool(g), by=b, ts=ts, note=n)
            for h, p, g, b, ts, n in rows
        ]
