"""The community tree, households at a glance, members and roles, devices and their commands."""

from __future__ import annotations

import time
from typing import Any, Final

from linli.gateway import users
from linli.gateway.commands import CommandError
from linli.gateway.context import Context
from linli.gateway.privacy import FieldClass, class_of
from linli.gateway.registry import Device
from linli.gateway.users import Role, UserError
from linli.portal.api.errors import ApiError, not_found
from linli.portal.api.operations import ID, Api, Call, obj, text
from linli.portal.api.shapes import alert_for, redact_capability
from linli.portal.auth.middleware import ACCOUNTS
from linli.portal.auth.principal import (
    COMMUNITY_ROLES,
    MEMBERS,
    Principal,
    kind_allowed,
    may_see_value,
    reachable,
    reaches,
    redaction_reason,
    sees,
)
from linli.services.alerts import ALERTS
from linli.services.eldercare import ELDERCARE
from linli.services.security import SECURITY

HOUSEHOLD_VIEWERS: Final = frozenset(Role)
PRESENCE_KINDS: Final = ("presence", "occupancy", "bed_occupancy")
MAX_PAGE: Final = 500
# The roles a household admin may give within their own household.
HOUSEHOLD_ADMIN_GRANTS: Final = ("resident", "household_admin", "carer")
HEALTH_STATE_NOTE: Final = (
    "The state of a health capability (blood_pressure, heart_rate, spo2, glucose, weight, "
    "body_temperature) is health data: for a caller who may not read this household's health "
    "readings (the rule of the health routes: household members, carers and providers with the "
    "household's consent, a manager only where it consents to providers, never an installer) the "
    'capability is listed with `value`, `last_changed` and `last_reported` null and `"redacted": '
    '"consent_required"`. Values that say who is home (motion, occupancy, presence, bed, doors, '
    "locks, what the TV plays) and the TV's overlay text are people's data: an installer gets them "
    'with `"redacted": "not_permitted"`, a provider key only for the kinds it was granted.'
)
_CAPABILITY: Final = {
    "type": "object",
    "description": HEALTH_STATE_NOTE,
    "properties": {
        "key": {"type": "string"},
        "kind": {"type": "string"},
        "value": {"description": "the current state; null when unknown or redacted"},
        "last_changed": {"type": ["number", "null"]},
        "last_reported": {"type": ["number", "null"]},
        "redacted": {
            "enum": ["consent_required", "not_permitted"],
            "description": (
                "present only when the value is withheld: `consent_required` where the household's "
                "consent would show it, `not_permitted` where the caller's role never sees it"
            ),
        },
    },
    "required": ["key", "kind", "value"],
}
DEVICE_SCHEMA: Final = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "household_id": {"type": "string"},
        "available": {"type": "boolean"},
        "capabilities": {"type": "array", "items": _CAPABILITY},
    },
}


def device_view(device: Device, principal: Principal | None, gateway: Any) -> dict[str, Any]:
    """A device as this principal may see it (None: nobody signed in, the demo's open views).

    A provider's key sees only the kinds it was granted; a health kind's value (blood
    pressure, SpO2…) is redacted for whoever may not read the household's health data.
    """
    data = device.as_dict()
    capabilities = []
    for cap in data["capabilities"]:
        if principal is not None and not kind_allowed(principal, cap["kind"]):
            continue
        if not may_see_value(principal, gateway, device.household_id, cap["kind"]):
            field = class_of(cap["kind"])
            cap = redact_capability(cap, redaction_reason(principal, field or FieldClass.IDENTITY))
        capabilities.append(cap)
    data["capabilities"] = capabilities
    battery = next((c["value"] for c in data["capabilities"] if c["kind"] == "battery"), None)
    data["battery"] = battery
    return data


def _set_disabled(conn: Any, target: users.User, disabled: bool, by: Principal, ip: str) -> users.User:
    """Stop (or allow again) an account's sign-in; disabling also revokes its live sessions and tokens."""
    conn.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), target.id))
    if disabled:
        conn.execute(
            "UPDATE tokens SET revoked = ? WHERE user_id = ? AND revoked IS NULL", (time.time(), target.id)
        )
    users.append_audit(
        conn,
        actor=by.name,
        role=by.role.value,
        action="user.disable" if disabled else "user.enable",
        household_id=target.household_id,
        target=target.name,
        ip=ip,
    )
    found = users.get_user(conn, user_id=target.id)
    assert found is not None
    return found


