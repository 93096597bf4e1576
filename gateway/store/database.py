"""Opening the SQLite file the way every part of Linli expects it."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600


def make_private(path: Path) -> None:
    """Create the database's folder (0700) and file (0600), and tighten them if they exist.

    The database holds personal data (names, vitals, alarms): only the gateway's user may
    read it. SQLite gives its WAL and SHM files the database file's own mode, so a 0600
    database keeps them private too; existing ones from an older Linli are tightened here.
    Blocking: call it from a worker thread when the event loop runs.
    """
    folder = path.parent
    folder.mkdir(mode=_PRIVATE_DIR, parents=True, exist_ok=True)
    if stat.S_IMODE(folder.stat().st_mode) & 0o077:
        folder.chmod(_PRIVATE_DIR)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, _PRIVATE_FILE))
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if stat.S_IMODE(candidate.stat().st_mode) & 0o077:
                candidate.chmod(_PRIVATE_FILE)
        except FileNotFoundError:
            continue


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
