"""Alerts: the live queue and history, acknowledge, assign, resolve with a note, the timeline."""

from __future__ import annotations

import time
from typing import Any, Final

import orjson

from linli.gateway.context import Context
from linli.gateway.users import Role
from linli.portal.api.errors import ApiError, not_found
from linli.portal.api.operations import ID, Api, Call, obj, text
from linli.portal.api.shapes import alert_for, public_alert, timeline_for
from linli.portal.auth.middleware import ACCOUNTS
from linli.portal.auth.principal import MEMBERS, reachable, reaches
from linli.services.alerts import ALERTS

ANSWERERS: Final = [Role.RESIDENT, Role.HOUSEHOLD_ADMIN, Role.CARER, Role.MANAGER]
READERS: Final = [*ANSWERERS, Role.INSTALLER]
SEVERITY_RANK: Final = {"critical": 0, "high": 1, "warning": 2, "info": 3}
STATES: Final = ["unresolved", "open", "acknowledged", "resolved", "all"]
# Installers see that a device went offline or was tampered with, nothing about people.
INSTALLER_KINDS: Final = ("device_offline", "tamper")
_COLUMNS: Final = (
    "id, kind, severity, household_id, resident, title, detail, count, state, raised_at, last_seen_at, "
    "step, next_step_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by, resolution_note, data"
)
_KEYS: Final = [c.strip() for c in _COLUMNS.split(",")]


def _engine(call: Call) -> Any:
    return call.component(ALERTS)


async def _assignments(call: Call, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}

    def read(conn: Any) -> dict[int, dict[str, Any]]:
        marks = ",".join("?" * len(ids))
        rows = conn.execute(
            f"SELECT alert_id, assignee, by, ts FROM alert_assignments WHERE alert_id IN ({marks})", ids
        ).fetchall()
        return {r[0]: {"assignee": r[1], "by": r[2], "ts": r[3]} for r in rows}

    return await call.gateway.store.async_read(read)


async def visible_alert(call: Call, alert_id: int) -> dict[str, Any]:
    """The alert if the caller may see it; 404 (the same as a missing one) otherwise."""
    alert = await _engine(call).async_get(alert_id)
    principal = call.principal
    if alert is None or not reaches(principal, call.gateway, alert.household_id):
        raise not_found(f"alert {alert_id}")
    if principal.role is Role.INSTALLER and alert.kind not in INSTALLER_KINDS:
        raise not_found(f"alert {alert_id}")
    if alert.data.get("held") and principal.role not in MEMBERS:
        raise not_found(f"alert {alert_id}")  # in its cancel window: the household's own for now
    return public_alert(alert.as_dict())


async def _guard(call: Call) -> None:
    await visible_alert(call, _alert_id(call))


#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()


@ROUTES.op(
    "GET",
    "/api/v1/alerts",
    summary="List alerts (newest or most severe first), filtered and paginated",
    tag="alerts",
    roles=READERS,
    query={
        "state": {"enum": STATES},
        "household_id": ID,
        "severity": {"enum": list(SEVERITY_RANK)},
        "kind": ID,
        "since": {"type": "number"},
        "sort": {"enum": ["newest", "severity"]},
        "limit": {"type": "integer", "minimum": 1, "maximum": 500},
        "offset": {"type": "integer", "minimum": 0},
    },
)
async def list_alerts(call: Call) -> dict[str, Any]:
    _engine(call)
    q = call.query
    households = reachable(call.principal, call.gateway)
    if "household_id" in q:
        households = [h for h in households if h == q["household_id"]]
    state = q.get("state", "unresolved")
    where = [f"household_id IN ({','.join('?' * len(households))})"]
    params: list[Any] = list(households)
    if state == "unresolved":
        where.append("state != 'resolved'")
    elif state == "open":
        where.append("state IN ('raised', 'notified')")
    elif state != "all":
        where.append("state = ?")
        params.append(state)
    for key in ("severity", "kind"):
        if key in q:
            where.append(f"{key} = ?")
            params.append(q[key])
    if call.principal.role is Role.INSTALLER:
        where.append(f"kind IN ({','.join('?' * len(INSTALLER_KINDS))})")
        params += INSTALLER_KINDS
    if call.principal.role not in MEMBERS:  # an alert in its cancel window is the household's own
        where.append("coalesce(json_extract(data, '$.held'), 0) = 0")
    if "since" in q:
        where.append("raised_at >= ?")
        params.append(q["since"])
    order = (
        "CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'warning' THEN 2 ELSE 3 END, raised_at"
        if q.get("sort") == "severity"
        else "raised_at DESC"
    )
    limit, offset = q.get("limit", 50), q.get("offset", 0)
    clause = " AND ".join(where)

    def read(conn: Any) -> tuple[int, list[Any]]:
        total = conn.execute(f"SELECT count(*) FROM alerts WHERE {clause}", params).fetchone()[0]
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM alerts WHERE {clause} ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        return total, rows

    total, rows = await call.gateway.store.async_read(read)
    items = []
    engine = _engine(call)
    for row in rows:
        item = dict(zip(_KEYS, row, strict=True))
        live = engine.alerts.get(item["id"])
        item = live.as_dict() if live is not None else {**item, "data": orjson.loads(item["data"] or "{}")}
        items.append(item)
    assigned = await _assignments(call, [i["id"] for i in items])
    for item in items:
        item["assigned_to"] = assigned.get(item["id"])
    items = [alert_for(i, call.principal, call.gateway) for i in items]
    return {"items": items, "total": total, "limit": limit, "offset": offset, "now": time.time()}


