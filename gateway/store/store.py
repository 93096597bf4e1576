"""The store: one SQLite file, one writer thread, telemetry batched off the hot path.

All writes run on a single thread that owns the write connection, so SQLite
never sees two writers and the event loop never waits on the disk:

* `append_telemetry()` is synchronous and cheap: it queues one tuple per
  accepted payload. The writer commits a batch every `batch_ms` or as soon as
  `batch_rows` are queued, whichever comes first.
* `async_write(fn)` runs `fn(db)` in its own committed transaction and returns
  only after the commit: registry changes are durable before anyone is told.
* `write_journaled(kind, doc, fn)` is for alarms: `doc` is committed at once to
  a small journal file of its own (see journal.py), `fn` follows on the writer.
* `async_read(fn)` runs on a separate read-only connection (WAL lets reads
  proceed while the writer commits).
* WAL checkpoints run on the writer thread right after a telemetry commit,
  every `CHECKPOINT_PAYLOADS` payloads. SQLite would otherwise checkpoint inside
  whichever commit crosses 1,000 WAL pages, and the commit that pays for it
  (with its fsyncs) may be an alarm's. (Checkpointing from another thread was
  tried: under steady ingest it never caught up with the writer, so the WAL
  could not restart and grew, and every commit paid for a growing file —
  ingest fell from ~17k to ~14k msg/s.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson
import sqlite_utils

from linli.gateway.store.database import connect, make_private
from linli.gateway.store.journal import Journal, journal_path
from linli.gateway.store.migrations import CORE, Migration, migrate

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

# The whole batch goes to SQLite as one JSON document and is expanded there, so
# the writer thread holds the GIL only for one orjson.dumps per batch, not for
# every row: the ingest loop keeps the interpreter while SQLite works.
# Each element of ?1 is [device_row, ts, {capability: value, ...}].
_BATCH_ROWS: Final = """
    SELECT json_extract(m.value, '$[0]') AS device_row, c.key AS capability,
           json_extract(m.value, '$[1]') AS ts, c.type AS type, c.value AS value
    FROM json_each(?1) AS m, json_each(m.value, '$[2]') AS c
"""
_INSERT_TELEMETRY: Final = f"""
    INSERT INTO telemetry (device_row, capability, ts, num, value)
    SELECT device_row, capability, ts,
           CASE type WHEN 'true' THEN 1.0 WHEN 'false' THEN 0.0
                     WHEN 'integer' THEN value WHEN 'real' THEN value END,
           CASE type WHEN 'text' THEN json_quote(value)
                     WHEN 'object' THEN value WHEN 'array' THEN value END
    FROM ({_BATCH_ROWS})
"""
CHUNK_PAYLOADS: Final = 4000  # per transaction: a few ms, so an alarm never waits long
STATE_PAYLOADS: Final = 1000  # per capability-state upsert: a backlog batch becomes several short ones
CHECKPOINT_PAYLOADS: Final = 1000  # ≈ 2,500 rows of WAL a checkpoint: short (an alarm may wait for one)
CHECKPOINT_EVERY_S: Final = 10.0  # and at least this often, whatever else was written
WRITER_CACHE_KIB: Final = 32768  # the writer connection's page cache
SLOW_WRITE_S: Final = 0.025  # a writer job longer than this delays an alarm noticeably
_UPSERT_STATE: Final = f"""
    INSERT INTO capability_state (device_row, capability, value, last_changed, last_reported)
    SELECT device_row, capability, json_value, ts, ts FROM (
        SELECT device_row, capability, max(ts) AS ts,
               CASE type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
                         WHEN 'object' THEN value WHEN 'array' THEN value
                         ELSE json_quote(value) END AS json_value
        FROM ({_BATCH_ROWS})
        GROUP BY device_row, capability
    ) WHERE device_row IN (SELECT row FROM devices)  -- not a device removed meanwhile
    ON CONFLICT (device_row, capability) DO UPDATE SET
        last_changed = CASE WHEN capability_state.value IS excluded.value
                            THEN capability_state.last_changed ELSE excluded.last_changed END,
        value = excluded.value,
        last_reported = excluded.last_reported
