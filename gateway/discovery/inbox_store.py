"""The inbox on disk: the `inbox` and `inbox_decisions` tables (store schema, see migrations.py).

Items are upserted whole (a JSON `data` column beside the columns the portal
filters on); decisions are appended and never changed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson
import sqlite_utils

from linli.gateway.discovery.model import Decision, InboxItem
from linli.gateway.store import Store

_UPSERT = """
    INSERT INTO inbox (id, status, first_seen, last_seen, device_id, data) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET status = excluded.status, last_seen = excluded.last_seen,
        device_id = excluded.device_id, data = excluded.data
"""
_DECISION = "INSERT INTO inbox_decisions (item_id, ts, action, by, detail) VALUES (?, ?, ?, ?, ?)"

#: An extra statement to run in the same transaction (the registry's firmware column).
Statement = tuple[str, tuple[object, ...]]


def _row(item: InboxItem) -> tuple[object, ...]:
    return (
        item.id,
        item.status.value,
        item.first_seen,
        item.last_seen,
        item.device_id,
        orjson.dumps(item.to_data()).decode(),
    )


class InboxStore:
    """Reads and writes the inbox tables through the gateway's store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def async_load(self) -> list[InboxItem]:
        def read(conn: sqlite3.Connection) -> list[tuple[str, str, float, float, str | None, str]]:
            return conn.execute(
                "SELECT id, status, first_seen, last_seen, device_id, data FROM inbox"
            ).fetchall()

        rows = await self._store.async_read(read)
        return [
            InboxItem.from_row(item_id, status, first, last, device_id, orjson.loads(data))
            for item_id, status, first, last, device_id, data in rows
        ]

    async def async_save(
        self,
        items: Sequence[InboxItem],
        decisions: Sequence[Decision] = (),
        extra: Sequence[Statement] = (),
    ) -> None:
        """Items, their decisions and any extra statements, in one committed transaction."""
        rows = [_row(item) for item in items]
        decision_rows = [
            (d.item_id, d.ts, d.action, d.by, orjson.dumps(d.detail).decode()) for d in decisions
        ]

        def write(db: sqlite_utils.Database) -> None:
            conn = db.conn
            if rows:
                conn.executemany(_UPSERT, rows)
            if decision_rows:
                conn.executemany(_DECISION, decision_rows)
            for sql, params in extra:
                conn.execute(sql, params)

        await self._store.async_write(write)

    async def async_decisions(self, item_id: str) -> list[Decision]:
        def read(conn: sqlite3.Connection) -> list[tuple[str, float, str, str, str]]:
            return conn.execute(
                "SELECT item_id, ts, action, by, detail FROM inbox_decisions WHERE item_id = ? ORDER BY id",
                (item_id,),
            ).fetchall()

        return [
            Decision(item_id=i, ts=ts, action=action, by=by, detail=orjson.loads(detail))
            for i, ts, action, by, detail in await self._store.async_read(read)
        ]
