"""Schema migrations: each owner's tables, and the ledger of how far each owner's went.

The core and every component that keeps tables bring their own list of migrations
(`services/alerts/migrations.py`, …); the core's own (registry, telemetry, retention,
residents, adapter storage, accounts, MQTT clients) are the `MIGRATIONS` below, owner
"core". (The portal's announcements and alert assignments are here too for now: the portal
is also mounted without its component, `create_app` in tests, where no migration would run.)
The ledger table `schema_versions` holds, per owner, how many of its migrations the file
has: the core's run when the store starts, a component's just before it starts
(`Store.async_migrate`), so a component that is not configured leaves no tables behind.
Each migration runs in one transaction with its ledger row; never edit a released
migration, add the next one.

Before the ledger, one global list held every owner's tables and `PRAGMA user_version`
(1..15) said how far a file was. Each migration released then says which global version
it was (`released_as`): on such a file the ledger starts every owner at its migrations
released up to that version, so nothing runs twice. `PRAGMA user_version` then becomes
LEDGER_MARK + that version (100 for a file begun with the ledger): the global version is
remembered for components configured later, and a Linli from before the ledger refuses
the file ("version 115, this Linli knows up to 15: upgrade Linli") instead of running
its steps over tables that exist.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import sqlite_utils

CORE: Final = "core"  # the owner of the gateway's own tables
LEGACY_LATEST: Final = 15  # the last version of the one global list (PRAGMA user_version 1..15)
LEDGER_MARK: Final = 100  # user_version = LEDGER_MARK + the global version, once the ledger keeps versions
_LEDGER: Final = "schema_versions"


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of an owner's schema, run in one transaction.

    `released_as` is the global schema version the step shipped as before each owner kept
    its own (None for a step added since): it says whether a file made then has it already.
    """

    apply: Callable[[sqlite_utils.Database], None]
    released_as: int | None = field(default=None, kw_only=True)


class SchemaTooNewError(RuntimeError):
    """The file was migrated by a newer Linli than this one."""


def execute_script(db: sqlite_utils.Database, script: str) -> None:
    """Run `;`-separated statements inside the migration's transaction.

    Not executescript(): it commits first, which would break the migration's transaction.
    """
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


# -- the core's own tables --------------------------------------------------------------------------------


def _registry_and_telemetry(db: sqlite_utils.Database) -> None:
    execute_script(
        db,
        """
        CREATE TABLE communities (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, created REAL NOT NULL);
        CREATE TABLE buildings (
            id TEXT PRIMARY KEY, community_id TEXT NOT NULL REFERENCES communities(id),
            name TEXT NOT NULL);
        CREATE TABLE units (
            id TEXT PRIMARY KEY, building_id TEXT NOT NULL REFERENCES buildings(id),
            name TEXT NOT NULL);
        CREATE TABLE households (
            id TEXT PRIMARY KEY, unit_id TEXT NOT NULL REFERENCES units(id),
            name TEXT NOT NULL, created REAL NOT NULL);
        CREATE TABLE devices (
            row INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            household_id TEXT NOT NULL REFERENCES households(id),
            name TEXT NOT NULL, room TEXT, profile_id TEXT NOT NULL, firmware TEXT,
            topic TEXT NOT NULL UNIQUE, unique_id TEXT, created REAL NOT NULL,
            available INTEGER NOT NULL DEFAULT 0, last_seen REAL);
        CREATE INDEX devices_household ON devices(household_id);
        CREATE TABLE capability_state (
            device_row INTEGER NOT NULL, capability TEXT NOT NULL, value TEXT,
            last_changed REAL NOT NULL, last_reported REAL NOT NULL,
            PRIMARY KEY (device_row, capability)) WITHOUT ROWID;
        CREATE TABLE telemetry (
            device_row INTEGER NOT NULL, capability TEXT NOT NULL, ts REAL NOT NULL,
            num REAL, value TEXT);
        CREATE INDEX telemetry_series ON telemetry(device_row, capability, ts);
        """,
    )


def _retention_and_quarantine(db: sqlite_utils.Database) -> None:
    execute_script(
        db,
        """
        CREATE TABLE telemetry_hourly (
            device_row INTEGER NOT NULL, capability TEXT NOT NULL, hour INTEGER NOT NULL,
            count INTEGER NOT NULL, min REAL, max REAL, sum REAL,
            PRIMARY KEY (device_row, capability, hour)) WITHOUT ROWID;
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY, ts REAL NOT NULL, topic TEXT NOT NULL,
            device_id TEXT, reason TEXT NOT NULL, payload BLOB);
        CREATE INDEX quarantine_ts ON quarantine(ts);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        """,
    )


