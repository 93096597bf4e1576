"""Personal-information rights: export all of a household's data, and delete it for real.

Only a household admin exports (the export holds everything, the audit trail too) and
deletes. Deletion removes the household's telemetry, device states, health readings,
thresholds and consent records, alerts with their timelines and escalation policies,
check-ins, reminders, care settings, the alarm's PIN hashes, panel state and event
trail, announcements addressed to the household and the residents themselves; the
audit log's lines about the household lose their addresses, details and targets. It
keeps the household, its devices and its accounts (so the home keeps working; accounts
are removed one by one) and a line recording the deletion. Open alerts are resolved
first, so no service keeps escalating deleted data; an armed alarm must be disarmed first.

When the household itself is removed afterwards (`purge`, from the structure routes),
nothing that names it stays: its audit lines are kept under a pseudonym, without the
household's id, its accounts' names or addresses.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any, Final

import orjson

from linli.gateway import users
from linli.gateway.store import table_exists
from linli.gateway.users import Role
from linli.portal.api.announcements import ANNOUNCEMENTS
from linli.portal.api.errors import ApiError
from linli.portal.api.operations import Api, Call, obj, text
from linli.portal.auth.middleware import ACCOUNTS
from linli.services.alerts import ALERTS
from linli.services.eldercare import ELDERCARE
from linli.services.eldercare.inactivity import InactivitySettings
from linli.services.eldercare.service import CheckInSettings
from linli.services.health import HEALTH
from linli.services.security import SECURITY

_LOGGER = logging.getLogger(__name__)
EXPORT_TELEMETRY_ROWS: Final = 200_000
HOUSEHOLD_ROLE_NAMES: Final = (Role.RESIDENT.value, Role.HOUSEHOLD_ADMIN.value, Role.CARER.value)


def _rows(conn: Any, sql: str, params: tuple[Any, ...] | list[Any]) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _owned_rows(
    conn: Any, table: str, where: str, params: tuple[Any, ...] | list[Any]
) -> list[dict[str, Any]]:
    """`SELECT * FROM table WHERE where`: none where the table's component is not configured.

    A service's tables exist only on a gateway that runs it (gateway/store/migrations.py).
    """
    if not table_exists(conn, table):
        return []
    return _rows(conn, f"SELECT * FROM {table} WHERE {where}", params)


def collect(conn: Any, household_id: str) -> dict[str, Any]:
    """Everything stored about one household (read-only connection)."""
    device_rows = [
        r[0] for r in conn.execute("SELECT row FROM devices WHERE household_id = ?", (household_id,))
    ]
    marks = ",".join("?" * len(device_rows)) or "NULL"
    residents = _rows(
        conn, "SELECT id, name, created, data FROM residents WHERE household_id = ?", (household_id,)
    )
    resident_ids = [r["id"] for r in residents]
    rmarks = ",".join("?" * len(resident_ids)) or "NULL"
    alerts = _owned_rows(conn, "alerts", "household_id = ?", (household_id,))
    alert_ids = [a["id"] for a in alerts]
    amarks = ",".join("?" * len(alert_ids)) or "NULL"
    # the household's own people's addresses are theirs to export; the office's are not
    members = {r[0] for r in conn.execute("SELECT name FROM users WHERE household_id = ?", (household_id,))}
    data = {
        "household": _rows(conn, "SELECT * FROM households WHERE id = ?", (household_id,)),
        "residents": residents,
        "accounts": _rows(
            conn,
            "SELECT id, name, role, display_name, locale, created FROM users WHERE household_id = ?",
            (household_id,),
        ),
        "devices": _rows(conn, "SELECT * FROM devices WHERE household_id = ?", (household_id,)),
        "capability_state": _rows(
            conn, f"SELECT * FROM capability_state WHERE device_row IN ({marks})", device_rows
        ),
        "telemetry": _rows(
            conn,
            f"SELECT * FROM telemetry WHERE device_row IN ({marks}) "
            f"ORDER BY ts DESC LIMIT {EXPORT_TELEMETRY_ROWS}",
            device_rows,
        ),
        "telemetry_hourly": _rows(
            conn, f"SELECT * FROM telemetry_hourly WHERE device_row IN ({marks})", device_rows
        ),
        "health_readings": _owned_rows(conn, "health_readings", "household_id = ?", (household_id,)),
        "health_rejected": _owned_rows(conn, "health_rejected", "household_id = ?", (household_id,)),
        "health_thresholds": _owned_rows(
            conn, "health_thresholds", f"resident_id IN ({rmarks})", resident_ids
        ),
        "health_consent": _owned_rows(conn, "health_consent", "household_id = ?", (household_id,)),
        "alerts": alerts,
        "alert_events": _owned_rows(conn, "alert_events", f"alert_id IN ({amarks})", alert_ids),
        "alarm_events": _owned_rows(conn, "alarm_events", "household_id = ?", (household_id,)),
        "care_settings": _owned_rows(conn, "eldercare_settings", "household_id = ?", (household_id,)),
        "care_check_ins": _owned_rows(conn, "care_check_ins", "household_id = ?", (household_id,)),
        "care_reminders": _owned_rows(conn, "care_reminders", "household_id = ?", (household_id,)),
        "care_activity": _owned_rows(conn, "care_activity", "household_id = ?", (household_id,)),
        "audit": [
            entry if entry.get("actor") in members else {**entry, "ip": None}
            for entry in users.query_audit(conn, household_ids=[household_id], limit=100000)[0]
        ],
    }
    return data


def erase(conn: Any, household_id: str) -> dict[str, int]:
    """Delete the household's personal data in one transaction; returns rows removed per table."""
    device_rows = [
        r[0] for r in conn.execute("SELECT row FROM devices WHERE household_id = ?", (household_id,))
    ]
    marks = ",".join("?" * len(device_rows)) or "NULL"
    resident_ids = [
        r[0] for r in conn.execute("SELECT id FROM residents WHERE household_id = ?", (household_id,))
    ]
    rmarks = ",".join("?" * len(resident_ids)) or "NULL"
    alert_ids = (
        [r[0] for r in conn.execute("SELECT id FROM alerts WHERE household_id = ?", (household_id,))]
        if table_exists(conn, "alerts")
        else []
    )
    amarks = ",".join("?" * len(alert_ids)) or "NULL"
    statements = [
        ("telemetry", f"DELETE FROM telemetry WHERE device_row IN ({marks})", device_rows),
        ("telemetry_hourly", f"DELETE FROM telemetry_hourly WHERE device_row IN ({marks})", device_rows),
        ("capability_state", f"DELETE FROM capability_state WHERE device_row IN ({marks})", device_rows),
        ("health_readings", "DELETE FROM health_readings WHERE household_id = ?", [household_id]),
        ("health_rejected", "DELETE FROM health_rejected WHERE household_id = ?", [household_id]),
        ("health_thresholds", f"DELETE FROM health_thresholds WHERE resident_id IN ({rmarks})", resident_ids),
        ("health_consent", "DELETE FROM health_consent WHERE household_id = ?", [household_id]),
        ("alert_events", f"DELETE FROM alert_events WHERE alert_id IN ({amarks})", alert_ids),
        ("alert_deliveries", f"DELETE FROM alert_deliveries WHERE alert_id IN ({amarks})", alert_ids),
        ("alert_assignments", f"DELETE FROM alert_assignments WHERE alert_id IN ({amarks})", alert_ids),
        ("alerts", "DELETE FROM alerts WHERE household_id = ?", [household_id]),
        ("alarm_events", "DELETE FROM alarm_events WHERE household_id = ?", [household_id]),
        (
            "care_reminder_log",
            "DELETE FROM care_reminder_log WHERE reminder_id IN "
            "(SELECT id FROM care_reminders WHERE household_id = ?)",
            [household_id],
        ),
        ("care_reminders", "DELETE FROM care_reminders WHERE household_id = ?", [household_id]),
        ("care_check_ins", "DELETE FROM care_check_ins WHERE household_id = ?", [household_id]),
        ("care_activity", "DELETE FROM care_activity WHERE household_id = ?", [household_id]),
        ("eldercare_settings", "DELETE FROM eldercare_settings WHERE household_id = ?", [household_id]),
        ("alarm_pins", "DELETE FROM alarm_pins WHERE household_id = ?", [household_id]),
        ("alarm_panels", "DELETE FROM alarm_panels WHERE household_id = ?", [household_id]),
        ("alert_policies", "DELETE FROM alert_policies WHERE household_id = ?", [household_id]),
        (
            "announcements",
            "DELETE FROM announcements WHERE scope = 'household' AND scope_id = ?",
            [household_id],
        ),
        (
            "quarantine",
            "DELETE FROM quarantine WHERE device_id IN (SELECT id FROM devices WHERE household_id = ?) "
            "OR instr(topic, ?) > 0",
            [household_id, f"/{household_id}/"],
        ),
    ]
    removed: dict[str, int] = {}
    for table, sql, params in statements:
        if table_exists(conn, table):  # a service's tables exist only where it is configured
            removed[table] = conn.execute(sql, params).rowcount
    conn.execute("UPDATE devices SET resident_id = NULL WHERE household_id = ?", (household_id,))
    removed["residents"] = conn.execute(
        "DELETE FROM residents WHERE household_id = ?", (household_id,)
    ).rowcount
    removed["audit"] = _rewrite_audit(
        conn,
        "ip = NULL, detail = '{}', target = NULL",
        "household_id = ? AND action != 'privacy.delete'",
        [household_id],
    )
    return removed


