"""Each adapter's own storage namespace: JSON values by key, durable, invisible to other adapters.

Rows live in the `adapter_storage` table, keyed by (namespace, key); an adapter
only ever gets an `AdapterStorage` bound to its own id.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Final

import orjson
import sqlite_utils

from linli.gateway.store import Store

MAX_VALUE_BYTES: Final = 256 * 1024


class AdapterStorage:
    """Key → JSON value, for one adapter."""

    def __init__(self, store: Store, namespace: str) -> None:
        self._store = store
        self.namespace = namespace

    async def async_set(self, key: str, value: Any) -> None:
        """Write a value durably (returns after the commit)."""
        text = orjson.dumps(value).decode()
        if len(text) > MAX_VALUE_BYTES:
            raise ValueError(
                f"storage {self.namespace}/{key}: value of {len(text)} bytes is over {MAX_VALUE_BYTES}"
            )
        now = time.time()
        await self._store.async_write(
            lambda db: db.conn.execute(
                "INSERT INTO adapter_storage (namespace, key, value, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, "
                "updated = excluded.updated",
                (self.namespace, key, text, now),
            )
        )

    async def async_get(self, key: str, default: Any = None) -> Any:
        def read(conn: sqlite3.Connection) -> Any:
            return conn.execute(
                "SELECT value FROM adapter_storage WHERE namespace = ? AND key = ?", (self.namespace, key)
            ).fetchone()

        row = await self._store.async_read(read)
        return default if row is None else orjson.loads(row[0])

    async def async_items(self, prefix: str = "") -> dict[str, Any]:
        """Every key (starting with `prefix`) and its value."""

        def read(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            return conn.execute(
                "SELECT key, value FROM adapter_storage WHERE namespace = ? AND substr(key, 1, ?) = ? "
                "ORDER BY key",
                (self.namespace, len(prefix), prefix),
            ).fetchall()

        return {key: orjson.loads(value) for key, value in await self._store.async_read(read)}

    async def async_delete(self, key: str) -> None:
        def delete(db: sqlite_utils.Database) -> None:
            db.conn.execute(
                "DELETE FROM adapter_storage WHERE namespace = ? AND key = ?", (self.namespace, key)
            )

        await self._store.async_write(delete)
