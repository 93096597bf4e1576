"""REST routes of the discovery inbox (`/api/v1/inbox`), over the gateway's Python API.

    GET  /api/v1/inbox[?status=pending|approved|rejected|ignored|all][&source=mqtt|zeroconf|ssdp]
    GET  /api/v1/inbox/{id}                 the item and every decision about it
    POST /api/v1/inbox/{id}/approve         {"household_id", "room"?, "name"?, "profile_id"?, "device_id"?}
    POST /api/v1/inbox/bulk-approve         {"items": [id, …], "household_id", "room"?} (≤ 5,000 items)
    POST /api/v1/inbox/{id}/reject          {"reason"?}
    POST /api/v1/inbox/{id}/ignore
    POST /api/v1/inbox/{id}/restore         back to pending
    POST /api/v1/inbox/scan                 search the network now (SSDP M-SEARCH)

Every decision names who took it: the signed-in principal (the auth middleware
lets only managers and installers in). A `"by"` field or an `X-Linli-User`
header is ignored. Errors are JSON: `{"error": {"code": "...", "message": "..."}}`.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from aiohttp import web

from linli.gateway.discovery import Discovery, Inbox, InboxError, InboxStatus, Source, check_actor
from linli.gateway.discovery.model import InboxItem
from linli.gateway.discovery.refusals import refusal_for
from linli.gateway.runtime import Gateway
from linli.portal.api.operations import PRINCIPAL
from linli.portal.auth.principal import Principal

_STATUS_OF: Final = {
    "unauthenticated": 401,
    "not_found": 404,
    "actor_required": 400,
    "bad_request": 400,
    "already_approved": 409,
    "not_restorable": 409,
    "no_profile": 409,
    "not_adoptable": 409,
    "no_household": 409,
    "registry": 409,
    "wrong_household": 409,
    "adapter": 409,
    "unavailable": 503,
}
MAX_LIST: Final = 5000
MAX_BULK: Final = 5000


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(code: str, message: str) -> web.Response:
    return _json({"error": {"code": code, "message": message}}, _STATUS_OF.get(code, 400))


def _shown(inbox: Inbox, item: InboxItem) -> dict[str, Any]:
    """The item as the inbox pages show it: its adapter, and why it cannot be adopted in both
    languages when that is known (the page says it in the reader's words)."""
    adapter = inbox.adopter_for(item)
    refusal = refusal_for(item.announcements()) if adapter is None and item.profile_id is None else None
    return {**item.as_dict(), "adapter": adapter} | ({"refusal": refusal.as_dict()} if refusal else {})


class InboxRoutes:
    """The handlers; `gateway_key` is the portal app's key for the Gateway."""

    def __init__(self, gateway_key: web.AppKey[Gateway]) -> None:
        self._key = gateway_key

    def _inbox(self, request: web.Request) -> Inbox:
        component = request.app[self._key].components.get("discovery")
        if not isinstance(component, Discovery) or component.inbox is None:
            raise InboxError(
                "unavailable",
                "discovery is not running: add gateway.discovery:Discovery to the components",
            )
        return component.inbox

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise InboxError("bad_request", f"the request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise InboxError("bad_request", "the request body must be a JSON object")
        return body

    @staticmethod
    def _actor(request: web.Request, body: dict[str, Any]) -> str:
        # Who decides is who signed in (the auth middleware put them on the request): never
        # a header or a body field, which anyone can write.
        principal: Principal | None = request.get(PRINCIPAL)
        if principal is None:
            raise InboxError("unauthenticated", "sign in first: every inbox decision names who took it")
        return check_actor(principal.name)

    @staticmethod
    def _text(body: dict[str, Any], name: str, *, required: bool = False, limit: int = 128) -> str | None:
        value = body.get(name)
        if value is None:
            if required:
                raise InboxError("bad_request", f"'{name}' is required")
            return None
        if not isinstance(value, str) or len(value) > limit:
            raise InboxError("bad_request", f"'{name}' must be a string of at most {limit} characters")
        return value

    async def list_items(self, request: web.Request) -> web.Response:
        try:
            inbox = self._inbox(request)
            status_text = request.query.get("status", "pending")
            if status_text == "all":
                status = None
            else:
                try:
                    status = InboxStatus(status_text)
                except ValueError:
                    raise InboxError(
                        "bad_request",
                        f"status {status_text!r} is not one of pending, approved, rejected, ignored, all",
                    ) from None
            source_text = request.query.get("source")
            try:
                source = Source(source_text) if source_text else None
            except ValueError:
                raise InboxError(
                    "bad_request", f"source {source_text!r} is not mqtt, zeroconf or ssdp"
                ) from None
            try:
                limit = min(MAX_LIST, max(1, int(request.query.get("limit", 500))))
            except ValueError:
                raise InboxError("bad_request", "limit must be a number") from None
        except InboxError as exc:
            return _error(exc.code, exc.message)
        items = inbox.list_items(status)
        if source is not None:
            items = [i for i in items if source in i.sources]
        return _json(
            {
                "status": status_text,
                "items": [_shown(inbox, item) for item in items[:limit]],
                "total": len(items),
                "counts": inbox.counts(),
            }
        )

    async def get_item(self, request: web.Request) -> web.Response:
        try:
            inbox = self._inbox(request)
            item_id = request.match_info["item_id"]
            item = inbox.get(item_id)
            if item is None:
                raise InboxError("not_found", f"no inbox item {item_id!r}")
        except InboxError as exc:
            return _error(exc.code, exc.message)
        decisions = await inbox.async_decisions(item.id)
        return _json(
            {
                **_shown(inbox, item),
                "decisions": [d.as_dict() for d in decisions],
            }
        )

    async def approve(self, request: web.Request) -> web.Response:
        try:
            inbox = self._inbox(request)
            body = await self._body(request)
            by = self._actor(request, body)
            household_id = self._text(body, "household_id", required=True, limit=64)
            assert household_id is not None
            device = await inbox.async_approve(
                request.match_info["item_id"],
                household_id=household_id,
                by=by,
                name=self._text(body, "name"),
                room=self._text(body, "room", limit=64),
                profile_id=self._text(body, "profile_id"),
                device_id=self._text(body, "device_id", limit=64),
            )
        except InboxError as exc:
            return _error(exc.code, exc.message)
        item = inbox.get(request.match_info["item_id"])
        # The device's own MQTT credential, shown this once (where the broker enforces them)
        mqtt = None
        if item is not None and inbox.adopter_for(item) is None:  # adapters' devices are not MQTT clients
            mqtt = await request.app[self._key].mqtt_credentials.async_provision(device)
        return _json(
            {"item": item.as_dict() if item else None, "device": device.as_dict()}
            | ({"mqtt": mqtt} if mqtt else {})
        )

    async def bulk_approve(self, request: web.Request) -> web.Response:
        """Approve the selected items into one household (and room), in one call.

        Answers what was approved (with each device's MQTT credential, shown this once)
        and what was refused with its reason; a refused item does not stop the others.
        """
        try:
            inbox = self._inbox(request)
            body = await self._body(request)
            by = self._actor(request, body)
            household_id = self._text(body, "household_id", required=True, limit=64)
            assert household_id is not None
            items = body.get("items")
            if (
                not isinstance(items, list)
                or not items
                or len(items) > MAX_BULK
                or not all(isinstance(i, str) and 0 < len(i) <= 128 for i in items)
            ):
                raise InboxError(
                    "bad_request", f"'items' must be a list of 1 to {MAX_BULK} inbox item ids (strings)"
                )
            devices, refused = await inbox.async_approve_many(
                items, household_id=household_id, by=by, room=self._text(body, "room", limit=64)
            )
        except InboxError as exc:
            return _error(exc.code, exc.message)
        gateway = request.app[self._key]
        approved = {d.id for d in devices}
        by_device = {i.device_id: i for i in inbox.items.values() if i.device_id in approved}
        # adapters' devices (set-top boxes, ESPHome) are not MQTT clients: no credential for them
        mqtt_devices = [
            d for d in devices if d.id in by_device and inbox.adopter_for(by_device[d.id]) is None
        ]
        credentials = await gateway.mqtt_credentials.async_provision_many(mqtt_devices)
        principal: Principal | None = request.get(PRINCIPAL)
        if principal is not None:
            from linli.portal.auth.middleware import ACCOUNTS  # the middleware imports this module

            await request.app[ACCOUNTS].async_audit(
                principal,
                "device.approve_many",
                household_id=household_id,
                detail={"approved": len(devices), "refused": len(refused)},
                ip=request.remote,
            )
        return _json(
            {
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
        )

    async def reject(self, request: web.Request) -> web.Response:
        try:
            inbox = self._inbox(request)
            body = await self._body(request)
            item = await inbox.async_reject(
                request.match_info["item_id"],
                by=self._actor(request, body),
                reason=self._text(body, "reason", limit=500),
            )
        except InboxError as exc:
            return _error(exc.code, exc.message)
        return _json({"item": item.as_dict()})

    async def ignore(self, request: web.Request) -> web.Response:
        try:
            inbox = self._inbox(request)
            body = await self._body(request)
            item = await inbox.async_ignore(request.match_info["item_id"], by=self._actor(request, body))
        except InboxError as exc:
            return _error(exc.code, exc.message)
        return _json({"item": item.as_dict()})

    async def restore(self, request: web.Request) -> web.Response:
        try:
            inbox = self._inbox(request)
            body = await self._body(request)
            item = await inbox.async_restore(request.match_info["item_id"], by=self._actor(request, body))
        except InboxError as exc:
            return _error(exc.code, exc.message)
        return _json({"item": item.as_dict()})

    async def scan(self, request: web.Request) -> web.Response:
        try:
            self._inbox(request)
        except InboxError as exc:
            return _error(exc.code, exc.message)
        component = request.app[self._key].components["discovery"]
        assert isinstance(component, Discovery)
        return _json({"searching": component.async_scan()}, 202)


def register_inbox_routes(app: web.Application, gateway_key: web.AppKey[Gateway]) -> None:
    routes = InboxRoutes(gateway_key)
    app.router.add_get("/api/v1/inbox", routes.list_items)
    app.router.add_post("/api/v1/inbox/scan", routes.scan)
    app.router.add_post("/api/v1/inbox/bulk-approve", routes.bulk_approve)
    app.router.add_get("/api/v1/inbox/{item_id}", routes.get_item)
    app.router.add_post("/api/v1/inbox/{item_id}/approve", routes.approve)
    app.router.add_post("/api/v1/inbox/{item_id}/reject", routes.reject)
    app.router.add_post("/api/v1/inbox/{item_id}/ignore", routes.ignore)
    app.router.add_post("/api/v1/inbox/{item_id}/restore", routes.restore)
