"""Health's tables (owner "health"): readings per resident, refusals, thresholds and consent.

Run by the gateway before the component starts (gateway/store/migrations.py); `released_as`
is the global schema version each step shipped as before every owner kept its own list.
Never edit a released migration; add the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import sqlite_utils

from linli.gateway.store.migrations import Migration, execute_script


def _health(db: sqlite_utils.Database) -> None:
    # Health readings per resident (resident NULL: a shared device in a home of several,
    # "unattributed"), the readings refused with their reason, per-resident alert
    # thresholds, and the household's consent to share health data (append-only).
    execute_script(
        db,
        """
        CREATE TABLE health_readings (
            id INTEGER PRIMARY KEY, household_id TEXT NOT NULL, resident_id TEXT,
            attribution TEXT NOT NULL, kind TEXT NOT NULL, loinc TEXT NOT NULL,
            unit TEXT NOT NULL, value REAL, components TEXT, device_id TEXT NOT NULL,
            ts REAL NOT NULL, received REAL NOT NULL);
        CREATE INDEX health_readings_resident ON health_readings(resident_id, kind, ts);
        CREATE INDEX health_readings_household ON health_readings(household_id, ts);
        CREATE TABLE health_rejected (
            id INTEGER PRIMARY KEY, household_id TEXT NOT NULL, resident_id TEXT,
            kind TEXT NOT NULL, device_id TEXT NOT NULL, ts REAL NOT NULL,
            received REAL NOT NULL, value TEXT NOT NULL, code TEXT NOT NULL, reason TEXT NOT NULL);
        CREATE INDEX health_rejected_household ON health_rejected(household_id, received);
        CREATE TABLE health_thresholds (
            resident_id TEXT PRIMARY KEY, thresholds TEXT NOT NULL,
            updated_by TEXT NOT NULL, updated_at REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE health_consent (
            id INTEGER PRIMARY KEY, household_id TEXT NOT NULL, purpose TEXT NOT NULL,
            granted INTEGER NOT NULL, by TEXT NOT NULL, ts REAL NOT NULL,
            note TEXT NOT NULL DEFAULT '');
        CREATE INDEX health_consent_household ON health_consent(household_id, purpose, id)
        """,
    )


MIGRATIONS: Final[Sequence[Migration]] = (Migration(_health, released_as=7),)
