"""Opening the SQLite file the way every part of Linli expects it."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in WAL mode with explicit transactions (`isolation_level=None`).

    synchronous=FULL: every commit is on disk before it returns, which is what
    "written durably before anyone is told" needs; telemetry commits are batched,
    so the fsync cost is paid a few times a second, not per message.
    """
    if readonly:
        # as_uri() percent-encodes, so a folder named "a#b" or "50%" is still this file.
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn
