"""The versioned schema. `PRAGMA user_version` holds the version a file is at.

Each migration moves a database from version N-1 to N inside one transaction.
Never edit a released migration; add the next one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Final

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]


def _run(db: sqlite_utils.Database, script: str) -> None:
    # Not executescript(): it commits first, which would break the migration's transaction.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _v1_registry_and_telemetry(db: sqlite_utils.Database) -> None:
    _run(
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


def _v2_retention_and_quarantine(db: sqlite_utils.Database) -> None:
    _run(
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


def _v3_alerts(db: sqlite_utils.Database) -> None:
    _run(
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


def _v4_device_rows_never_reused(db: sqlite_utils.Database) -> None:
    # Without AUTOINCREMENT SQLite hands a removed device's row number to the next
    # device, which would then inherit the old device's telemetry: never reuse one.
    _run(
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


def _v5_residents(db: sqlite_utils.Database) -> None:
    # The people of a household, so that care and health work per person; a device
    # used by one person (a blood-pressure cuff, a pendant) can be assigned to them.
    _run(
        db,
        """
        CREATE TABLE residents (
            id TEXT PRIMARY KEY, household_id TEXT NOT NULL REFERENCES households(id),
            name TEXT NOT NULL, created REAL NOT NULL, data TEXT NOT NULL DEFAULT '{}');
        CREATE INDEX residents_household ON residents(household_id);
        ALTER TABLE devices ADD COLUMN resident_id TEXT REFERENCES residents(id)
        """,
    )


def _v6_discovery_inbox(db: sqlite_utils.Database) -> None:
    # The discovery inbox: one row per discovered device (merged across sources),
    # and every decision about it with who took it (append-only).
    _run(
        db,
        """
        CREATE TABLE inbox (
            id TEXT PRIMARY KEY, status TEXT NOT NULL,
            first_seen REAL NOT NULL, last_seen REAL NOT NULL,
            device_id TEXT, data TEXT NOT NULL) WITHOUT ROWID;
        CREATE INDEX inbox_status ON inbox(status);
        CREATE TABLE inbox_decisions (
            id INTEGER PRIMARY KEY, item_id TEXT NOT NULL REFERENCES inbox(id),
            ts REAL NOT NULL, action TEXT NOT NULL, by TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}');
        CREATE INDEX inbox_decisions_item ON inbox_decisions(item_id, ts)
        """,
    )


def _v7_health(db: sqlite_utils.Database) -> None:
    # Health readings per resident (resident NULL: a shared device in a home of several,
    # "unattributed"), the readings refused with their reason, per-resident alert
    # thresholds, and the household's consent to share health data (append-only).
    _run(
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


def _v8_security(db: sqlite_utils.Database) -> None:
    # The household alarm: each panel's state with wall-clock deadlines (an exit or
    # entry delay resumes after a restart), its settings, per-user PIN hashes (argon2,
    # never the PIN), and the append-only audit trail of arming, disarming, bypasses,
    # PIN changes, wrong codes and lockouts, each with who.
    _run(
        db,
        """
        CREATE TABLE alarm_panels (
            household_id TEXT PRIMARY KEY REFERENCES households(id),
            state TEXT NOT NULL, mode TEXT, since REAL NOT NULL, deadline REAL,
            data TEXT NOT NULL DEFAULT '{}') WITHOUT ROWID;
        CREATE TABLE alarm_settings (
            household_id TEXT PRIMARY KEY REFERENCES households(id),
            settings TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE alarm_pins (
            household_id TEXT NOT NULL REFERENCES households(id), user_id TEXT NOT NULL,
            hash TEXT NOT NULL, set_at REAL NOT NULL, set_by TEXT,
            PRIMARY KEY (household_id, user_id)) WITHOUT ROWID;
        CREATE TABLE alarm_events (
            id INTEGER PRIMARY KEY, household_id TEXT NOT NULL, ts REAL NOT NULL,
            action TEXT NOT NULL, actor TEXT, state TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}');
        CREATE INDEX alarm_events_household ON alarm_events(household_id, id)
        """,
    )


def _v9_eldercare(db: sqlite_utils.Database) -> None:
    # Care settings per household, daily check-ins, and medication/appointment reminders
    # with the log of each due time (due, done, missed) and who confirmed it.
    _run(
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


def _v10_adapter_storage(db: sqlite_utils.Database) -> None:
    # Each adapter's own storage namespace (gateway/plugins/storage.py): JSON values by
    # key, e.g. where a set-top box is and how to wake it.
    _run(
        db,
        """
        CREATE TABLE adapter_storage (
            namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            updated REAL NOT NULL, PRIMARY KEY (namespace, key)) WITHOUT ROWID
        """,
    )


def _v11_portal_accounts(db: sqlite_utils.Database) -> None:
    # The people who sign in (argon2 password hashes, never a password), their tokens
    # (sessions, API tokens, provider keys, the first-run setup link: SHA-256 digests,
    # never the token), the append-only audit log (UPDATE and DELETE refused), the
    # community's announcements, and who an alert was assigned to.
    _run(
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


def _v12_uplink(db: sqlite_utils.Database) -> None:
    # The regional uplink (gateway/uplink/): the transactional outbox — `seq` is the
    # delivery order (AUTOINCREMENT: never reused, immune to wall-clock steps), `id` the
    # event's sortable unique id, `class` what may be dropped when the bound is hit
    # (0 never, 1 summaries, 2 rollups and superseded snapshots first), `key` which
    # rows a newer one supersedes; the region's announcements seen (replay refusal);
    # and small uplink state (clock offset to the region, drop counters).
    _run(
        db,
        """
        CREATE TABLE uplink_outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, id INTEGER NOT NULL UNIQUE,
            kind TEXT NOT NULL, class INTEGER NOT NULL, key TEXT, ts REAL NOT NULL,
            payload BLOB NOT NULL);
        CREATE INDEX uplink_outbox_class ON uplink_outbox(class, key, seq);
        CREATE TABLE uplink_announcements (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, received REAL NOT NULL,
            issued_at REAL NOT NULL, expires_at REAL NOT NULL, payload TEXT NOT NULL,
            tvs_shown INTEGER NOT NULL DEFAULT 0, tvs_total INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
        CREATE TABLE uplink_state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID
        """,
    )


def _v13_care_routine(db: sqlite_utils.Database) -> None:
    # Elder care's learned routine: which quarter-hours of each local day saw activity
    # in a household (one row per active quarter-hour, nothing about what or who).
    _run(
        db,
        """
        CREATE TABLE care_activity (
            household_id TEXT NOT NULL REFERENCES households(id), day TEXT NOT NULL,
            bucket INTEGER NOT NULL, PRIMARY KEY (household_id, day, bucket)) WITHOUT ROWID
        """,
    )


def _v14_regional_announcements(db: sqlite_utils.Database) -> None:
    # The region's verified announcements and emergency broadcasts join the portal's
    # own list, so phones and the TV page show them like a manager's: `source` says
    # where one came from, `kind` whether it is an emergency.
    _run(
        db,
        """
        ALTER TABLE announcements ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
        ALTER TABLE announcements ADD COLUMN kind TEXT NOT NULL DEFAULT 'announcement'
        """,
    )


def _v15_mqtt_clients(db: sqlite_utils.Database) -> None:
    # The device plane's identities: one row per device or bridge credential. Only the
    # broker's own hash of the password is kept (Mosquitto verifies it, not Linli).
    _run(
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


MIGRATIONS: Final[list[Migration]] = [
    _v1_registry_and_telemetry,
    _v2_retention_and_quarantine,
    _v3_alerts,
    _v4_device_rows_never_reused,
    _v5_residents,
    _v6_discovery_inbox,
    _v7_health,
    _v8_security,
    _v9_eldercare,
    _v10_adapter_storage,
    _v11_portal_accounts,
    _v12_uplink,
    _v13_care_routine,
    _v14_regional_announcements,
    _v15_mqtt_clients,
]
LATEST: Final = len(MIGRATIONS)


class SchemaTooNewError(RuntimeError):
    pass


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = LATEST) -> list[int]:
    """Bring the database to `target`; returns the versions applied."""
    current = schema_version(conn)
    if current > LATEST:
        raise SchemaTooNewError(
            f"database schema is version {current}, this Linli knows up to {LATEST}: "
            "upgrade Linli or restore a backup"
        )
    applied = []
    db = sqlite_utils.Database(conn)
    for version in range(current + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version - 1](db)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied
