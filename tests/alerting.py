"""A delivery channel for tests: records what each audience was shown, like a screen would."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from linli.gateway.context import Context
from linli.gateway.notify import Audience, Delivery, Outcome
from linli.gateway.store.journal import journal_path


class RecordingChannel:
    """Delivers to a list; can be told to fail, and checks that alerts are on disk first.

    On disk means in the database file or, for a critical alarm the writer has not copied
    yet, in the alarm journal beside it (`linli-alarms.db`): both survive a power cut.
    """

    def __init__(self, name: str = "screen", db: Path | None = None) -> None:
        self.name = name
        self.db = db
        self.received: list[tuple[int, Audience, str]] = []
        self.contexts: list[Context] = []
        self.fail = False
        self.durable_before_delivery: list[bool] = []

    def _on_disk(self, alert_id: int) -> bool:
        assert self.db is not None
        with sqlite3.connect(self.db) as conn:
            if conn.execute("SELECT id FROM alerts WHERE id = ?", (alert_id,)).fetchone():
                return True
        journal = journal_path(self.db)
        if not journal.exists():
            return False
        with sqlite3.connect(journal) as conn:
            docs = conn.execute("SELECT doc FROM entries").fetchall()
        return any(str(alert_id).encode() in bytes(doc) for (doc,) in docs)

    async def async_deliver(self, alert: dict[str, Any], audience: Audience, *, context: Context) -> Delivery:
        if self.db is not None:
            self.durable_before_delivery.append(self._on_disk(alert["id"]))
        if self.fail:
            raise ConnectionError("screen unreachable")
        self.received.append((alert["id"], audience, alert["state"]))
        self.contexts.append(context)
        return Delivery(outcome=Outcome.DELIVERED)

    def audiences(self, alert_id: int) -> list[Audience]:
        return [audience for aid, audience, _ in self.received if aid == alert_id]
