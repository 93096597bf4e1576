"""Adapter routes: which adapters are installed, which run, and why the others do not.

    GET /api/v1/adapters          every adapter found, its state and the reason (see gateway/plugins/host.py)
    GET /api/v1/adapters/{id}     one adapter, its manifest, and for set-top box adapters their boxes

When the gateway runs without the `adapters` component, the list comes from
discovery alone (manifests checked, nothing started): state `not_loaded`.

Each item carries the adapter's last certification (`certification`, null if none):
what `linli certify` kept in <data_dir>/certifications/<id>.json (the report's format:
linli/certify/report.schema.json), summed up — when, which version, certified or
not, the counts and the names of the failed checks.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final

import orjson
from aiohttp import web

from linli.gateway.plugins import AdapterHost, discover
from linli.gateway.runtime import Gateway

CERTIFICATIONS: Final = "certifications"  # the folder of data_dir where `linli certify` keeps reports
_MAX_REPORT_BYTES: Final = 2 * 1024 * 1024


def _certification(folder: Path, adapter_id: str) -> dict[str, Any] | None:
    """The summary of an adapter's last certification report, if there is a readable one."""
    path = folder / f"{adapter_id}.json"
    try:
        if path.stat().st_size > _MAX_REPORT_BYTES:
            return {"error": f"{path.name}: larger than {_MAX_REPORT_BYTES} bytes, not read"}
        report = orjson.loads(path.read_bytes())
        summary = report["summary"]
        return {
            "certified": bool(summary["certified"]),
            "at": report.get("started_at"),
            "version": report.get("version"),
            "simulated": report.get("simulated"),
            "target": report.get("target"),
            "counts": {k: summary.get(k, 0) for k in ("pass", "fail", "skip", "not_declared")},
            "failed": [
                f"{c.get('group')}: {c.get('capability') or '-'} {c.get('name')}"
                for c in report.get("checks", [])
                if c.get("result") == "fail"
            ][:20],
        }
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {"error": f"{path.name}: not a certification report ({type(exc).__name__})"}


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

    async def _with_certifications(self, request: web.Request) -> list[dict[str, Any]]:
        items = await self._items(request)
        folder = Path(request.app[self._key].config["data_dir"]) / CERTIFICATIONS

        def read() -> list[dict[str, Any]]:
            return [{**item, "certification": _certification(folder, item["id"])} for item in items]

        return await asyncio.to_thread(read)

    async def list_adapters(self, request: web.Request) -> web.Response:
        items = await self._with_certifications(request)
        return _json({"items": items, "total": len(items)})

    async def get_adapter(self, request: web.Request) -> web.Response:
        adapter_id = request.match_info["adapter_id"]
        item = next((i for i in await self._with_certifications(request) if i["id"] == adapter_id), None)
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
