"""Health readings, trends and the FHIR export — each gated by role and the household's consent."""

from __future__ import annotations

import time
from typing import Any, Final

from linli.gateway.users import Role
from linli.portal.api.errors import ApiError, not_found
from linli.portal.api.operations import ID, Api, Call, obj, text
from linli.portal.auth.middleware import ACCOUNTS
from linli.portal.auth.principal import health_role, kind_allowed
from linli.services.health import HEALTH

KINDS: Final = ["blood_pressure", "heart_rate", "spo2", "glucose", "weight", "body_temperature"]
READERS: Final = [Role.RESIDENT, Role.HOUSEHOLD_ADMIN, Role.CARER, Role.MANAGER, Role.PROVIDER]
PURPOSES: Final = ["carer", "provider", "export"]


def _health(call: Call) -> Any:
    return call.component(HEALTH)


def _requester(call: Call) -> str:
    role = health_role(call.principal, call.gateway, call.household_id)
    if role is None:
        raise ApiError(
            "consent_required",
            f"household {call.household_id!r} has not consented to share health data with a "
            f"{call.principal.role.value}; a member of the household can record consent",
        )
    return role


def _resident(call: Call) -> str:
    rid = call.path["resident_id"]
    resident = call.gateway.registry.residents.get(rid)
    if resident is None or resident.household_id != call.household_id:
        raise not_found(f"resident {rid!r}")
    return rid


def _check_kind(call: Call, kind: str | None) -> None:
    if kind is not None and not kind_allowed(call.principal, kind):
        raise ApiError("forbidden", f"this key was not granted the capability kind {kind!r}")


async def _guard(coro: Any) -> Any:
    try:
        return await coro
    except PermissionError as exc:  # ConsentRefused
        raise ApiError("consent_required", str(exc)) from None
    except ValueError as exc:  # HealthError, bad period
        raise ApiError("invalid_query", str(exc)) from None


async def latest_vitals(call: Call, household_id: str) -> list[dict[str, Any]]:
    """The latest reading of each kind per resident, where the caller may see health data."""
    health = call.gateway.peer(HEALTH)
    role = health_role(call.principal, call.gateway, household_id)
    if health is None or role is None:
        return []
    since = time.time() - 30 * 86400
    result = []
    for resident in call.gateway.registry.household_residents(household_id):
        try:
            readings = await health.async_readings(resident.id, None, since, requester_role=role)
        except (PermissionError, ValueError):
            return []
        latest: dict[str, Any] = {}
        for reading in readings:
            if kind_allowed(call.principal, reading.kind):
                latest[reading.kind] = reading
        for _, reading in sorted(latest.items()):
            result.append({"resident_id": resident.id, "resident": resident.name, **reading.as_dict()})
    return result


#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()


_BASE = "/api/v1/households/{household_id}/residents/{resident_id}/health"


@ROUTES.op(
    "GET",
    _BASE + "/readings",
    summary="List a resident's readings (consent-gated outside the household)",
    tag="health",
    roles=READERS,
    query={
        "kind": {"enum": KINDS},
        "since": {"type": "number"},
        "until": {"type": "number"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 5000},
    },
)
async def readings(call: Call) -> dict[str, Any]:
    rid, role = _resident(call), _requester(call)
    q = call.query
    _check_kind(call, q.get("kind"))
    found = await _guard(
        _health(call).async_readings(
            rid,
            q.get("kind"),
            q.get("since"),
            q.get("until"),
            requester_role=role,
            limit=q.get("limit", 500),
        )
    )
    items = [r.as_dict() for r in found if kind_allowed(call.principal, r.kind)]
    return {"resident_id": rid, "items": items, "total": len(items)}


@ROUTES.op(
    "GET",
    _BASE + "/trends",
    summary="Daily or weekly min/mean/max of one vital sign (for charts)",
    tag="health",
    roles=READERS,
    query={"kind": {"enum": KINDS}, "period": {"enum": ["day", "week"]}, "since": {"type": "number"}},
)
async def trends(call: Call) -> dict[str, Any]:
    rid, role = _resident(call), _requester(call)
    kind = call.query.get("kind", "blood_pressure")
    _check_kind(call, kind)
    points = await _guard(
        _health(call).async_trends(
            rid, kind, call.query.get("period", "day"), call.query.get("since"), requester_role=role
        )
    )
    return {"resident_id": rid, "kind": kind, "points": [p.as_dict() for p in points]}