"""


def encode_value(value: Any) -> tuple[float | None, str | None]:
    """(numeric column, JSON column) for one capability value."""
    t = type(value)
    if t is bool:
        return (1.0 if value else 0.0), None
    if t is int or t is float:
        return value, None
    return None, orjson.dumps(value).decode()


class Store:
    """The gateway's SQLite database."""

    def __init__(
        self,
        path: Path,
        *,
        batch_ms: int = 200,
        batch_rows: int = 20000,
        max_pending_rows: int = 2_000_000,
    ) -> None:
        self.path = path
        self.batch_s = batch_ms / 1000
        self.batch_rows = batch_rows
        self.max_pending_rows = max_pending_rows
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="linli-store-writer")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="linli-store-reader")
        self._since_checkpoint = 0  # telemetry payloads committed since (writer thread only)
        self._last_checkpoint = time.monotonic()
        self._conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._pending: list[tuple[int, float, dict[str, Any]]] = []
        self._pending_values = 0
        self._quarantine: list[tuple[float, str, str | None, str, bytes]] = []
        self._wake: asyncio.Event | None = None
        self.journal = Journal(journal_path(path))
        self._journaled: set[asyncio.Future[Any]] = set()  # urgent writes not yet in the main file
        self._forgettable: list[int] = []  # their journal entries, once they are
        self._forget_handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.rows_written = 0
        self.batches_written = 0
        self.payloads_dropped = 0
        self.last_batch_s = 0.0
        self.state_interval_s = 2.0
        self._state_docs: list[bytes] = []  # touched only on the writer thread
        self._last_state_write = 0.0
        # How long the writer thread is held per job (an alarm's commit waits behind it).
        self.writes = 0
        self.slow_writes = 0
        self.max_write_s = 0.0
        self.checkpoints = 0
        self.max_checkpoint_s = 0.0

    # -- lifecycle -------------------------------------------------------------

    async def async_start(self) -> list[int]:
        """Open (creating if needed), migrate the core's tables, and start the writer.

        Returns the core's migrations applied; each component's own are run just before it
        starts (`async_migrate`).
        """
        loop = asyncio.get_running_loop()

        def open_and_migrate() -> list[int]:
            make_private(self.path)
            self._conn = connect(self.path)
            self._conn.execute("PRAGMA wal_autocheckpoint=0")  # see _checkpoint: never in an alarm's commit
            # The telemetry index grows with every reading; with SQLite's default 2 MB page cache
            # its pages fall out of memory, and each batch (an alarm waits behind one) reads them
            # back. 32 MB keeps a few days of a community's index hot; it fills only as used.
            self._conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
            applied: list[int] = migrate(self._conn)  # the core's own tables
            return applied

        applied = await loop.run_in_executor(self._writer, open_and_migrate)
        await loop.run_in_executor(self._writer, self.journal.open)
        self._read_conn = await loop.run_in_executor(self._reader, lambda: connect(self.path, readonly=True))
        if applied:
            _LOGGER.info("store %s: %s tables migrated to version %d", self.path, CORE, applied[-1])
        self._wake = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._write_loop(), name="linli-store-writer")
        return applied

    async def async_stop(self) -> None:
        """Write what is queued, then close the database."""
        self._stopping = True
        if self._journaled:
            await asyncio.wait(set(self._journaled))
        if self._task is not None:
            assert self._wake is not None
            self._wake.set()
            await self._task
            self._task = None
        loop = asyncio.get_running_loop()
        if self._read_conn is not None:
            await loop.run_in_executor(self._reader, self._read_conn.close)
            self._read_conn = None
        if self._conn is not None:
            conn = self._conn

            def close() -> None:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.close()

            await loop.run_in_executor(self._writer, close)
            self._conn = None
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        if self._forget_handle is not None:
            self._forget_handle.cancel()
            self._forget_handle = None
        self._forget()
        self.journal.close()

    async def async_migrate(self, owner: str, migrations: Sequence[Migration]) -> list[int]:
        """Bring `owner`'s own tables up to date (a component, before it starts); versions applied.

        On the writer thread, between other writers' jobs, one transaction per migration
        (gateway/store/migrations.py); refused with SchemaTooNewError if the file is newer.
        """
        if owner == CORE:
            raise ValueError(
                f"{owner!r} is the owner of the gateway's own tables: give the component its own name"
            )
        conn = self._require()
        loop = asyncio.get_running_loop()
        applied: list[int] = await loop.run_in_executor(self._writer, migrate, conn, owner, migrations)
        if applied:
            _LOGGER.info("store %s: %s tables migrated to version %d", self.path, owner, applied[-1])
        return applied

    # -- durable writes and reads ---------------------------------------------

    def _transaction(self, fn: Callable[[sqlite_utils.Database], T]) -> Callable[[], T]:
        conn = self._require()

        def run() -> T:
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(sqlite_utils.Database(conn))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._held(time.perf_counter() - started)
            return result

        return run

    async def async_write(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `fn(db)` in one transaction on the writer thread; returns after COMMIT."""
        return await asyncio.get_running_loop().run_in_executor(self._writer, self._transaction(fn))

    def write_journaled(self, kind: str, doc: Any, fn: Callable[[sqlite_utils.Database], Any]) -> None:
        """Make `doc` durable at once (the alarm journal), and queue `fn(db)` for the main file.

        For an alarm that must be on disk before the caller goes on, without waiting for
        the writer thread (a telemetry batch or a checkpoint may hold it for tens of
        milliseconds). `fn` must write what `doc` describes; if the gateway dies before it
        commits, the component replays `doc` with `async_replay(kind, ...)` on its next start.
        Writes queued after this one (an acknowledgement) still commit after it, and reads
        wait for it: nobody sees the main file without it. Call it on the event loop.
        """
        entry = self.journal.record(kind, doc)
        self._queue_journaled(entry, fn)

    def _queue_journaled(self, entry: int, fn: Callable[[sqlite_utils.Database], Any]) -> None:
        if self._conn is None:  # stopped meanwhile: the entry waits in the journal for the next start
            return
        future = asyncio.get_running_loop().run_in_executor(self._writer, self._transaction(fn))
        self._journaled.add(future)

        def committed(done: asyncio.Future[Any]) -> None:
            self._journaled.discard(done)
            problem = "cancelled" if done.cancelled() else done.exception()
            if problem is not None:
                # Kept in the journal; tried again in a second (and replayed on the next start).
                _LOGGER.error("an alarm could not be copied into %s (%s); retrying", self.path, problem)
                asyncio.get_running_loop().call_later(1.0, self._queue_journaled, entry, fn)
                return
            self._forgettable.append(entry)
            if self._forget_handle is None:
                self._forget_handle = asyncio.get_running_loop().call_later(0.5, self._forget)

        future.add_done_callback(committed)

    async def async_settle_journal(self) -> None:
        """Wait for the alarms' copies in flight, then drop their journal entries now (not in
        half a second): what the main file holds need not be kept twice — a household's data
        deleted on request, say, leaves no copy in the journal."""
        if self._journaled:
            await asyncio.wait(set(self._journaled))
        if self._forget_handle is not None:
            self._forget_handle.cancel()
        self._forget()

    def _forget(self) -> None:
        self._forget_handle = None
        entries, self._forgettable = self._forgettable, []
        try:
            self.journal.forget(entries)
        except sqlite3.Error:
            _LOGGER.exception("alarm journal: %d copied entries kept (replayed harmlessly)", len(entries))

    async def async_replay(self, kind: str, apply: Callable[[sqlite_utils.Database, Any], bool]) -> int:
        """Apply the journal entries of `kind` the main file may lack; how many were missing.

        `apply(db, doc)` writes `doc` unless the main file already holds it and says
        whether it wrote. All of it is one transaction; the entries are then forgotten.
        """
        entries = self.journal.pending(kind)
        if not entries:
            return 0

        def run(db: sqlite_utils.Database) -> int:
            return sum(1 for _, doc in entries if apply(db, doc))

        written = await self.async_write(run)
        self.journal.forget([entry for entry, _ in entries])
        if written:
            _LOGGER.warning("alarm journal: %d %s entries were missing from %s", written, kind, self.path)
        return written

    async def async_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the read-only connection (after any journaled write in flight)."""
        conn = self._read_conn
        if conn is None:
            raise RuntimeError("store is not open: call async_start() first")
        if self._journaled:
            await asyncio.wait(set(self._journaled))
        return await asyncio.get_running_loop().run_in_executor(self._reader, fn, conn)

    def _held(self, seconds: float) -> None:
        """Count one writer job (called on the writer thread; plain counters, read for stats)."""
        self.writes += 1
        self.max_write_s = max(self.max_write_s, seconds)
        if seconds > SLOW_WRITE_S:
            self.slow_writes += 1

    def stats(self) -> dict[str, Any]:
        """The writer's health: jobs, how many held it over 25 ms, the longest; checkpoints."""
        return {
            "writes": self.writes,
            "slow_writes": self.slow_writes,
            "max_write_ms": round(self.max_write_s * 1000, 1),
            "checkpoints": self.checkpoints,
            "max_checkpoint_ms": round(self.max_checkpoint_s * 1000, 1),
            "rows_written": self.rows_written,
            "payloads_dropped": self.payloads_dropped,
        }

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        """A passive checkpoint, on the writer thread, between jobs (never inside an alarm's)."""
        started = time.perf_counter()
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # a reader in the way: the next one will do
            _LOGGER.debug("WAL checkpoint skipped: %s", exc)
            return
        self._last_checkpoint = time.monotonic()
        self.checkpoints += 1
        self.max_checkpoint_s = max(self.max_checkpoint_s, time.perf_counter() - started)

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("store is not open: call async_start() first")
        return self._conn

    # -- telemetry -------------------------------------------------------------

    def append_telemetry(self, device_row: int, ts: float, values: dict[str, Any]) -> None:
        """Queue one payload's values for the next batch (hot path: no I/O here)."""
        if self._pending_values >= self.max_pending_rows:
            # The writer is far behind (a stalled disk). Refusing here keeps memory
            # bounded; alarms do not travel this path, they use async_write().
            self.payloads_dropped += 1
            if self.payloads_dropped == 1 or self.payloads_dropped % 100000 == 0:
                _LOGGER.error(
                    "store writer is %d rows behind: %d telemetry payloads dropped; check the disk under %s",
                    self._pending_values,
                    self.payloads_dropped,
                    self.path.parent,
                )
            return
        self._pending.append((device_row, ts, values))
        self._pending_values += len(values)
        if self._pending_values >= self.batch_rows and self._wake is not None:
            self._wake.set()

    def append_quarantine(
        self, ts: float, topic: str, device_id: str | None, reason: str, payload: bytes
    ) -> None:
        """Keep a refused payload (its first 4 KiB) for inspection, in the next batch."""
        self._quarantine.append((ts, topic, device_id, reason, payload[:4096]))
        if self._wake is not None and len(self._quarantine) >= 1000:
            self._wake.set()

    @property
    def pending_rows(self) -> int:
        return self._pending_values

    async def async_flush(self) -> None:
        """Return when everything appended before this call is committed."""
        while self._pending or self._quarantine or self._flushing:
            assert self._wake is not None
            self._wake.set()
            await asyncio.sleep(0.005)

    _flushing = False

    async def _write_chunks(
        self,
        loop: asyncio.AbstractEventLoop,
        conn: sqlite3.Connection,
        batch: list[tuple[int, float, dict[str, Any]]],
        quarantine: list[tuple[float, str, str | None, str, bytes]],
    ) -> None:
        """Commit a batch as a few short transactions.

        Everything else queued for the writer thread (a registry change, an alarm's copy
        into the main file) waits behind whatever it is doing; short transactions keep
        that wait to a few milliseconds, not the time a whole burst takes to insert.
        """
        for start in range(0, max(len(batch), 1), CHUNK_PAYLOADS):
            chunk = batch[start : start + CHUNK_PAYLOADS]
            extra = quarantine if start == 0 else []
            try:
                await loop.run_in_executor(self._writer, self._timed_batch, conn, chunk, extra, False)
            except Exception:
                rest = batch[start:]
                _LOGGER.exception("telemetry batch of %d payloads failed; retrying", len(rest))
                self._pending[:0] = rest
                self._quarantine[:0] = extra
                self._pending_values += sum(len(values) for _, _, values in rest)
                await asyncio.sleep(1.0)
                return
            self.rows_written += sum(len(values) for _, _, values in chunk)

    def _timed_batch(
        self,
        conn: sqlite3.Connection,
        batch: list[tuple[int, float, dict[str, Any]]],
        quarantine: list[tuple[float, str, str | None, str, bytes]],
        flush_state: bool,
    ) -> None:
        started = time.perf_counter()
        _write_batch(conn, batch, quarantine, self._state_docs, flush_state)
        self._held(time.perf_counter() - started)
        self._since_checkpoint += len(batch)
        if self._since_checkpoint >= CHECKPOINT_PAYLOADS:
            self._since_checkpoint = 0
            self._checkpoint(conn)

    def _timed_state(self, conn: sqlite3.Connection, doc: bytes) -> None:
        started = time.perf_counter()
        _write_batch(conn, [], [], [doc], True)
        self._held(time.perf_counter() - started)

    async def _write_loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        conn = self._require()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.batch_s):
                    await self._wake.wait()
            self._wake.clear()
            if self._pending or self._quarantine:
                batch, self._pending = self._pending, []
                quarantine, self._quarantine = self._quarantine, []
                self._pending_values = 0
                self._flushing = True
                started = time.perf_counter()
                try:
                    await self._write_chunks(loop, conn, batch, quarantine)
                finally:
                    self._flushing = False
                self.batches_written += 1
                self.last_batch_s = time.perf_counter() - started
            now = time.monotonic()
            if self._state_docs and (self._stopping or now - self._last_state_write >= self.state_interval_s):
                self._last_state_write = now
                docs, self._state_docs = self._state_docs, []
                for index, doc in enumerate(docs):
                    # One short transaction per batch document, so an alarm's commit
                    # can slip in between instead of waiting for all of them.
                    try:
                        await loop.run_in_executor(self._writer, self._timed_state, conn, doc)
                    except Exception:
                        _LOGGER.exception("writing the latest capability states failed; will try again")
                        self._state_docs[:0] = docs[index:]
                        break
            if time.monotonic() - self._last_checkpoint >= CHECKPOINT_EVERY_S:
                # registry, alerts, health batches: whatever else grew the WAL meanwhile
                await loop.run_in_executor(self._writer, self._checkpoint, conn)
            if self._stopping and not self._pending and not self._quarantine and not self._state_docs:
                return


