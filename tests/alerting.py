"""A delivery channel for tests: records what each audience was shown, like a screen would."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from linli.gateway.notify import Audience, Delivery, Outcome


class RecordingChannel:
    """Delivers to a list; can be told to fail, and checks that alerts are on disk first."""

    def __init__(self, name: str = "screen", db: Path | None = None) -> None:
        self.name = name
        self.db = db
        self.received: list[tuple[int, Audience, str]] = []
        self.fail = False
        self.durable_before_delivery: list[bool] = []

    async def async_deliver(self, alert: dict[str, Any], audience: Audience) -> Delivery:
        if self.db is not None:
            with sqlite3.connect(self.db) as conn:
                row = conn.execute("SELECT id FROM alerts WHERE id = ?", (alert["id"],)).fetchone()
            self.durable_before_delivery.append(row is not None)
        if self.fail:
            raise ConnectionError("screen unreachable")
        self.received.append((alert["id"], audience, alert["state"]))
        return Delivery(outcome=Outcome.DELIVERED)

    def audiences(self, alert_id: int) -> list[Audience]:
        return [audience for aid, audience, _ in self.received if aid == alert_id]
