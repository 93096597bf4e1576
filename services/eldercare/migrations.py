"""Elder care's tables (owner "eldercare"): settings, check-ins, reminders and the learned routine.

Run by the gateway before the component starts (gateway/store/migrations.py); `released_as`
is the global schema version each step shipped as before every owner kept its own list.
Never edit a released migration; add the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import sqlite_utils

from linli.gateway.store.migrations import Migration, execute_script


def _eldercare(db: sqlite_utils.Database) -> None:
    # Care settings per household, daily check-ins, and medication/appointment reminders
    # with the log of each due time (due, done, missed) and who confirmed it.
    execute_script(
        db,
        """
        CREATE TABLE eldercare_settings (
            household_id TEXT PRIMARY KEY REFERENCES households(id),
            settings TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE care_check_ins (
            household_id TEXT NOT NULL REFERENCES households(id), day TEXT NOT NULL,
            ts REAL NOT NULL, by TEXT NOT NULL, resident_id TEXT,
            PRIMARY KEY (household_id, day)) WITHOUT ROWID;
        CREATE TABLE care_reminders (
            id TEXT PRIMARY KEY, household_id TEXT NOT NULL REFERENCES households(id),
            resident_id TEXT, kind TEXT NOT NULL, title TEXT NOT NULL, times TEXT NOT NULL,
            window_min REAL NOT NULL, active INTEGER NOT NULL DEFAULT 1, created REAL NOT NULL);
        CREATE TABLE care_reminder_log (
            reminder_id TEXT NOT NULL REFERENCES care_reminders(id), due REAL NOT NULL,
            state TEXT NOT NULL, by TEXT, ts REAL NOT NULL,
            PRIMARY KEY (reminder_id, due)) WITHOUT ROWID
        """,
    )


def _care_routine(db: sqlite_utils.Database) -> None:
    # Elder care's learned routine: which quarter-hours of each local day saw activity
    # in a household (one row per active quarter-hour, nothing about what or who).
    execute_script(
        db,
        """
        CREATE TABLE care_activity (
            household_id TEXT NOT NULL REFERENCES households(id), day TEXT NOT NULL,
            bucket INTEGER NOT NULL, PRIMARY KEY (household_id, day, bucket)) WITHOUT ROWID
        """,
    )


MIGRATIONS: Final[Sequence[Migration]] = (
    Migration(_eldercare, released_as=9),
    Migration(_care_routine, released_as=13),
)
