"""The alarm on disk: `alarm_panels`, `alarm_settings`, `alarm_pins`, `alarm_events` (see migrations.py).

Every write is one committed transaction through the gateway's store, so a
panel's new state and the audit record of who caused it land together, before
anyone is told. `alarm_events` is append-only: the audit trail of arming,
disarming, bypasses, PIN changes, wrong codes and lockouts.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlite_utils

from linli.gateway.store import Store
from linli.services.security.panel import Panel
from linli.services.security.settings import HouseholdSettings


@dataclass(slots=True, kw_only=True)
class AuditEvent:
    """One privileged action or alarm transition, with who did it."""

    household_id: str
    ts: float
    action: str
    actor: str | None
    state: str
    detail: dict[str, Any] = field(default_factory=dict)

    def row(self) -> tuple[Any, ...]:
        return (
            self.household_id,
            self.ts,
            self.action,
            self.actor,
            self.state,
            orjson.dumps(self.detail).decode(),
        )


@dataclass(slots=True, kw_only=True)
class Loaded:
    panels: list[Panel]
    settings: dict[str, HouseholdSettings]
    pins: dict[tuple[str, str], str]  # (household, user) → argon2 hash


_UPSERT_PANEL = """
    INSERT INTO alarm_panels (household_id, state, mode, since, deadline, data) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (household_id) DO UPDATE SET state = excluded.state, mode = excluded.mode,
        since = excluded.since, deadline = excluded.deadline, data = excluded.data
"""
_INSERT_EVENT = (
    "INSERT INTO alarm_events (household_id, ts, action, actor, state, detail) VALUES (?, ?, ?, ?, ?, ?)"
)


def _panel_row(panel: Panel) -> tuple[Any, ...]:
    return (
        panel.household_id,
        panel.state.value,
        panel.mode.value if panel.mode else None,
        panel.since,
        panel.deadline,
        orjson.dumps(panel.as_data()).decode(),
    )


class SecurityStore:
    """Reads and writes the alarm tables through the gateway's store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def async_load(self) -> Loaded:
        def read(conn: sqlite3.Connection) -> tuple[list[Any], list[Any], list[Any]]:
            return (
                conn.execute(
                    "SELECT household_id, state, mode, since, deadline, data FROM alarm_panels"
                ).fetchall(),
                conn.execute("SELECT household_id, settings FROM alarm_settings").fetchall(),
                conn.execute("SELECT household_id, user_id, hash FROM alarm_pins").fetchall(),
            )

        panels, settings, pins = await self._store.async_read(read)
        return Loaded(
            panels=[
                Panel.from_row(hid, state, mode, since, deadline, orjson.loads(data))
                for hid, state, mode, since, deadline, data in panels
            ],
            settings={hid: HouseholdSettings.from_dict(orjson.loads(text)) for hid, text in settings},
            pins={(hid, user): digest for hid, user, digest in pins},
        )

    async def async_save(self, panel: Panel, *events: AuditEvent) -> None:
        """The panel's state and the audit events that explain it, in one transaction."""
        row = _panel_row(panel)
        rows = [e.row() for e in events]

        def write(db: sqlite_utils.Database) -> None:
            db.conn.execute(_UPSERT_PANEL, row)
            if rows:
                db.conn.executemany(_INSERT_EVENT, rows)

        await self._store.async_write(write)

    async def async_save_settings(
        self, household_id: str, settings: HouseholdSettings, event: AuditEvent
    ) -> None:
        text = orjson.dumps(settings.as_dict()).decode()

        def write(db: sqlite_utils.Database) -> None:
            db.conn.execute(
                "INSERT INTO alarm_settings (household_id, settings) VALUES (?, ?) "
                "ON CONFLICT (household_id) DO UPDATE SET settings = excluded.settings",
                (household_id, text),
            )
            db.conn.execute(_INSERT_EVENT, event.row())

        await self._store.async_write(write)

    async def async_save_pin(
        self, household_id: str, user: str, digest: str | None, event: AuditEvent | None
    ) -> None:
        """Store (or with `digest=None` remove) a user's PIN hash."""

        def write(db: sqlite_utils.Database) -> None:
            if digest is None:
                db.conn.execute(
                    "DELETE FROM alarm_pins WHERE household_id = ? AND user_id = ?", (household_id, user)
                )
            else:
                db.conn.execute(
                    "INSERT INTO alarm_pins (household_id, user_id, hash, set_at, set_by) "
                    "VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (household_id, user_id) DO UPDATE SET hash = excluded.hash, "
                    "set_at = excluded.set_at, set_by = excluded.set_by",
                    (household_id, user, digest, event.ts if event else 0.0, event.actor if event else None),
                )
            if event is not None:
                db.conn.execute(_INSERT_EVENT, event.row())

        await self._store.async_write(write)

    async def async_events(self, household_id: str, limit: int) -> list[dict[str, Any]]:
        """The household's audit trail, newest first."""
        rows = await self._store.async_read(
            lambda conn: conn.execute(
                "SELECT ts, action, actor, state, detail FROM alarm_events WHERE household_id = ? "
                "ORDER BY id DESC LIMIT ?",
                (household_id, limit),
            ).fetchall()
        )
        return [
            {"ts": ts, "action": action, "actor": actor, "state": state, "detail": orjson.loads(detail)}
            for ts, action, actor, state, detail in rows
        ]
