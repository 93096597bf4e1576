"""`linli adapters`: every adapter installed, and whether it runs — from the running gateway if there is one.

Asks the running gateway first (GET /api/v1/adapters on the configured portal):
that shows start failures and crashes. Without a running gateway, checks what
can be checked offline: each manifest against its schema and each entry point
importable. Exit status 1 when an adapter is broken.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from gateway.plugins.catalog import discover
from gateway.plugins.host import load_adapter_class

_BROKEN = {"failed", "crashed", "broken"}


def _live(url: str) -> list[dict[str, Any]] | None:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return list(json.loads(response.read())["items"])
    except (OSError, ValueError, KeyError, urllib.error.URLError):
        return None


def _offline() -> list[dict[str, Any]]:
    items = []
    for entry in discover():
        manifest = entry.manifest
        state, reason = "ok", None
        if entry.problem or manifest is None:
            state, reason = "broken", entry.problem or "no manifest"
        else:
            try:
                load_adapter_class(manifest.entry)
            except Exception as exc:
                state, reason = "broken", f"cannot load {manifest.entry}: {type(exc).__name__}: {exc}"
        items.append(
            {
                "id": entry.id,
                "version": manifest.version if manifest else None,
                "kind": manifest.kind if manifest else None,
                "provides": list(manifest.provides) if manifest else [],
                "sources": entry.sources,
                "state": state,
                "reason": reason,
            }
        )
    return items


def list_adapters(portal_url: str | None, as_json: bool) -> int:
    items = _live(portal_url.rstrip("/") + "/api/v1/adapters") if portal_url else None
    where = (
        f"running gateway at {portal_url}"
        if items is not None
        else "installed (gateway not running: start errors not shown)"
    )
    if items is None:
        items = _offline()
    broken = [
        i
        for i in items
        if i.get("state") in _BROKEN
        or (i.get("state") == "disabled" and "configuration" not in (i.get("reason") or ""))
    ]
    if as_json:
        print(json.dumps({"source": where, "items": items}, ensure_ascii=False, indent=2))
        return 1 if broken else 0
    print(f"adapters — {where}")
    rows = [("ADAPTER", "VERSION", "KIND", "STATE", "FOUND IN", "REASON")]
    for item in items:
        rows.append(
            (
                item["id"],
                item.get("version") or "-",
                item.get("kind") or "-",
                item.get("state") or "-",
                ", ".join(item.get("sources") or []),
                item.get("reason") or "",
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5])
    if not items:
        print("(none installed)")
    return 1 if broken else 0
