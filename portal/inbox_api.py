"""REST routes of the discovery inbox (`/api/v1/inbox`), over the gateway's Python API.

    GET  /api/v1/inbox[?status=pending|approved|rejected|ignored|all][&source=mqtt|zeroconf|ssdp]
    GET  /api/v1/inbox/{id}                 the item and every decision about it
    POST /api/v1/inbox/{id}/approve         {"household_id", "room"?, "name"?, "profile_id"?, "device_id"?}
    POST /api/v1/inbox/bulk-approve         {"items": [id, …], "household_id", "room"?} (≤ 5,000 items)
    POST /api/v1/inbox/{id}/reject          {"reason"?}
    POST /api/v1/inbox/{id}/ignore
    POST /api/v1/inbox/{id}/restore         back to pending
    POST /api/v1/inbox/scan                 search the network now (SSDP M-SEARCH)

Each route is declared like every other API operation (`operations.py`): the
property office and installers may call it (`INBOX_ROLES`), and the OpenAPI
document is built from the same declaration. Every decision names who took it:
the signed-in principal, and is audited; a `"by"` field or an `X-Linli-User`
header is ignored. Errors are the portal's one shape and table (`api/errors.py`).
"""

from __future__ import annotations

from typing import Any, Final

from linli.gateway.discovery import DISCOVERY, Discovery, Inbox, InboxError, InboxStatus, Source, check_actor
from linli.gateway.discovery.model import InboxItem
from linli.gateway.discovery.refusals import refusal_for
from linli.portal.api.operations import Api, Call, obj
from linli.portal.auth.grants import INBOX_ROLES
from linli.portal.auth.middleware import ACCOUNTS

#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()
MAX_LIST: Final = 5000
MAX_BULK: Final = 5000
_ITEM: Final = "/api/v1/inbox/{item_id}"
#: A name the request gives, at most `n` characters (the handler says when a required one is missing).
_NAME: Final = {64: {"type": "string", "maxLength": 64}, 128: {"type": "string", "maxLength": 128}}
_IGNORED_BY: Final = {"description": "ignored: who decides is who signed in"}


def _shown(inbox: Inbox, item: InboxItem) -> dict[str, Any]:
    """The item as the inbox pages show it: its adapter, and why it cannot be adopted in both
    languages when that is known (the page says it in the reader's words)."""
    adapter = inbox.adopter_for(item)
    refusal = refusal_for(item.announcements()) if adapter is None and item.profile_id is None else None
    return {**item.as_dict(), "adapter": adapter} | ({"refusal": refusal.as_dict()} if refusal else {})


def _discovery(call: Call) -> Discovery:
    component = call.gateway.peer(DISCOVERY)
    if not isinstance(component, Discovery) or component.inbox is None:
        raise InboxError(
            "unavailable", "discovery is not running: add gateway.discovery:Discovery to the components"
        )
    return component


def _inbox(call: Call) -> Inbox:
    inbox = _discovery(call).inbox
    assert inbox is not None
    return inbox


def _actor(call: Call) -> str:
    # Who decides is who signed in (the operation lets nobody else in): never a header
    # or a body field, which anyone can write.
    return check_actor(call.principal.name)


def _required(call: Call, name: str) -> str:
    value: str | None = call.body.get(name)
    if value is None:
        raise InboxError("bad_request", f"'{name}' is required")
    return value


async def _audit(call: Call, action: str, **where: Any) -> None:
    await call.request.app[ACCOUNTS].async_audit(call.principal, f"device.{action}", ip=call.ip, **where)


@ROUTES.op(
    "GET",
    "/api/v1/inbox",
    summary="List the discovery inbox",
    tag="inbox",
    roles=INBOX_ROLES,
    query={
        "status": {"enum": [*(s.value for s in InboxStatus), "all"]},
        "source": {"enum": [s.value for s in Source]},
        "limit": {"type": "integer"},
    },
)
async def list_items(call: Call) -> dict[str, Any]:
    inbox = _inbox(call)
    status_text = call.query.get("status", "pending")
    status = None if status_text == "all" else InboxStatus(status_text)
    source = Source(call.query["source"]) if "source" in call.query else None
    limit = min(MAX_LIST, max(1, call.query.get("limit", 500)))
    items = inbox.list_items(status)
    if source is not None:
        items = [i for i in items if source in i.sources]
    return {
        "status": status_text,
        "items": [_shown(inbox, item) for item in items[:limit]],
        "total": len(items),
        "counts": inbox.counts(),
    }


@ROUTES.op(
    "POST",
    "/api/v1/inbox/scan",
    summary="Search the network for devices now",
    tag="inbox",
    roles=INBOX_ROLES,
    status=202,  # a search is started, not done
)
async def scan(call: Call) -> dict[str, Any]:
    return {"searching": _discovery(call).async_scan()}