def _rewrite_audit(conn: Any, assignments: str, where: str, params: list[Any]) -> int:
    """Erase personal data from audit lines: the one exception to the log being append-only.

    The triggers that refuse UPDATE and DELETE are lifted and put back inside the same
    transaction (SQLite's DDL is transactional), so no other write ever sees them gone.
    """
    triggers = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit'"
    ).fetchall()
    for name, _ in triggers:
        conn.execute(f"DROP TRIGGER {name}")
    try:
        return int(conn.execute(f"UPDATE audit SET {assignments} WHERE {where}", params).rowcount)
    finally:
        for _, sql in triggers:
            conn.execute(sql)


def purge(conn: Any, household_id: str) -> str:
    """After the household's rows are gone: leave nothing anywhere that names it.

    Its history (alerts, readings…) goes as in `erase`; provider keys forget it; revoked
    tokens of removed accounts go; audit lines about it, and by or about its accounts,
    keep what was done and when under a pseudonym (returned, for the removal's own line).
    """
    pseudonym = f"erased-{secrets.token_hex(6)}"
    # its accounts are gone by now (a household with accounts is not removed): the audit knows them
    account_names = sorted(
        {
            r[0]
            for r in conn.execute(
                "SELECT actor FROM audit WHERE household_id = ? AND role IN (?, ?, ?) UNION "
                "SELECT target FROM audit WHERE household_id = ? AND action LIKE 'user.%' "
                "AND target IS NOT NULL",
                (household_id, *HOUSEHOLD_ROLE_NAMES, household_id),
            )
        }
    )
    erase(conn, household_id)
    conn.execute("DELETE FROM tokens WHERE user_id IS NOT NULL AND user_id NOT IN (SELECT id FROM users)")
    for token_id, scope in conn.execute(
        "SELECT id, scope FROM tokens WHERE instr(scope, ?) > 0", (household_id,)
    ).fetchall():
        data = orjson.loads(scope or "{}")
        households = [h for h in data.get("households", []) if h != household_id]
        if data.get("household") == household_id or ("households" in data and not households):
            conn.execute("DELETE FROM tokens WHERE id = ?", (token_id,))
        else:
            data["households"] = households
            conn.execute("UPDATE tokens SET scope = ? WHERE id = ?", (orjson.dumps(data).decode(), token_id))
    names = [household_id, *account_names]
    marks = ",".join("?" * len(account_names)) or "NULL"
    _rewrite_audit(
        conn,
        f"household_id = ?, actor = CASE WHEN actor IN ({marks}) THEN ? ELSE actor END, "
        "ip = NULL, detail = '{}', target = NULL",
        f"household_id = ? OR actor IN ({marks}) OR target IN ({marks})",
        [pseudonym, *account_names, f"{pseudonym}-member", household_id, *account_names, *account_names],
    )
    # a discovered device approved into the home: the decision keeps who and when, not where
    # (the item itself is the discovery inbox's, which reloads it: left to its own retention)
    for value in names if table_exists(conn, "inbox_decisions") else []:
        conn.execute("UPDATE inbox_decisions SET detail = '{}' WHERE instr(detail, ?) > 0", (f'"{value}"',))
    return pseudonym