def household_status(call: Call, household_id: str) -> dict[str, Any]:
    """One line of the manager's tree: devices online, open alerts, alarm state (no personal data)."""
    gateway = call.gateway
    devices = gateway.registry.household_devices(household_id)
    alerts = gateway.peer(ALERTS)
    open_alerts = alerts.open_alerts(household_id) if alerts is not None else []
    if call.principal is None or call.principal.role not in MEMBERS:
        # a fall in its cancel window is the household's own until the window passes
        open_alerts = [a for a in open_alerts if not a.data.get("held")]
    security = gateway.peer(SECURITY)
    alarm = None
    # the alarm's state says whether anyone is home: the duty desk's, not an installer's or a provider's
    if security is not None and sees(call.principal, gateway, household_id, FieldClass.ALARM):
        try:
            alarm = security.status(household_id)["state"]
        except ValueError:
            alarm = None
    low_battery = 0
    for device in devices:
        for cap in device.profile.capabilities:
            state = device.states.get(cap.key)
            if cap.kind == "battery" and state is not None and isinstance(state.value, int | float):
                low_battery += state.value < 20
    return {
        "devices": len(devices),
        "devices_online": sum(1 for d in devices if d.available),
        "low_battery": low_battery,
        "open_alerts": sum(1 for a in open_alerts if a.state.value != "acknowledged"),
        "alerts_unresolved": len(open_alerts),
        "worst_severity": _worst([a.severity for a in open_alerts]),
        "alarm": alarm,
    }


def _worst(severities: list[str]) -> str | None:
    order = ["critical", "high", "warning", "info"]
    present = [s for s in order if s in severities]
    return present[0] if present else None


async def household_overview(call: Call, household_id: str) -> dict[str, Any]:
    gateway = call.gateway
    registry = gateway.registry
    principal = call.principal
    household = registry.households[household_id]
    unit = registry.units.get(household.unit_id)
    building = registry.buildings.get(unit.building_id) if unit else None
    devices = registry.household_devices(household_id)

    # Each part as the caller may see it (`sees`): an installer sets up devices and sees the
    # home's devices and counts, none of its people (names, who is home, doors, alerts naming
    # them, check-ins, the alarm they set).
    def may(field: FieldClass, kind: str | None = None) -> bool:
        return sees(principal, gateway, household_id, field, kind)

    people = may(FieldClass.IDENTITY)
    open_doors, home = [], []
    for device in devices:
        for cap in device.profile.capabilities:
            state = device.states.get(cap.key)
            if state is None or not kind_allowed(principal, cap.kind):
                continue
            if cap.kind == "contact" and state.value is True and may(FieldClass.PRESENCE, cap.kind):
                open_doors.append(
                    {
                        "device_id": device.id,
                        "name": device.name,
                        "room": device.room,
                        # every language's form: a page shows the reader's (labels.js)
                        "names": device.names or {"zh-CN": device.name},
                        "room_names": device.room_names,
                    }
                )
            if cap.kind in PRESENCE_KINDS and state.value is True and may(FieldClass.PRESENCE, cap.kind):
                resident = registry.residents.get(device.resident_id) if device.resident_id else None
                home.append(
                    {
                        "device_id": device.id,
                        "room": device.room,
                        "room_names": device.room_names,
                        "names": device.names or {"zh-CN": device.name},
                        "kind": cap.kind,
                        "resident": resident.name if resident and people else None,
                    }
                )
    result: dict[str, Any] = {
        "id": household.id,
        "name": household.name,
        "unit": unit.name if unit else None,
        "building": building.name if building else None,
        "building_id": building.id if building else None,
        "status": household_status(call, household_id),
        "open_doors": open_doors,
        "presence": home,
        "residents": (
            [{"id": r.id, "name": r.name} for r in registry.household_residents(household_id)]
            if people
            else []
        ),
        "alarm": None,
        "alerts": [],
        "vitals": [],
        "check_in": None,
    }
    security = gateway.peer(SECURITY)
    if security is not None and may(FieldClass.ALARM):
        status = security.status(household_id)
        result["alarm"] = {
            k: status[k] for k in ("state", "mode", "deadline", "remaining_s", "open", "locked_out_s")
        }
        result["alarm"]["alert_id"] = str(status["alert_id"]) if status.get("alert_id") else None
    alerts = gateway.peer(ALERTS)
    if alerts is not None and people and principal.role is not Role.PROVIDER:
        result["alerts"] = [
            alert_for(a.as_dict(), principal, gateway)
            for a in alerts.open_alerts(household_id)
            # in its cancel window an alert is the household's own (as in /alerts and live)
            if principal.role in MEMBERS or not a.data.get("held")
        ]
    care = gateway.peer(ELDERCARE)
    if care is not None and may(FieldClass.CARE):
        result["check_in"] = {
            "done_today": care.checked_in_today(household_id),
            **care.settings(household_id)["check_in"],
        }
    from linli.portal.api.health import latest_vitals  # one module per resource; this one reads health

    result["vitals"] = await latest_vitals(call, household_id)
    return result


