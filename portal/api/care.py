"""Elder care: settings (check-in time, inactivity), the daily check-in, reminders."""

from __future__ import annotations

from typing import Any, Final

from linli.gateway.users import Role
from linli.portal.api.errors import ApiError, not_found
from linli.portal.api.operations import ID, Api, Call, obj, text
from linli.portal.api.shapes import reminder_for
from linli.services.eldercare import ELDERCARE

MEMBERS: Final = [Role.RESIDENT, Role.HOUSEHOLD_ADMIN]
READERS: Final = [*MEMBERS, Role.CARER, Role.MANAGER]
HHMM: Final = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}


def _care(call: Call) -> Any:
    return call.component(ELDERCARE)


def _care_error(exc: ValueError) -> ApiError:
    return ApiError(getattr(exc, "code", "invalid_body"), getattr(exc, "message", str(exc)))


def _reminders(call: Call) -> list[dict[str, Any]]:
    return [
        reminder_for(r.as_dict(), call.principal, call.gateway)
        for r in sorted(_care(call).reminders.values(), key=lambda r: (r.times, r.id))
        if r.household_id == call.household_id
    ]


REMINDER: Final = obj(
    {
        "title": text(120),
        "times": {"type": "array", "items": HHMM, "minItems": 1, "maxItems": 12},
        "kind": {"enum": ["medication", "appointment"]},
        "resident_id": ID,
        "window_min": {"type": "number", "minimum": 5, "maximum": 720},
    },
    ["title", "times"],
)


async def _add_reminder(call: Call) -> dict[str, Any]:
    b = call.body
    rid = b.get("resident_id")
    if rid is not None:
        resident = call.gateway.registry.residents.get(rid)
        if resident is None or resident.household_id != call.household_id:
            raise not_found(f"resident {rid!r}")
    try:
        reminder = await _care(call).async_add_reminder(
            call.household_id,
            title=b["title"],
            times=b["times"],
            kind=b.get("kind", "medication"),
            resident_id=rid,
            window_min=b.get("window_min", 60),
        )
    except ValueError as exc:
        raise _care_error(exc) from None
    result: dict[str, Any] = reminder.as_dict()
    return result


#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()


_BASE = "/api/v1/households/{household_id}/care"


@ROUTES.op(
    "GET",
    _BASE,
    summary="Read care settings, today's check-in and the reminders",
    tag="care",
    roles=READERS,
)
async def read(call: Call) -> dict[str, Any]:
    care = _care(call)
    return {
        "household_id": call.household_id,
        "settings": care.settings(call.household_id),
        "checked_in_today": care.checked_in_today(call.household_id),
        "reminders": _reminders(call),
    }


@ROUTES.op(
    "PATCH",
    _BASE + "/settings",
    summary="Change care settings: check-in time and grace, inactivity, away",
    tag="care",
    roles=[Role.HOUSEHOLD_ADMIN, Role.MANAGER],
    body=obj(
        {
            "check_in": obj({"enabled": {"type": "boolean"}, "by": HHMM, "grace_min": {"type": "number"}}),
            "inactivity": {"type": "object", "maxProperties": 20},
            "away": {"type": "boolean"},
        }
    ),
)
async def configure(call: Call) -> dict[str, Any]:
    try:
        settings = await _care(call).async_configure(call.household_id, call.body)
    except ValueError as exc:
        raise _care_error(exc) from None
    return {"household_id": call.household_id, "settings": settings}


@ROUTES.op(
    "POST",
    _BASE + "/check-in",
    summary='Check in for today ("I\'m fine": one press of OK)',
    tag="care",
    roles=MEMBERS,
    body=obj({"resident_id": ID}),
)
async def check_in(call: Call) -> dict[str, Any]:
    rid = call.body.get("resident_id")
    if rid is not None:
        resident = call.gateway.registry.residents.get(rid)
        if resident is None or resident.household_id != call.household_id:
            raise not_found(f"resident {rid!r}")
    result: dict[str, Any] = await _care(call).async_check_in(
        call.household_id, call.principal.name, resident_id=rid
    )
    return result


@ROUTES.op("GET", _BASE + "/reminders", summary="List reminders", tag="care", roles=READERS)
async def reminders(call: Call) -> dict[str, Any]:
    items = _reminders(call)
    return {"items": items, "total": len(items)}


@ROUTES.op(
    "POST",
    _BASE + "/reminders",
    summary="Add a medication or appointment reminder",
    tag="care",
    roles=[Role.HOUSEHOLD_ADMIN, Role.CARER, Role.MANAGER],
    status=201,
    body=REMINDER,
)
async def add_reminder(call: Call) -> dict[str, Any]:
    return await _add_reminder(call)


def _own_reminder(call: Call) -> str:
    rid = call.path["reminder_id"]
    reminder = _care(call).reminders.get(rid)
    if reminder is None or reminder.household_id != call.household_id:
        raise not_found(f"reminder {rid!r}")
    return rid


@ROUTES.op(
    "DELETE",
    _BASE + "/reminders/{reminder_id}",
    summary="Remove a reminder",
    tag="care",
    roles=[Role.HOUSEHOLD_ADMIN, Role.CARER, Role.MANAGER],
)
async def remove_reminder(call: Call) -> dict[str, Any]:
    rid = _own_reminder(call)
    await _care(call).async_remove_reminder(rid)
    return {"removed": rid}


@ROUTES.op(
    "PUT",
    _BASE + "/reminders/{reminder_id}",
    summary="Change a reminder: the answer is the changed reminder, under a new id",
    tag="care",
    roles=[Role.HOUSEHOLD_ADMIN, Role.CARER, Role.MANAGER],
    description=(
        "The reminder is replaced as a whole (send every field you want kept): the new one "
        "is stored first, then the old one retired, so a refused change leaves the old one in "
        "place. Its schedule starts afresh from the new times."
    ),
    body=REMINDER,
)
async def change_reminder(call: Call) -> dict[str, Any]:
    old = _own_reminder(call)
    result = await _add_reminder(call)
    try:
        await _care(call).async_remove_reminder(old)
    except ValueError:  # changed or removed meanwhile by someone else: keep theirs, not both
        await _care(call).async_remove_reminder(result["id"])
        raise not_found(f"reminder {old!r}") from None
    return {**result, "replaces": old}


@ROUTES.op(
    "POST",
    _BASE + "/reminders/{reminder_id}/confirm",
    summary="Confirm a reminder (medicine taken, appointment noted)",
    tag="care",
    roles=MEMBERS,
)
async def confirm(call: Call) -> dict[str, Any]:
    rid = _own_reminder(call)
    done = await _care(call).async_confirm_reminder(rid, call.principal.name)
    return {"reminder_id": rid, "confirmed": done}