#: One link of an alert's chain of causes (`AlertEngine.async_trace`); ids are strings (64-bit).
TRACE_ENTRY: Final = {
    "type": "object",
    "required": ["context_id", "parent_id", "what", "when", "where"],
    "properties": {
        "context_id": {"type": "string", "description": "the context this happened in"},
        "parent_id": {
            "type": ["string", "null"],
            "description": "the context of what caused it (the entry before it in a simple chain)",
        },
        "what": {
            "type": "string",
            "description": "cause, requested, raised, notifying, escalated, delivered, no_recipient, "
            "failed, repeated, acknowledged, resolved, cancelled, call_back",
        },
        "when": {"type": "number", "description": "Unix time"},
        "where": {
            "type": "string",
            "description": "the device, the service that asked, `step N: audience`, or "
            "`channel: detail` (`tv: overlay on <box>`)",
        },
    },
}


@ROUTES.op(
    "GET",
    "/api/v1/alerts/{alert_id}",
    summary="Read one alert, with the chain of what caused what (its trace)",
    tag="alerts",
    roles=READERS,
    description="`trace` lists, in order, each context the alert's road went through, each with its "
    "parent's id: for an SOS, the press at the pendant → the service's request → the alert raised → "
    "the escalation step → each channel's delivery (the TV's overlay, the phones' WebSocket), then "
    "later steps and answers. It is how a TV overlay is traced to its button press.",
    response={
        "type": "object",
        "required": ["id", "state", "trace"],
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string"},
            "trace": {"type": "array", "items": TRACE_ENTRY},
        },
    },
)
async def get_alert(call: Call) -> dict[str, Any]:
    alert_id = _alert_id(call)
    alert = await visible_alert(call, alert_id)
    alert["assigned_to"] = (await _assignments(call, [alert_id])).get(alert_id)
    trace = await _engine(call).async_trace(alert_id)
    shown = alert_for(alert, call.principal, call.gateway)
    shown["trace"] = [
        {**entry, "context_id": str(entry["context_id"]), "parent_id": _id_text(entry["parent_id"])}
        for entry in trace
    ]
    return shown


def _id_text(value: int | None) -> str | None:
    return None if value is None else str(value)


@ROUTES.op(
    "GET",
    "/api/v1/alerts/{alert_id}/timeline",
    summary="Read an alert's timeline: raised, each delivery, escalation, who answered",
    tag="alerts",
    roles=READERS,
)
async def timeline(call: Call) -> dict[str, Any]:
    alert_id = _alert_id(call)
    alert = await visible_alert(call, alert_id)
    events = await _engine(call).async_timeline(alert_id)
    return {
        "alert_id": str(alert_id),
        "events": timeline_for(events, alert, call.principal, call.gateway),
    }


@ROUTES.op(
    "POST",
    "/api/v1/alerts/{alert_id}/acknowledge",
    summary="Acknowledge an alert (escalation stops; audited)",
    tag="alerts",
    roles=ANSWERERS,
)
async def acknowledge(call: Call) -> dict[str, Any]:
    alert_id = _alert_id(call)
    alert = await visible_alert(call, alert_id)
    answered = await _answer(call, "acknowledge", alert_id, "")
    await call.request.app[ACCOUNTS].async_audit(
        call.principal,
        "alert.acknowledge",
        household_id=alert["household_id"],
        target=str(alert_id),
        ip=call.ip,
    )
    return answered