@ROUTES.op(
    "GET",
    _BASE + "/fhir",
    summary="Export a resident's readings as a FHIR R4 Bundle (audited; consent-gated)",
    tag="health",
    roles=READERS,
    query={"start": {"type": "number"}, "end": {"type": "number"}},
)
async def fhir(call: Call) -> dict[str, Any]:
    rid, role = _resident(call), _requester(call)
    if call.principal.role is Role.PROVIDER and not set(KINDS) <= call.principal.scope_kinds:
        raise ApiError("forbidden", "a FHIR export needs every health kind granted to this key")
    end = call.query.get("end", time.time() + 1)
    start = call.query.get("start", end - 30 * 86400)
    bundle = await _guard(_health(call).async_fhir_bundle(rid, start, end, requester_role=role))
    await call.request.app[ACCOUNTS].async_audit(
        call.principal,
        "export.fhir",
        household_id=call.household_id,
        target=rid,
        detail={"start": start, "end": end, "entries": len(bundle.get("entry", []))},
        ip=call.ip,
    )
    result: dict[str, Any] = bundle
    return result


@ROUTES.op(
    "GET",
    "/api/v1/households/{household_id}/consent",
    summary="Read the household's consent to share health data, per purpose",
    tag="health",
    roles=[Role.RESIDENT, Role.HOUSEHOLD_ADMIN, Role.CARER, Role.MANAGER],
)
async def consent(call: Call) -> dict[str, Any]:
    return {"household_id": call.household_id, "consent": _health(call).consent(call.household_id)}


@ROUTES.op(
    "GET",
    "/api/v1/consent",
    summary="Consent overview of every household (no health values)",
    tag="health",
    roles=[Role.MANAGER],
)
async def overview(call: Call) -> dict[str, Any]:
    health = _health(call)
    items = [
        {"household_id": h, "consent": {p: health.may_share(h, p) for p in PURPOSES}}
        for h in sorted(call.gateway.registry.households)
    ]
    return {"items": items, "total": len(items)}


@ROUTES.op(
    "POST",
    "/api/v1/households/{household_id}/consent",
    summary="Grant or withdraw the household's consent for a purpose (audited)",
    tag="health",
    roles=[Role.HOUSEHOLD_ADMIN],
    body=obj(
        {"purpose": {"enum": PURPOSES}, "granted": {"type": "boolean"}, "note": text(500, 0)},
        ["purpose", "granted"],
    ),
)
async def set_consent(call: Call) -> dict[str, Any]:
    health, b = _health(call), call.body
    change = health.async_grant_consent if b["granted"] else health.async_withdraw_consent
    await change(call.household_id, by=call.principal.name, purposes=[b["purpose"]], note=b.get("note", ""))
    await call.request.app[ACCOUNTS].async_audit(
        call.principal,
        "consent.grant" if b["granted"] else "consent.withdraw",
        household_id=call.household_id,
        target=b["purpose"],
        ip=call.ip,
    )
    return {"household_id": call.household_id, "consent": health.consent(call.household_id)}


@ROUTES.op(
    "GET",
    "/api/v1/households/{household_id}/health/thresholds/{resident_id}",
    summary="Read a resident's alert thresholds",
    tag="health",
    roles=[Role.RESIDENT, Role.HOUSEHOLD_ADMIN, Role.CARER],
)
async def thresholds(call: Call) -> dict[str, Any]:
    _requester(call)
    rid = _resident(call)
    return {
        "resident_id": rid,
        "thresholds": _health(call).thresholds(rid).as_dict(),
        "note": "not a diagnosis",
    }


@ROUTES.op(
    "PATCH",
    "/api/v1/households/{household_id}/health/thresholds/{resident_id}",
    summary="Move a resident's alert thresholds within the safe limits (audited)",
    tag="health",
    roles=[Role.HOUSEHOLD_ADMIN],
    body={"type": "object", "additionalProperties": {"type": "number"}, "maxProperties": 20},
)
async def set_thresholds(call: Call) -> dict[str, Any]:
    rid = _resident(call)
    try:
        updated = await _health(call).async_set_thresholds(rid, by=call.principal.name, **call.body)
    except (TypeError, ValueError) as exc:
        raise ApiError("invalid_body", str(exc)) from None
    await call.request.app[ACCOUNTS].async_audit(
        call.principal,
        "health.thresholds",
        household_id=call.household_id,
        target=rid,
        detail={"changed": sorted(call.body)},
        ip=call.ip,
    )
    return {"resident_id": rid, "thresholds": updated.as_dict()}


__all__ = ["ID", "ROUTES", "latest_vitals"]