#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()


@ROUTES.op(
    "GET",
    "/api/v1/households/{household_id}/export",
    summary="Export all of the household's data as JSON (household admin; audited)",
    tag="privacy",
    roles=[Role.HOUSEHOLD_ADMIN],
    description=(
        "Everything stored about the household, its audit trail included; the addresses of "
        "people outside the household (the property office's) are left out."
    ),
)
async def export(call: Call) -> Any:
    await call.gateway.store.async_flush()
    health = call.gateway.peer(HEALTH)
    if health is not None:
        await health.async_flush()
    data = await call.gateway.store.async_read(lambda conn: collect(conn, call.household_id))
    await call.request.app[ACCOUNTS].async_audit(
        call.principal,
        "export.household",
        household_id=call.household_id,
        detail={k: len(v) for k, v in data.items()},
        ip=call.ip,
    )
    return {"household_id": call.household_id, "exported_at": time.time(), "data": data}


@ROUTES.op(
    "DELETE",
    "/api/v1/households/{household_id}/data",
    summary="Delete the household's personal data for good (household admin; audited)",
    tag="privacy",
    roles=[Role.HOUSEHOLD_ADMIN],
    body=obj({"confirm": text(64)}, ["confirm"]),
)
async def delete(call: Call) -> dict[str, Any]:
    hid, gateway = call.household_id, call.gateway
    if call.body["confirm"] != hid:
        raise ApiError(
            "invalid_body", f"body.confirm: repeat the household id {hid!r} to confirm the deletion"
        )
    security = gateway.peer(SECURITY)
    if security is not None and security.status(hid)["state"] != "disarmed":
        raise ApiError("conflict", "the alarm is armed: disarm it first, then delete the household's data")
    alerts = gateway.peer(ALERTS)
    if alerts is not None:
        for alert in alerts.open_alerts(hid):
            await alerts.async_resolve(alert.id, call.principal.name, "household data deleted on request")
    care = gateway.peer(ELDERCARE)
    if care is not None:
        for rid in [r.id for r in care.reminders.values() if r.household_id == hid]:
            await care.async_remove_reminder(rid)
        # the care settings name residents (their own inactivity limits): back to the defaults,
        # whose row the erasure below removes
        await care.async_configure(
            hid,
            {
                "inactivity": InactivitySettings().as_dict(),
                "check_in": CheckInSettings().as_dict(),
                "away": False,
            },
        )
    if security is not None:
        pins = await gateway.store.async_read(
            lambda conn: [
                r[0] for r in conn.execute("SELECT user_id FROM alarm_pins WHERE household_id = ?", (hid,))
            ]
        )
        for user in pins:
            await security.async_remove_pin(hid, user, by=call.principal.name)
    book = call.request.app[ANNOUNCEMENTS]
    for item_id in [a.id for a in book.items.values() if a.scope == "household" and a.scope_id == hid]:
        del book.items[item_id]
    health = gateway.peer(HEALTH)
    residents = gateway.registry.household_residents(hid)
    if health is not None:
        await health.async_flush()
        await health.async_withdraw_consent(hid, by=call.principal.name, note="household data deleted")
        for resident in residents:
            await health.async_reset_thresholds(resident.id, by=call.principal.name)
    await gateway.store.async_flush()
    await gateway.store.async_settle_journal()  # the alarms' journal keeps no copy of them

    def run(db: Any) -> dict[str, int]:
        removed = erase(db.conn, hid)
        users.append_audit(
            db.conn,
            actor=call.principal.name,
            role=call.principal.role.value,
            action="privacy.delete",
            household_id=hid,
            detail={"removed": removed},
            ip=call.ip,
        )
        return removed

    removed = await gateway.store.async_write(run)
    for resident in residents:
        gateway.registry.residents.pop(resident.id, None)
    for device in gateway.registry.household_devices(hid):
        device.resident_id = None
        device.states.clear()
    _LOGGER.info("household %s: personal data deleted on request (%d rows)", hid, sum(removed.values()))
    return {"household_id": hid, "removed": removed}


__all__ = ["ROUTES", "collect", "erase", "purge"]