@ROUTES.op(
    "POST",
    "/api/v1/alerts/{alert_id}/resolve",
    summary="Resolve an alert with a note saying what happened (audited)",
    tag="alerts",
    roles=ANSWERERS,
    body=obj({"note": text(1000)}, ["note"]),
    guard=_guard,
)
async def resolve(call: Call) -> dict[str, Any]:
    alert_id = _alert_id(call)
    alert = await visible_alert(call, alert_id)
    answered = await _answer(call, "resolve", alert_id, call.body["note"])
    await call.request.app[ACCOUNTS].async_audit(
        call.principal,
        "alert.resolve",
        household_id=alert["household_id"],
        target=str(alert_id),
        detail={"note": call.body["note"][:200]},
        ip=call.ip,
    )
    return answered


@ROUTES.op(
    "POST",
    "/api/v1/alerts/{alert_id}/assign",
    summary="Assign an alert to a person on the duty desk (audited)",
    tag="alerts",
    roles=[Role.MANAGER],
    body=obj({"assignee": text(64)}, ["assignee"]),
    guard=_guard,
)
async def assign(call: Call) -> dict[str, Any]:
    alert_id = _alert_id(call)
    alert = await visible_alert(call, alert_id)
    assignee, now = call.body["assignee"], time.time()
    await call.gateway.store.async_write(
        lambda db: db.conn.execute(
            "INSERT OR REPLACE INTO alert_assignments (alert_id, assignee, by, ts) VALUES (?, ?, ?, ?)",
            (alert_id, assignee, call.principal.name, now),
        )
    )
    await call.request.app[ACCOUNTS].async_audit(
        call.principal,
        "alert.assign",
        household_id=alert["household_id"],
        target=str(alert_id),
        detail={"assignee": assignee},
        ip=call.ip,
    )
    assigned = {**alert, "assigned_to": {"assignee": assignee, "by": call.principal.name, "ts": now}}
    return alert_for(assigned, call.principal, call.gateway)


@ROUTES.op(
    "POST",
    "/api/v1/households/{household_id}/help",
    summary="Call for help: raise an SOS alert for the household (the TV's and phone's help button)",
    tag="alerts",
    roles=[Role.RESIDENT, Role.HOUSEHOLD_ADMIN],
    status=201,
    body=obj({"detail": text(500, 0)}),
)
async def call_for_help(call: Call) -> dict[str, Any]:
    # Whoever answers needs a person or a home, not a login: the display name when one was
    # given (it defaults to the account name), else the household's name.
    who = call.principal.display_name
    if not who or who == call.principal.name:
        home = call.gateway.registry.households.get(call.household_id or "")
        who = home.name if home is not None else call.household_id or call.principal.name
    alert = await _engine(call).async_raise(
        kind="sos",
        household_id=call.household_id,
        title=f"呼叫帮助：{who}",  # the Chinese sentence; pages say it in the reader's words
        detail=call.body.get("detail", ""),
        dedup_key=f"help:{call.principal.user_id}",
        data={"by": call.principal.name, "source": "portal", "title_key": "help", "params": {"who": who}},
        context=Context(household=call.household_id, origin="portal", user=call.principal.name),
    )
    return alert_for(alert.as_dict(), call.principal, call.gateway)


def _alert_id(call: Call) -> int:
    raw = call.path["alert_id"]
    if not raw.isdigit() or len(raw) > 20:
        raise not_found(f"alert {raw!r}")
    return int(raw)


async def _answer(call: Call, action: str, alert_id: int, note: str) -> dict[str, Any]:
    engine = _engine(call)
    try:
        if action == "acknowledge":
            alert = await engine.async_acknowledge(alert_id, call.principal.name)
        else:
            alert = await engine.async_resolve(alert_id, call.principal.name, note)
    except ValueError as exc:  # AlertError: not open any more, note missing
        code = getattr(exc, "code", "invalid")
        raise ApiError(
            "conflict" if code == "not_found" else code,
            getattr(exc, "message", str(exc))
            + (" (it may be resolved already)" if code == "not_found" else ""),
        ) from None
    return alert_for(alert.as_dict(), call.principal, call.gateway)
