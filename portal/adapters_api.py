"""Adapter routes: which adapters are installed, which run, and why the others do not.

    GET /api/v1/adapters          every adapter found, its state and the reason (see gateway/plugins/host.py)
    GET /api/v1/adapters/{id}     one adapter, its manifest, and for set-top box adapters their boxes

When the gateway runs without the `adapters` component, the list comes from
discovery alone (manifests checked, nothing started): state `not_loaded`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from gateway.plugins import AdapterHost, discover
from gateway.runtime import Gateway


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


class _Routes:
    def __init__(self, gateway_key: web.AppKey[Gateway]) -> None:
        self._key = gateway_key

    def _host(self, request: web.Request) -> AdapterHost | None:
        host = request.app[self._key].components.get("adapters")
        return host if isinstance(host, AdapterHost) else None

    async def _items(self, request: web.Request) -> list[dict[str, Any]]:
        host = self._host(request)
        if host is not None:
            return host.status()
        entries = await asyncio.to_thread(discover)
        return [
            {
                **entry.as_dict(),
                "state": "disabled" if entry.problem else "not_loaded",
                "reason": entry.problem or "the gateway runs without the 'adapters' component",
            }
            for entry in entries
        ]

    async def list_adapters(self, request: web.Request) -> web.Response:
        items = await self._items(request)
        return _json({"items": items, "total": len(items)})

    async def get_adapter(self, request: web.Request) -> web.Response:
        adapter_id = request.match_info["adapter_id"]
        item = next((i for i in await self._items(request) if i["id"] == adapter_id), None)
        if item is None:
            return _json({"error": {"code": "not_found", "message": f"no adapter {adapter_id!r}"}}, 404)
        host = self._host(request)
        if host is not None:
            slot = host.slots.get(adapter_id)
            if slot is not None and slot.entry.manifest is not None:
                item = {**item, "manifest": slot.entry.manifest.as_dict()}
            instance = host.adapter(adapter_id)
            status = getattr(instance, "status", None)
            if callable(status):
                item = {**item, "boxes": status()}
        return _json(item)


def register_adapter_routes(app: web.Application, gateway_key: web.AppKey[Gateway]) -> None:
    routes = _Routes(gateway_key)
    app.router.add_get("/api/v1/adapters", routes.list_adapters)
    app.router.add_get("/api/v1/adapters/{adapter_id}", routes.get_adapter)
