"""`POST /api/v1/alerts/{alert_id}/cancel`: the resident's deliberate "I'm OK".

Not a resolution: the alert is kept, marked as cancelled by the resident, and
its escalation policy says whether the duty desk calls back (`on_cancel`,
`services/alerts/escalation.py`). Only the household's own members (and its
paired TV) may say so; a carer or the duty desk acknowledges or resolves.
"""

from __future__ import annotations

from typing import Any, Final

from linli.gateway.users import Role
from linli.portal.api.alerts import visible_alert
from linli.portal.api.errors import ApiError
from linli.portal.api.operations import Api, Call, obj, text
from linli.portal.api.shapes import public_alert
from linli.portal.auth.middleware import ACCOUNTS
from linli.services.alerts import ALERTS

CANCELLERS: Final = [Role.RESIDENT, Role.HOUSEHOLD_ADMIN]


def _alert_id(call: Call) -> int:
    raw = call.path["alert_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 20:
        raise ApiError("not_found", f"no alert {raw!r}, or it is not yours to see")
    return int(raw)


async def _guard(call: Call) -> None:
    await visible_alert(call, _alert_id(call))


#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()


@ROUTES.op(
    "POST",
    "/api/v1/alerts/{alert_id}/cancel",
    summary='Cancel an alarm as the resident ("I\'m OK"): kept, marked, and called back per policy',
    tag="alerts",
    roles=CANCELLERS,
    body=obj({"note": text(500, 0)}),
    guard=_guard,
)
async def cancel(call: Call) -> dict[str, Any]:
    alert_id = _alert_id(call)
    alert = await visible_alert(call, alert_id)
    engine = call.component(ALERTS)
    try:
        cancelled = await engine.async_cancel(alert_id, call.principal.name, call.body.get("note", ""))
    except ValueError as exc:  # AlertError: resolved meanwhile
        code = getattr(exc, "code", "invalid")
        raise ApiError(
            "conflict" if code == "not_found" else code,
            "this alert is closed already; nothing to cancel" if code == "not_found" else str(exc),
        ) from None
    await call.request.app[ACCOUNTS].async_audit(
        call.principal,
        "alert.cancel",
        household_id=alert["household_id"],
        target=str(alert_id),
        detail={"call_back": (cancelled.data.get("cancelled") or {}).get("call_back")},
        ip=call.ip,
    )
    return public_alert(cancelled.as_dict())
