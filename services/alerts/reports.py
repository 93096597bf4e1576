"""How the alert engine's tables answer the uplink's reports (gateway/uplink/provisions.py)."""

from __future__ import annotations

import sqlite3


def open_by_severity(conn: sqlite3.Connection) -> dict[str, int]:
    """severity → alerts not yet resolved."""
    rows = conn.execute("SELECT severity, count(*) FROM alerts WHERE state != 'resolved' GROUP BY severity")
    return {str(severity): int(count) for severity, count in rows.fetchall()}


def raised_by_kind(conn: sqlite3.Connection, since: float, until: float) -> dict[str, int]:
    """kind → alerts raised in [since, until)."""
    rows = conn.execute(
        "SELECT a.kind, count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert_id "
        "WHERE e.action = 'raised' AND e.ts >= ? AND e.ts < ? GROUP BY a.kind",
        (since, until),
    )
    return {str(kind): int(count) for kind, count in rows.fetchall()}
