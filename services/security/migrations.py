"""The household alarm's tables (owner "security"): panels, settings, PIN hashes and the audit trail.

Run by the gateway before the component starts (gateway/store/migrations.py); `released_as`
is the global schema version each step shipped as before every owner kept its own list.
Never edit a released migration; add the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import sqlite_utils

from linli.gateway.store.migrations import Migration, execute_script


def _security(db: sqlite_utils.Database) -> None:
    # The household alarm: each panel's state with wall-clock deadlines (an exit or
    # entry delay resumes after a restart), its settings, per-user PIN hashes (argon2,
    # never the PIN), and the append-only audit trail of arming, disarming, bypasses,
    # PIN changes, wrong codes and lockouts, each with who.
    execute_script(
        db,
        """
        CREATE TABLE alarm_panels (
            household_id TEXT PRIMARY KEY REFERENCES households(id),
            state TEXT NOT NULL, mode TEXT, since REAL NOT NULL, deadline REAL,
            data TEXT NOT NULL DEFAULT '{}') WITHOUT ROWID;
        CREATE TABLE alarm_settings (
            household_id TEXT PRIMARY KEY REFERENCES households(id),
            settings TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE alarm_pins (
            household_id TEXT NOT NULL REFERENCES households(id), user_id TEXT NOT NULL,
            hash TEXT NOT NULL, set_at REAL NOT NULL, set_by TEXT,
            PRIMARY KEY (household_id, user_id)) WITHOUT ROWID;
        CREATE TABLE alarm_events (
            id INTEGER PRIMARY KEY, household_id TEXT NOT NULL, ts REAL NOT NULL,
            action TEXT NOT NULL, actor TEXT, state TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}');
        CREATE INDEX alarm_events_household ON alarm_events(household_id, id)
        """,
    )


MIGRATIONS: Final[Sequence[Migration]] = (Migration(_security, released_as=8),)
