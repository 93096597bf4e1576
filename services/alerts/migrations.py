"""The alert engine's tables (owner "alerts"): alerts, their timelines, deliveries and escalation policies.

Run by the gateway before the component starts (gateway/store/migrations.py); `released_as`
is the global schema version each step shipped as before every owner kept its own list.
Never edit a released migration; add the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import sqlite_utils

from linli.gateway.store.migrations import Migration, execute_script


def _alerts(db: sqlite_utils.Database) -> None:
    execute_script(
        db,
        """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY, kind TEXT NOT NULL, severity TEXT NOT NULL,
            household_id TEXT NOT NULL, resident TEXT, title TEXT NOT NULL, detail TEXT NOT NULL,
            dedup_key TEXT, count INTEGER NOT NULL DEFAULT 1, state TEXT NOT NULL,
            raised_at REAL NOT NULL, last_seen_at REAL NOT NULL,
            step INTEGER NOT NULL DEFAULT -1, next_step_at REAL,
            acknowledged_at REAL, acknowledged_by TEXT,
            resolved_at REAL, resolved_by TEXT, resolution_note TEXT,
            data TEXT NOT NULL DEFAULT '{}');
        CREATE INDEX alerts_state ON alerts(state);
        CREATE INDEX alerts_household ON alerts(household_id, raised_at);
        CREATE TABLE alert_events (
            id INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL REFERENCES alerts(id),
            ts REAL NOT NULL, action TEXT NOT NULL, actor TEXT, step INTEGER,
            channel TEXT, audience TEXT, outcome TEXT, detail TEXT);
        CREATE INDEX alert_events_alert ON alert_events(alert_id, ts);
        CREATE TABLE alert_deliveries (
            alert_id INTEGER NOT NULL REFERENCES alerts(id), step INTEGER NOT NULL,
            channel TEXT NOT NULL, outcome TEXT NOT NULL, attempts INTEGER NOT NULL,
            ts REAL NOT NULL,
            PRIMARY KEY (alert_id, step, channel)) WITHOUT ROWID;
        CREATE TABLE alert_policies (
            household_id TEXT NOT NULL, kind TEXT NOT NULL, policy TEXT NOT NULL,
            PRIMARY KEY (household_id, kind)) WITHOUT ROWID
        """,
    )


def _event_contexts(db: sqlite_utils.Database) -> None:
    # Each timeline row's context id and its parent's: the chain from a button press to a
    # TV overlay (`AlertEngine.async_trace`, `GET /api/v1/alerts/{id}`'s `trace`).
    execute_script(
        db,
        """
        ALTER TABLE alert_events ADD COLUMN context_id INTEGER;
        ALTER TABLE alert_events ADD COLUMN parent_id INTEGER
        """,
    )


MIGRATIONS: Final[Sequence[Migration]] = (Migration(_alerts, released_as=3), Migration(_event_contexts))