def _device_rows_never_reused(db: sqlite_utils.Database) -> None:
    # Without AUTOINCREMENT SQLite hands a removed device's row number to the next
    # device, which would then inherit the old device's telemetry: never reuse one.
    execute_script(
        db,
        """
        CREATE TABLE devices_v4 (
            row INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            household_id TEXT NOT NULL REFERENCES households(id),
            name TEXT NOT NULL, room TEXT, profile_id TEXT NOT NULL, firmware TEXT,
            topic TEXT NOT NULL UNIQUE, unique_id TEXT, created REAL NOT NULL,
            available INTEGER NOT NULL DEFAULT 0, last_seen REAL);
        INSERT INTO devices_v4 SELECT * FROM devices;
        DROP TABLE devices;
        ALTER TABLE devices_v4 RENAME TO devices;
        CREATE INDEX devices_household ON devices(household_id);
        DELETE FROM sqlite_sequence WHERE name = 'devices';
        INSERT INTO sqlite_sequence (name, seq) SELECT 'devices', max(
            coalesce((SELECT max(row) FROM devices), 0),
            coalesce((SELECT max(device_row) FROM telemetry), 0),
            coalesce((SELECT max(device_row) FROM telemetry_hourly), 0),
            coalesce((SELECT max(device_row) FROM capability_state), 0))
        """,
    )


def _residents(db: sqlite_utils.Database) -> None:
    # The people of a household, so that care and health work per person; a device
    # used by one person (a blood-pressure cuff, a pendant) can be assigned to them.
    execute_script(
        db,
        """
        CREATE TABLE residents (
            id TEXT PRIMARY KEY, household_id TEXT NOT NULL REFERENCES households(id),
            name TEXT NOT NULL, created REAL NOT NULL, data TEXT NOT NULL DEFAULT '{}');
        CREATE INDEX residents_household ON residents(household_id);
        ALTER TABLE devices ADD COLUMN resident_id TEXT REFERENCES residents(id)
        """,
    )


def _adapter_storage(db: sqlite_utils.Database) -> None:
    # Each adapter's own storage namespace (gateway/plugins/storage.py): JSON values by
    # key, e.g. where a set-top box is and how to wake it.
    execute_script(
        db,
        """
        CREATE TABLE adapter_storage (
            namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            updated REAL NOT NULL, PRIMARY KEY (namespace, key)) WITHOUT ROWID
        """,
    )


def _accounts_and_announcements(db: sqlite_utils.Database) -> None:
    # The people who sign in (argon2 password hashes, never a password), their tokens
    # (sessions, API tokens, provider keys, the first-run setup link: SHA-256 digests,
    # never the token), the append-only audit log (UPDATE and DELETE refused), the
    # community's announcements, and who an alert was assigned to.
    execute_script(
        db,
        """
        CREATE TABLE users (
            id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
            household_id TEXT REFERENCES households(id) ON DELETE SET NULL,
            display_name TEXT NOT NULL, locale TEXT NOT NULL DEFAULT 'zh-CN',
            created REAL NOT NULL, password_hash TEXT, disabled INTEGER NOT NULL DEFAULT 0,
            failed_logins INTEGER NOT NULL DEFAULT 0, locked_until REAL);
        CREATE INDEX users_household ON users(household_id);
        CREATE TABLE tokens (
            id TEXT PRIMARY KEY, user_id TEXT, kind TEXT NOT NULL, name TEXT NOT NULL,
            created REAL NOT NULL, expires REAL, revoked REAL, csrf TEXT,
            scope TEXT NOT NULL DEFAULT '{}', digest TEXT NOT NULL UNIQUE);
        CREATE INDEX tokens_user ON tokens(user_id);
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, actor TEXT NOT NULL, role TEXT,
            action TEXT NOT NULL, household_id TEXT, target TEXT, outcome TEXT NOT NULL,
            ip TEXT, detail TEXT NOT NULL DEFAULT '{}');
        CREATE INDEX audit_household ON audit(household_id, id);
        CREATE INDEX audit_action ON audit(action, id);
        CREATE TABLE announcements (
            id TEXT PRIMARY KEY, scope TEXT NOT NULL, scope_id TEXT, title TEXT NOT NULL,
            body TEXT NOT NULL, starts REAL NOT NULL, expires REAL, created REAL NOT NULL,
            by TEXT NOT NULL, withdrawn REAL);
        CREATE INDEX announcements_starts ON announcements(starts);
        CREATE TABLE alert_assignments (
            alert_id INTEGER PRIMARY KEY, assignee TEXT NOT NULL, by TEXT NOT NULL, ts REAL NOT NULL)
        """,
    )
    # One statement each: a trigger body has its own semicolons.
    for verb in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER audit_no_{verb.lower()} BEFORE {verb} ON audit "
            "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        )


def _regional_announcements(db: sqlite_utils.Database) -> None:
    # The region's verified announcements and emergency broadcasts join the portal's
    # own list, so phones and the TV page show them like a manager's: `source` says
    # where one came from, `kind` whether it is an emergency.
    execute_script(
        db,
        """
        ALTER TABLE announcements ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
        ALTER TABLE announcements ADD COLUMN kind TEXT NOT NULL DEFAULT 'announcement'
        """,
    )