#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()


@ROUTES.op(
    "GET",
    "/api/v1/community",
    summary="Read the community tree: buildings, units, households",
    tag="community",
)
async def community(call: Call) -> dict[str, Any]:
    registry = call.gateway.registry
    visible = set(reachable(call.principal, call.gateway))
    manager = call.principal.role in COMMUNITY_ROLES
    buildings = []
    for building in sorted(registry.buildings.values(), key=lambda b: b.id):
        units = []
        for unit in sorted(
            (u for u in registry.units.values() if u.building_id == building.id), key=lambda u: u.id
        ):
            homes = [
                {
                    "id": h.id,
                    "name": h.name,
                    **({"status": household_status(call, h.id)} if manager else {}),
                }
                for h in sorted(registry.households.values(), key=lambda h: h.id)
                if h.unit_id == unit.id and h.id in visible
            ]
            if homes or manager:
                units.append({"id": unit.id, "name": unit.name, "households": homes})
        if units:
            buildings.append({"id": building.id, "name": building.name, "units": units})
    return {
        "id": registry.community_id,
        "name": registry.community_name,
        "buildings": buildings,
        "households": len(visible),
    }


@ROUTES.op(
    "GET",
    "/api/v1/households/{household_id}",
    summary="Read a household at a glance: alarm, open doors, who is home, vitals, alerts",
    tag="community",
    description=(
        "An installer gets the household's devices and counts only: `residents`, `presence`, "
        "`alerts`, `vitals` empty and `alarm`, `check_in` null (no people's data)."
    ),
)
async def overview(call: Call) -> dict[str, Any]:
    return await household_overview(call, call.household_id)


# -- members and roles -------------------------------------------------------------


@ROUTES.op(
    "GET",
    "/api/v1/households/{household_id}/members",
    summary="List a household's residents and accounts",
    tag="members",
    roles=[Role.RESIDENT, Role.HOUSEHOLD_ADMIN, Role.CARER, Role.MANAGER],
)
async def members(call: Call) -> dict[str, Any]:
    accounts = await call.gateway.store.async_read(lambda c: users.list_users(c, call.household_id))
    residents = call.gateway.registry.household_residents(call.household_id)
    return {
        "residents": [r.as_dict() for r in residents],
        "accounts": [u.as_dict() for u in accounts],
    }


@ROUTES.op(
    "GET",
    "/api/v1/users",
    summary="List every account (manager)",
    tag="members",
    roles=[Role.MANAGER],
    query={"role": {"enum": [r.value for r in Role]}, "household_id": ID},
)
async def list_all(call: Call) -> dict[str, Any]:
    found = await call.gateway.store.async_read(lambda c: users.list_users(c, call.query.get("household_id")))
    role = call.query.get("role")
    items = [u.as_dict() for u in found if role is None or u.role.value == role]
    return {"items": items, "total": len(items)}