@ROUTES.op(
    "POST",
    "/api/v1/inbox/bulk-approve",
    summary="Approve many discovered devices into one household (audited)",
    tag="inbox",
    roles=INBOX_ROLES,
    body=obj(
        {
            "items": {"description": f"1 to {MAX_BULK} inbox item ids (strings)"},
            "household_id": _NAME[64],
            "room": _NAME[64],
            "by": _IGNORED_BY,
        }
    ),
    description=(
        "Answers what was approved (with each device's MQTT credential, shown this once) and what "
        "was refused with its reason; a refused item does not stop the others."
    ),
)
async def bulk_approve(call: Call) -> dict[str, Any]:
    inbox = _inbox(call)
    by = _actor(call)
    household_id = _required(call, "household_id")
    items = call.body.get("items")
    if (
        not isinstance(items, list)
        or not items
        or len(items) > MAX_BULK
        or not all(isinstance(i, str) and 0 < len(i) <= 128 for i in items)
    ):
        raise InboxError("bad_request", f"'items' must be a list of 1 to {MAX_BULK} inbox item ids (strings)")
    devices, refused = await inbox.async_approve_many(
        items, household_id=household_id, by=by, room=call.body.get("room")
    )
    approved = {d.id for d in devices}
    by_device = {i.device_id: i for i in inbox.items.values() if i.device_id in approved}
    # adapters' devices (set-top boxes, ESPHome) are not MQTT clients: no credential for them
    mqtt_devices = [d for d in devices if d.id in by_device and inbox.adopter_for(by_device[d.id]) is None]
    credentials = await call.gateway.mqtt_credentials.async_provision_many(mqtt_devices)
    await _audit(
        call,
        "approve_many",
        household_id=household_id,
        detail={"approved": len(devices), "refused": len(refused)},
    )
    return {
        "approved": [
            {"item_id": by_device[d.id].id if d.id in by_device else None, "device": d.as_dict()}
            | ({"mqtt": credentials[d.id]} if d.id in credentials else {})
            for d in devices
        ],
        "refused": [
            {"item_id": item_id, "error": {"code": exc.code, "message": exc.message}}
            for item_id, exc in refused
        ],
    }


@ROUTES.op("GET", _ITEM, summary="Read an inbox item and its decisions", tag="inbox", roles=INBOX_ROLES)
async def get_item(call: Call) -> dict[str, Any]:
    inbox = _inbox(call)
    item_id = call.path["item_id"]
    item = inbox.get(item_id)
    if item is None:
        raise InboxError("not_found", f"no inbox item {item_id!r}")
    decisions = await inbox.async_decisions(item.id)
    return {**_shown(inbox, item), "decisions": [d.as_dict() for d in decisions]}


@ROUTES.op(
    "POST",
    _ITEM + "/approve",
    summary="Approve a discovered device into a household (audited)",
    tag="inbox",
    roles=INBOX_ROLES,
    body=obj(
        {
            "household_id": _NAME[64],
            "room": _NAME[64],
            "name": _NAME[128],
            "profile_id": _NAME[128],
            "device_id": _NAME[64],
            "by": _IGNORED_BY,
        }
    ),
)
async def approve(call: Call) -> dict[str, Any]:
    inbox = _inbox(call)
    item_id = call.path["item_id"]
    device = await inbox.async_approve(
        item_id,
        household_id=_required(call, "household_id"),
        by=_actor(call),
        name=call.body.get("name"),
        room=call.body.get("room"),
        profile_id=call.body.get("profile_id"),
        device_id=call.body.get("device_id"),
    )
    await _audit(call, "approve", target=item_id)
    item = inbox.get(item_id)
    # The device's own MQTT credential, shown this once (where the broker enforces them)
    mqtt = None
    if item is not None and inbox.adopter_for(item) is None:  # adapters' devices are not MQTT clients
        mqtt = await call.gateway.mqtt_credentials.async_provision(device)
    return {"item": item.as_dict() if item else None, "device": device.as_dict()} | (
        {"mqtt": mqtt} if mqtt else {}
    )


@ROUTES.op(
    "POST",
    _ITEM + "/reject",
    summary="Reject a discovered device (audited)",
    tag="inbox",
    roles=INBOX_ROLES,
    body=obj({"reason": {"type": "string", "maxLength": 500}, "by": _IGNORED_BY}),
)
async def reject(call: Call) -> dict[str, Any]:
    item_id = call.path["item_id"]
    item = await _inbox(call).async_reject(item_id, by=_actor(call), reason=call.body.get("reason"))
    await _audit(call, "reject", target=item_id)
    return {"item": item.as_dict()}


@ROUTES.op(
    "POST",
    _ITEM + "/ignore",
    summary="Hide a discovered device (audited)",
    tag="inbox",
    roles=INBOX_ROLES,
    body=obj({"by": _IGNORED_BY}),
)
async def ignore(call: Call) -> dict[str, Any]:
    item_id = call.path["item_id"]
    item = await _inbox(call).async_ignore(item_id, by=_actor(call))
    await _audit(call, "ignore", target=item_id)
    return {"item": item.as_dict()}


@ROUTES.op(
    "POST",
    _ITEM + "/restore",
    summary="Put an item back to pending (audited)",
    tag="inbox",
    roles=INBOX_ROLES,
    body=obj({"by": _IGNORED_BY}),
)
async def restore(call: Call) -> dict[str, Any]:
    item_id = call.path["item_id"]
    item = await _inbox(call).async_restore(item_id, by=_actor(call))
    await _audit(call, "restore", target=item_id)
    return {"item": item.as_dict()}