def _mqtt_clients(db: sqlite_utils.Database) -> None:
    # The device plane's identities: one row per device or bridge credential. Only the
    # broker's own hash of the password is kept (Mosquitto verifies it, not Linli).
    execute_script(
        db,
        """
        CREATE TABLE mqtt_clients (
            username TEXT PRIMARY KEY, kind TEXT NOT NULL, household_id TEXT NOT NULL,
            device_id TEXT, base_topic TEXT, name TEXT,
            publish TEXT NOT NULL, subscribe TEXT NOT NULL,
            password_hash TEXT NOT NULL, created REAL NOT NULL);
        CREATE INDEX mqtt_clients_household ON mqtt_clients(household_id);
        CREATE UNIQUE INDEX mqtt_clients_device ON mqtt_clients(device_id)
        """,
    )


MIGRATIONS: Final[Sequence[Migration]] = (
    Migration(_registry_and_telemetry, released_as=1),
    Migration(_retention_and_quarantine, released_as=2),
    Migration(_device_rows_never_reused, released_as=4),
    Migration(_residents, released_as=5),
    Migration(_adapter_storage, released_as=10),
    Migration(_accounts_and_announcements, released_as=11),
    Migration(_regional_announcements, released_as=14),
    Migration(_mqtt_clients, released_as=15),
)
LATEST: Final = len(MIGRATIONS)


# -- the ledger -------------------------------------------------------------------------------------------


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _has_ledger(conn: sqlite3.Connection) -> bool:
    return table_exists(conn, _LEDGER)


def table_exists(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the file has table `name` (a component's tables exist only once it has been configured)."""
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        is not None
    )


def _open_ledger(conn: sqlite3.Connection) -> int:
    """The global version the file had before the ledger (creating the ledger the first time).

    Call inside the migration's transaction: two processes opening one file (the gateway and
    `linli user add`) then cannot both create it.
    """
    version, ledger = _user_version(conn), _has_ledger(conn)
    if ledger and LEDGER_MARK <= version <= LEDGER_MARK + LEGACY_LATEST:
        return version - LEDGER_MARK
    if not ledger and version <= LEGACY_LATEST:
        conn.execute(
            f"CREATE TABLE {_LEDGER} (owner TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID"
        )
        conn.execute(f"PRAGMA user_version = {LEDGER_MARK + version}")
        return version
    if ledger and version < LEDGER_MARK:  # not newer but foreign: nothing says what the file holds
        raise SchemaTooNewError(
            f"database has a schema ledger but schema version {version}: it was changed by "
            "something other than Linli; restore a backup"
        )
    raise SchemaTooNewError(
        f"database schema is version {version}, this Linli knows up to {LEDGER_MARK + LEGACY_LATEST}: "
        "upgrade Linli or restore a backup"
    )


def _owner_version(conn: sqlite3.Connection, owner: str, migrations: Sequence[Migration], legacy: int) -> int:
    row = conn.execute(f"SELECT version FROM {_LEDGER} WHERE owner = ?", (owner,)).fetchone()
    if row is not None:
        return int(row[0])
    # First time this owner is seen: what the global list had already made of its tables.
    version = sum(1 for m in migrations if m.released_as is not None and m.released_as <= legacy)
    conn.execute(f"INSERT INTO {_LEDGER} (owner, version) VALUES (?, ?)", (owner, version))
    return version


def schema_version(conn: sqlite3.Connection, owner: str = CORE) -> int:
    """How many of `owner`'s migrations the file has (0: none yet, or a file from before the ledger)."""
    if not _has_ledger(conn):
        return 0
    row = conn.execute(f"SELECT version FROM {_LEDGER} WHERE owner = ?", (owner,)).fetchone()
    return 0 if row is None else int(row[0])


def migrate(
    conn: sqlite3.Connection,
    owner: str = CORE,
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    target: int | None = None,
) -> list[int]:
    """Bring `owner`'s tables to `target` (all of `migrations`); returns the versions applied.

    Blocking: on a running gateway call it through `Store.async_migrate` (the writer thread).
    Each migration commits with its ledger row, or not at all: a failing one leaves the
    owner at the version before it.
    """
    for index, step in enumerate(migrations):
        if not isinstance(step, Migration):
            raise TypeError(
                f"migrations of {owner}: [{index}] is {step!r}, not a Migration(step, released_as=…)"
            )
    known = len(migrations)
    target = known if target is None else target
    db = sqlite_utils.Database(conn)
    applied: list[int] = []
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = _owner_version(conn, owner, migrations, _open_ledger(conn))
            if current > known:
                raise SchemaTooNewError(
                    f"database schema of {owner} is version {current}, this Linli knows up to {known}: "
                    "upgrade Linli or restore a backup"
                )
            if current >= target:
                conn.execute("COMMIT")
                return applied
            migrations[current].apply(db)
            conn.execute(f"UPDATE {_LEDGER} SET version = ? WHERE owner = ?", (current + 1, owner))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(current + 1)