@ROUTES.op(
    "POST",
    "/api/v1/users",
    summary="Add an account; its generated password is in the answer, once",
    tag="members",
    roles=[Role.MANAGER, Role.HOUSEHOLD_ADMIN],
    status=201,
    body=obj(
        {
            "name": text(64),
            "role": {"enum": [r.value for r in Role]},
            "household_id": ID,
            "display_name": text(64),
        },
        ["name", "role"],
    ),
)
async def add_user(call: Call) -> dict[str, Any]:
    b, p = call.body, call.principal
    household = b.get("household_id")
    if p.role is Role.HOUSEHOLD_ADMIN:
        if household != p.household_id or b["role"] not in HOUSEHOLD_ADMIN_GRANTS:
            raise ApiError(
                "forbidden", "a household admin adds residents, admins and carers of their own household"
            )
    if household is not None and household not in call.gateway.registry.households:
        raise not_found(f"household {household!r}")
    try:
        user, password = await call.request.app[ACCOUNTS].async_add_user(
            p, b["name"], b["role"], household, b.get("display_name"), call.ip
        )
    except UserError as exc:
        raise ApiError(exc.code, exc.message) from None
    return {"user": user.as_dict(), "password": password, "shown_once": True}


@ROUTES.op(
    "PATCH",
    "/api/v1/users/{user_id}",
    summary="Change an account's role, or disable or re-enable it (audited)",
    tag="members",
    roles=[Role.MANAGER, Role.HOUSEHOLD_ADMIN],
    description=(
        "Send `role` (with `household_id` for household roles) to change the role, "
        "`disabled` to stop or allow sign-in; disabling ends the account's sessions and tokens."
    ),
    body=obj(
        {
            "role": {"enum": [r.value for r in Role]},
            "household_id": {"type": ["string", "null"]},
            "disabled": {"type": "boolean"},
        },
    ),
)
async def change_user(call: Call) -> dict[str, Any]:
    p, b = call.principal, call.body
    if "role" not in b and "disabled" not in b:
        raise ApiError(
            "invalid_body", "body: send `role` to change the role, or `disabled` to stop or allow sign-in"
        )
    target = await call.gateway.store.async_read(lambda c: users.get_user(c, user_id=call.path["user_id"]))
    if target is None:
        raise not_found(f"user {call.path['user_id']!r}")
    role = b.get("role", target.role.value)
    household = b.get("household_id", target.household_id)
    if household is not None and household not in call.gateway.registry.households:
        raise not_found(f"household {household!r}")
    if p.role is Role.HOUSEHOLD_ADMIN and (
        target.household_id != p.household_id
        or household != p.household_id
        or role not in HOUSEHOLD_ADMIN_GRANTS
    ):
        raise not_found(f"user {call.path['user_id']!r}")
    if target.id == p.user_id:
        raise ApiError(
            "forbidden", "you cannot change or disable your own account; ask another manager or admin"
        )
    user = target
    try:
        if "role" in b:
            user = await call.gateway.store.async_write(
                lambda db: users.set_role(db.conn, target.id, role, household, by=p.name)
            )
    except UserError as exc:
        raise ApiError(exc.code, exc.message) from None
    if "disabled" in b and b["disabled"] != target.disabled:
        user = await call.gateway.store.async_write(
            lambda db: _set_disabled(db.conn, target, b["disabled"], p, call.ip)
        )
    call.request.app[ACCOUNTS].forget_user(target.id)
    return {"user": user.as_dict()}


@ROUTES.op(
    "DELETE",
    "/api/v1/users/{user_id}",
    summary="Remove an account and end its sessions (audited)",
    tag="members",
    roles=[Role.MANAGER, Role.HOUSEHOLD_ADMIN],
)
async def remove_user(call: Call) -> dict[str, Any]:
    p = call.principal
    target = await call.gateway.store.async_read(lambda c: users.get_user(c, user_id=call.path["user_id"]))
    if target is None or (p.role is Role.HOUSEHOLD_ADMIN and target.household_id != p.household_id):
        raise not_found(f"user {call.path['user_id']!r}")
    if target.id == p.user_id:
        raise ApiError("forbidden", "you cannot remove your own account")
    await call.gateway.store.async_write(lambda db: users.delete_user(db.conn, target.id, by=p.name))
    call.request.app[ACCOUNTS].forget_user(target.id)
    return {"removed": target.id}


# -- devices ---------------------------------------------------------------------


