"""The discovery inbox's tables (owner "discovery"): discovered devices and the decisions about them.

Run by the gateway before the component starts (gateway/store/migrations.py); `released_as`
is the global schema version each step shipped as before every owner kept its own list.
Never edit a released migration; add the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import sqlite_utils

from linli.gateway.store.migrations import Migration, execute_script


def _inbox(db: sqlite_utils.Database) -> None:
    # The discovery inbox: one row per discovered device (merged across sources),
    # and every decision about it with who took it (append-only).
    execute_script(
        db,
        """
        CREATE TABLE inbox (
            id TEXT PRIMARY KEY, status TEXT NOT NULL,
            first_seen REAL NOT NULL, last_seen REAL NOT NULL,
            device_id TEXT, data TEXT NOT NULL) WITHOUT ROWID;
        CREATE INDEX inbox_status ON inbox(status);
        CREATE TABLE inbox_decisions (
            id INTEGER PRIMARY KEY, item_id TEXT NOT NULL REFERENCES inbox(id),
            ts REAL NOT NULL, action TEXT NOT NULL, by TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}');
        CREATE INDEX inbox_decisions_item ON inbox_decisions(item_id, ts)
        """,
    )


MIGRATIONS: Final[Sequence[Migration]] = (Migration(_inbox, released_as=6),)
