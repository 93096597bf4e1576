"""The regional uplink's tables (owner "uplink"): the outbox, the announcements seen, its small state.

Run by the gateway before the component starts (gateway/store/migrations.py); `released_as`
is the global schema version each step shipped as before every owner kept its own list.
Never edit a released migration; add the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import sqlite_utils

from linli.gateway.store.migrations import Migration, execute_script


def _uplink(db: sqlite_utils.Database) -> None:
    # The regional uplink (gateway/uplink/): the transactional outbox — `seq` is the
    # delivery order (AUTOINCREMENT: never reused, immune to wall-clock steps), `id` the
    # event's sortable unique id, `class` what may be dropped when the bound is hit
    # (0 never, 1 summaries, 2 rollups and superseded snapshots first), `key` which
    # rows a newer one supersedes; the region's announcements seen (replay refusal);
    # and small uplink state (clock offset to the region, drop counters).
    execute_script(
        db,
        """
        CREATE TABLE uplink_outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, id INTEGER NOT NULL UNIQUE,
            kind TEXT NOT NULL, class INTEGER NOT NULL, key TEXT, ts REAL NOT NULL,
            payload BLOB NOT NULL);
        CREATE INDEX uplink_outbox_class ON uplink_outbox(class, key, seq);
        CREATE TABLE uplink_announcements (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, received REAL NOT NULL,
            issued_at REAL NOT NULL, expires_at REAL NOT NULL, payload TEXT NOT NULL,
            tvs_shown INTEGER NOT NULL DEFAULT 0, tvs_total INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
        CREATE TABLE uplink_state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID
        """,
    )


MIGRATIONS: Final[Sequence[Migration]] = (Migration(_uplink, released_as=12),)