@ROUTES.op(
    "GET",
    "/api/v1/devices",
    summary="List the device inventory (online, battery, firmware, last seen)",
    tag="devices",
    description=HEALTH_STATE_NOTE,
    response={
        "type": "object",
        "properties": {"items": {"type": "array", "items": DEVICE_SCHEMA}, "total": {"type": "integer"}},
    },
    roles=[Role.MANAGER, Role.INSTALLER, Role.PROVIDER, *MEMBERS],
    query={
        "building_id": ID,
        "household_id": ID,
        "available": {"type": "boolean"},
        "kind": ID,
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
        "offset": {"type": "integer", "minimum": 0},
    },
)
async def inventory(call: Call) -> dict[str, Any]:
    registry = call.gateway.registry
    q = call.query
    visible = set(reachable(call.principal, call.gateway))
    items = []
    for device in sorted(registry.devices.values(), key=lambda d: d.id):
        if device.household_id not in visible:
            continue
        if "household_id" in q and device.household_id != q["household_id"]:
            continue
        if "available" in q and device.available != q["available"]:
            continue
        if "building_id" in q:
            household = registry.households.get(device.household_id)
            unit = registry.units.get(household.unit_id) if household else None
            if unit is None or unit.building_id != q["building_id"]:
                continue
        view = device_view(device, call.principal, call.gateway)
        if "kind" in q and not any(c["kind"] == q["kind"] for c in view["capabilities"]):
            continue
        if not view["capabilities"]:
            continue
        view.pop("topic", None)
        items.append(view)
    offset, limit = q.get("offset", 0), q.get("limit", 100)
    return {
        "items": items[offset : offset + limit],
        "total": len(items),
        "offset": offset,
        "limit": limit,
    }


@ROUTES.op(
    "GET",
    "/api/v1/households/{household_id}/devices/{device_id}",
    summary="Read one device with the state of each capability",
    tag="devices",
    description=HEALTH_STATE_NOTE,
    response=DEVICE_SCHEMA,
)
async def get_device(call: Call) -> dict[str, Any]:
    device = call.gateway.registry.device(call.path["device_id"])
    if device is None or device.household_id != call.household_id:
        raise not_found(f"device {call.path['device_id']!r}")
    return device_view(device, call.principal, call.gateway)


@ROUTES.op(
    "POST",
    "/api/v1/households/{household_id}/devices/{device_id}/commands",
    summary="Send a command to a device capability (not_supported when the device cannot)",
    tag="devices",
    roles=[Role.RESIDENT, Role.HOUSEHOLD_ADMIN, Role.MANAGER, Role.INSTALLER],
    body=obj({"capability": text(64), "value": {}}, ["capability", "value"]),
)
async def command(call: Call) -> dict[str, Any]:
    device = call.gateway.registry.device(call.path["device_id"])
    if device is None or device.household_id != call.household_id:
        raise not_found(f"device {call.path['device_id']!r}")
    capability = call.body["capability"]
    cap = device.profile.capability(capability)
    if cap is None or cap.access != "rw":
        raise ApiError(
            "not_supported",
            f"device {device.id!r} has no writable capability {capability!r}; "
            f"writable: {[c.key for c in device.profile.capabilities if c.access == 'rw']}",
        )
    context = Context(household=call.household_id, origin="portal", user=call.principal.name)
    try:
        result = await call.gateway.commands.async_send(
            device.id, capability, call.body["value"], context=context
        )
    except CommandError as exc:
        raise ApiError(exc.code, exc.message) from None
    return {
        "device_id": device.id,
        "capability": capability,
        "sent": True,
        "ts": time.time(),
        "result": result,
    }


@ROUTES.op(
    "GET",
    "/api/v1/households/{household_id}/residents",
    summary="List the people living in a household",
    tag="members",
    roles=[Role.RESIDENT, Role.HOUSEHOLD_ADMIN, Role.CARER, Role.MANAGER],
)
async def residents(call: Call) -> dict[str, Any]:
    items = [r.as_dict() for r in call.gateway.registry.household_residents(call.household_id)]
    return {"items": items, "total": len(items)}


def scoped_households(principal: Principal | None, gateway: Any) -> list[str] | None:
    """For the legacy list views: None (everything) for this machine without an account."""
    if principal is None:
        return None
    return [h for h in reachable(principal, gateway) if reaches(principal, gateway, h)]
