"""The household alarm: state, arm and disarm with a PIN, one's own PIN (each change audited)."""

from __future__ import annotations

from typing import Any, Final

from linli.gateway.users import Role
from linli.portal.api.errors import ApiError
from linli.portal.api.operations import Api, Call, obj
from linli.portal.auth.middleware import ACCOUNTS
from linli.services.security import SECURITY

PIN: Final = {"type": "string", "pattern": "^[0-9]{4,8}$"}
MEMBERS: Final = [Role.RESIDENT, Role.HOUSEHOLD_ADMIN]


def _security_error(exc: ValueError) -> ApiError:
    code = getattr(exc, "code", "invalid")
    data = dict(getattr(exc, "data", {}) or {})
    if "remaining_s" in data and code == "locked_out":
        data["retry_after_s"] = data["remaining_s"]
    return ApiError(code, getattr(exc, "message", str(exc)), **data)


#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()


@ROUTES.op(
    "GET",
    "/api/v1/households/{household_id}/alarm",
    summary="Read the alarm panel: state, time left, sensors, bypasses",
    tag="alarm",
    roles=[*MEMBERS, Role.CARER, Role.MANAGER],
)
async def status(call: Call) -> dict[str, Any]:
    result: dict[str, Any] = call.component(SECURITY).status(call.household_id)
    return result


async def _change(call: Call, action: str) -> dict[str, Any]:
    security = call.component(SECURITY)
    accounts = call.request.app[ACCOUNTS]
    user, pin = call.principal.name, call.body["pin"]
    mode = call.body.get("mode")
    try:
        if action == "arm":
            result = await security.async_arm(
                call.household_id, mode, user, pin, force=call.body.get("force", False)
            )
        else:
            result = await security.async_disarm(call.household_id, user, pin)
    except ValueError as exc:
        await accounts.async_audit(
            call.principal,
            f"alarm.{action}",
            household_id=call.household_id,
            detail={"mode": mode} if mode else {},
            ip=call.ip,
            outcome=getattr(exc, "code", "refused"),
        )
        raise _security_error(exc) from None
    await accounts.async_audit(
        call.principal,
        f"alarm.{action}",
        household_id=call.household_id,
        detail={"mode": mode, "state": result["state"]} if mode else {"state": result["state"]},
        ip=call.ip,
    )
    return result


@ROUTES.op(
    "POST",
    "/api/v1/households/{household_id}/alarm/arm",
    summary="Arm the alarm with your PIN (refused while doors are open unless forced)",
    tag="alarm",
    roles=MEMBERS,
    body=obj(
        {
            "mode": {"enum": ["home", "away", "night", "vacation"]},
            "pin": PIN,
            "force": {"type": "boolean"},
        },
        ["mode", "pin"],
    ),
)
async def arm(call: Call) -> dict[str, Any]:
    return await _change(call, "arm")


@ROUTES.op(
    "POST",
    "/api/v1/households/{household_id}/alarm/disarm",
    summary="Disarm the alarm with your PIN",
    tag="alarm",
    roles=MEMBERS,
    body=obj({"pin": PIN}, ["pin"]),
)
async def disarm(call: Call) -> dict[str, Any]:
    return await _change(call, "disarm")


@ROUTES.op(
    "PUT",
    "/api/v1/households/{household_id}/alarm/pin",
    summary="Set your own alarm PIN (4 to 8 digits, stored hashed); changing it needs the current one",
    tag="alarm",
    roles=MEMBERS,
    body=obj({"pin": PIN, "current": PIN}, ["pin"]),
)
async def set_pin(call: Call) -> dict[str, Any]:
    try:
        await call.component(SECURITY).async_set_pin(
            call.household_id, call.principal.name, call.body["pin"], current=call.body.get("current")
        )
    except ValueError as exc:
        raise _security_error(exc) from None
    await call.request.app[ACCOUNTS].async_audit(
        call.principal, "alarm.pin", household_id=call.household_id, ip=call.ip
    )
    return {"pin_set": True}
