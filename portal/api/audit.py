"""The audit log: search (managers: the community; household admins: their household)."""

from __future__ import annotations

from typing import Any, Final

from linli.gateway import users
from linli.gateway.users import Role
from linli.portal.api.operations import ID, Api, Call, text

_MEMBER_ROLES = frozenset({Role.RESIDENT.value, Role.HOUSEHOLD_ADMIN.value, Role.CARER.value})


#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()


@ROUTES.op(
    "GET",
    "/api/v1/audit",
    summary="Search the audit log (newest first)",
    tag="audit",
    roles=[Role.MANAGER, Role.HOUSEHOLD_ADMIN],
    query={
        "actor": text(64),
        "action": text(64),
        "household_id": ID,
        "since": {"type": "number"},
        "until": {"type": "number"},
        "q": text(100),
        "limit": {"type": "integer", "minimum": 1, "maximum": 500},
        "offset": {"type": "integer", "minimum": 0},
    },
)
async def search(call: Call) -> dict[str, Any]:
    q, p = call.query, call.principal
    households: list[str] | None = None
    if p.role is Role.HOUSEHOLD_ADMIN:
        households = [p.household_id] if p.household_id else []
        if "household_id" in q and q["household_id"] not in households:
            households = []
    elif "household_id" in q:
        households = [q["household_id"]]
    limit, offset = q.get("limit", 100), q.get("offset", 0)
    entries, total = await call.gateway.store.async_read(
        lambda conn: users.query_audit(
            conn,
            household_ids=households,
            actor=q.get("actor"),
            action=q.get("action"),
            since=q.get("since"),
            until=q.get("until"),
            text=q.get("q"),
            limit=limit,
            offset=offset,
        )
    )
    if p.role is Role.HOUSEHOLD_ADMIN:
        # The household reads what was done to it, not where the office's staff sat:
        # addresses only of its own members' actions.
        for entry in entries:
            if entry.get("role") not in _MEMBER_ROLES:
                entry["ip"] = None
    return {"items": entries, "total": total, "limit": limit, "offset": offset}
