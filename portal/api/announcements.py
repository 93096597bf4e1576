"""Announcements to the whole community, a building or one household: scheduled, with expiry.

Kept in memory (a community has dozens, not millions) and in the store; when
one starts, the WebSocket hub pushes it to every connected phone and TV in its
scope. The body is plain text: pages render it as text, never as HTML.

The region's announcements and emergency broadcasts, once the uplink has
verified their signature (`AnnouncementReceived`), join the list as
community-wide items with `source: "region"`, so every phone and the TV page
show them too; a manager may withdraw one locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from linli.gateway.component import ComponentApi
from linli.gateway.events import AnnouncementReceived
from linli.gateway.users import Role
from linli.portal.api.errors import ApiError, not_found
from linli.portal.api.operations import ID, Api, Call, obj, text
from linli.portal.auth.middleware import ACCOUNTS
from linli.portal.auth.principal import reachable

SCOPES: Final = ("community", "building", "household")
_COLUMNS: Final = "id, scope, scope_id, title, body, starts, expires, created, by, withdrawn, source, kind"


@dataclass(slots=True, kw_only=True)
class Announcement:
    id: str
    scope: str
    scope_id: str | None
    title: str
    body: str
    starts: float
    expires: float | None
    created: float
    by: str
    withdrawn: float | None = None
    source: str = "local"  # or "region"
    kind: str = "announcement"  # or "emergency" (from the region)
    pushed: bool = False

    def active(self, now: float) -> bool:
        return self.withdrawn is None and self.starts <= now and (self.expires is None or self.expires > now)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": self.scope,
            "scope_id": self.scope_id,
            "title": self.title,
            "body": self.body,
            "starts": self.starts,
            "expires": self.expires,
            "created": self.created,
            "by": self.by,
            "withdrawn": self.withdrawn,
            "source": self.source,
            "kind": self.kind,
        }


class Announcements:
    def __init__(self, gateway: ComponentApi) -> None:
        self.gateway = gateway
        self.items: dict[str, Announcement] = {}
        self.on_start: list[Any] = []  # callbacks(announcement) when one becomes active
        self._task: asyncio.Task[None] | None = None
        self._unlisten: Any = None

    async def async_start(self) -> None:
        rows = await self.gateway.store.async_read(
            lambda conn: conn.execute(f"SELECT {_COLUMNS} FROM announcements").fetchall()
        )
        now = time.time()
        for row in rows:
            item = Announcement(**dict(zip([c.strip() for c in _COLUMNS.split(",")], row, strict=True)))
            item.pushed = item.starts <= now
            self.items[item.id] = item
        self._task = asyncio.create_task(self._loop(), name="linli-portal-announcements")
        self._unlisten = self.gateway.bus.listen(AnnouncementReceived, self._on_region)

    def _on_region(self, event: AnnouncementReceived) -> None:
        item = Announcement(
            id=f"region-{event.announcement_id}"[:64],
            scope="community",
            scope_id=None,
            title=event.title,
            body=event.body,
            starts=min(event.issued_at, time.time()),
            expires=event.expires_at,
            created=time.time(),
            by="region",
            source="region",
            kind=event.kind,
        )
        if item.id not in self.items:
            self.gateway.spawn(self.async_add(item), "portal-region-announcement")

    async def async_stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.push_due(time.time())

    def push_due(self, now: float) -> None:
        for item in self.items.values():
            if not item.pushed and item.active(now):
                item.pushed = True
                for callback in self.on_start:
                    callback(item)

    def households_of(self, item: Announcement) -> set[str] | None:
        """The households an announcement is for (None: the whole community)."""
        registry = self.gateway.registry
        if item.scope == "community":
            return None
        if item.scope == "household":
            return {item.scope_id} if item.scope_id else set()
        units = {u.id for u in registry.units.values() if u.building_id == item.scope_id}
        return {h.id for h in registry.households.values() if h.unit_id in units}

    def visible(self, households: list[str], now: float, *, everything: bool = False) -> list[Announcement]:
        mine = set(households)
        result = []
        for item in self.items.values():
            if not everything and not item.active(now):
                continue
            scope = self.households_of(item)
            if everything or scope is None or scope & mine:
                result.append(item)
        return sorted(result, key=lambda a: a.starts, reverse=True)

    async def async_add(self, item: Announcement) -> None:
        await self.gateway.store.async_write(
            lambda db: db.conn.execute(
                f"INSERT OR IGNORE INTO announcements ({_COLUMNS}) VALUES ({', '.join('?' * 12)})",
                (
                    item.id,
                    item.scope,
                    item.scope_id,
                    item.title,
                    item.body,
                    item.starts,
                    item.expires,
                    item.created,
                    item.by,
                    None,
                    item.source,
                    item.kind,
                ),
            )
        )
        self.items[item.id] = item
        self.push_due(time.time())

    async def async_withdraw(self, item_id: str) -> Announcement:
        item = self.items[item_id]
        now = time.time()
        await self.gateway.store.async_write(
            lambda db: db.conn.execute("UPDATE announcements SET withdrawn = ? WHERE id = ?", (now, item_id))
        )
        item.withdrawn = now
        return item


ANNOUNCEMENTS: Final = web.AppKey("linli_announcements", Announcements)


#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()


@ROUTES.op(
    "GET",
    "/api/v1/announcements",
    summary="List the announcements for me (managers: every one, with ?all=true)",
    tag="announcements",
    query={"all": {"type": "boolean"}},
)
async def list_items(call: Call) -> dict[str, Any]:
    book: Announcements = call.request.app[ANNOUNCEMENTS]
    everything = bool(call.query.get("all")) and call.principal.role is Role.MANAGER
    items = [
        a.as_dict()
        for a in book.visible(reachable(call.principal, call.gateway), time.time(), everything=everything)
    ]
    return {"items": items, "total": len(items)}


@ROUTES.op(
    "POST",
    "/api/v1/announcements",
    summary="Announce to the community, a building or a household (scheduled, with expiry)",
    tag="announcements",
    roles=[Role.MANAGER],
    status=201,
    body=obj(
        {
            "title": text(120),
            "body": text(4000, 0),
            "scope": {"enum": list(SCOPES)},
            "scope_id": ID,
            "starts": {"type": "number"},
            "expires": {"type": "number"},
        },
        ["title", "scope"],
    ),
)
async def add(call: Call) -> dict[str, Any]:
    b, registry = call.body, call.gateway.registry
    scope, scope_id = b["scope"], b.get("scope_id")
    if scope == "community":
        scope_id = None
    elif scope_id is None:
        raise ApiError("invalid_body", f"body.scope_id: required for a {scope} announcement (the {scope} id)")
    elif scope == "building" and scope_id not in registry.buildings:
        raise not_found(f"building {scope_id!r}")
    elif scope == "household" and scope_id not in registry.households:
        raise not_found(f"household {scope_id!r}")
    now = time.time()
    starts = b.get("starts", now)
    expires = b.get("expires")
    if expires is not None and expires <= starts:
        raise ApiError("invalid_body", "body.expires: must be after starts")
    if expires is not None and expires <= now:
        # It would be stored and never shown to anyone: refuse it rather than accept a dead item.
        raise ApiError("invalid_body", "body.expires: is in the past; give a time from now on, or none")
    item = Announcement(
        id=f"ann-{secrets.token_hex(5)}",
        scope=scope,
        scope_id=scope_id,
        title=b["title"],
        body=b.get("body", ""),
        starts=starts,
        expires=expires,
        created=now,
        by=call.principal.name,
    )
    await call.request.app[ANNOUNCEMENTS].async_add(item)
    await call.request.app[ACCOUNTS].async_audit(
        call.principal,
        "announcement.add",
        household_id=scope_id if scope == "household" else None,
        target=item.id,
        detail={"scope": scope, "scope_id": scope_id, "title": item.title[:80]},
        ip=call.ip,
    )
    return item.as_dict()


@ROUTES.op(
    "DELETE",
    "/api/v1/announcements/{announcement_id}",
    summary="Withdraw an announcement",
    tag="announcements",
    roles=[Role.MANAGER],
)
async def withdraw(call: Call) -> dict[str, Any]:
    book: Announcements = call.request.app[ANNOUNCEMENTS]
    aid = call.path["announcement_id"]
    if aid not in book.items:
        raise not_found(f"announcement {aid!r}")
    item = await book.async_withdraw(aid)
    await call.request.app[ACCOUNTS].async_audit(
        call.principal, "announcement.withdraw", target=aid, ip=call.ip
    )
    return item.as_dict()
