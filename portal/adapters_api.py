"""Adapter routes: which adapters are installed, which run, and why the others do not.

    GET /api/v1/adapters          every adapter found, its state and the reason (see gateway/plugins/host.py)
    GET /api/v1/adapters/{id}     one adapter, its manifest, and for set-top box adapters their boxes

When the gateway runs without the `adapters` component, the list comes from
discovery alone (manifests checked, nothing started): state `not_loaded`.

Each item carries the adapter's last certification (`certification`, null if none):
what `linli certify` kept in <data_dir>/certifications/<id>.json (the report's format:
linli/certify/report.schema.json), summed up — when, which version, certified or
not, the counts and the names of the failed checks.

Both routes are declared like every other API operation (`operations.py`), for
the property office and installers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final

import orjson

from linli.gateway.plugins import ADAPTERS, AdapterHost, discover
from linli.portal.api.errors import ApiError
from linli.portal.api.operations import Api, Call
from linli.portal.auth.principal import COMMUNITY_ROLES

#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()
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


def _host(call: Call) -> AdapterHost | None:
    host = call.gateway.peer(ADAPTERS)
    return host if isinstance(host, AdapterHost) else None


async def _items(call: Call) -> list[dict[str, Any]]:
    host = _host(call)
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


async def _with_certifications(call: Call) -> list[dict[str, Any]]:
    items = await _items(call)
    folder = Path(call.gateway.config["data_dir"]) / CERTIFICATIONS

    def read() -> list[dict[str, Any]]:
        return [{**item, "certification": _certification(folder, item["id"])} for item in items]

    return await asyncio.to_thread(read)


@ROUTES.op(
    "GET",
    "/api/v1/adapters",
    summary="List the adapters found, their state and why the others do not run",
    tag="adapters",
    roles=COMMUNITY_ROLES,
)
async def list_adapters(call: Call) -> dict[str, Any]:
    items = await _with_certifications(call)
    return {"items": items, "total": len(items)}


@ROUTES.op(
    "GET",
    "/api/v1/adapters/{adapter_id}",
    summary="Read one adapter, its manifest and, for set-top box adapters, their boxes",
    tag="adapters",
    roles=COMMUNITY_ROLES,
)
async def get_adapter(call: Call) -> dict[str, Any]:
    adapter_id = call.path["adapter_id"]
    item = next((i for i in await _with_certifications(call) if i["id"] == adapter_id), None)
    if item is None:
        raise ApiError("not_found", f"no adapter {adapter_id!r}")
    host = _host(call)
    if host is not None:
        slot = host.slots.get(adapter_id)
        if slot is not None and slot.entry.manifest is not None:
            item = {**item, "manifest": slot.entry.manifest.as_dict()}
        instance = host.adapter(adapter_id)
        status = getattr(instance, "status", None)
        if callable(status):
            item = {**item, "boxes": status()}
    return item