def _write_batch(
    conn: sqlite3.Connection,
    batch: list[tuple[int, float, dict[str, Any]]],
    quarantine: list[tuple[float, str, str | None, str, bytes]],
    state_docs: list[bytes],
    flush_state: bool,
) -> None:
    """One transaction: the telemetry rows, and (every few seconds) the latest states.

    Upserting `capability_state` costs more than inserting the rows, so it is done
    for several batches at once: the batch documents since the last state write
    are joined (bytes only) and reduced to one upsert per capability in SQLite.
    `state_docs` belongs to the writer thread.
    """
    doc = orjson.dumps(batch) if batch else b""
    # The latest states are upserted later, one short transaction per document: so a large
    # batch is kept as several documents of STATE_PAYLOADS each (an alarm waits for one).
    added = (
        [orjson.dumps(batch[i : i + STATE_PAYLOADS]) for i in range(0, len(batch), STATE_PAYLOADS)]
        if len(batch) > STATE_PAYLOADS
        else ([doc] if batch else [])
    )
    state_docs.extend(added)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if batch:
            conn.execute(_INSERT_TELEMETRY, (doc,))
        if flush_state and state_docs:
            merged = b"[" + b",".join(d[1:-1] for d in state_docs) + b"]"
            conn.execute(_UPSERT_STATE, (merged,))
        if quarantine:
            conn.executemany(
                "INSERT INTO quarantine (ts, topic, device_id, reason, payload) VALUES (?, ?, ?, ?, ?)",
                quarantine,
            )
    except BaseException:
        conn.execute("ROLLBACK")
        del state_docs[len(state_docs) - len(added) :]
        raise
    conn.execute("COMMIT")
    if flush_state:
        state_docs.clear()
