"""`linli adapters`: every adapter installed, and whether it runs — from the running gateway if there is one.

Asks the running gateway first (GET /api/v1/adapters on the configured portal):
that shows start failures and crashes. Without a running gateway, checks what
can be checked offline: each manifest against its schema and each entry point
importable. Exit status 1 when an adapter is broken.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from linli.gateway.plugins.allowlist import SHIPPED, parse_allowed, refusal
from linli.gateway.plugins.catalog import discover
from linli.gateway.plugins.host import load_adapter_class

_BROKEN = {"failed", "crashed", "broken"}


def _live(url: str, token: str | None) -> tuple[list[dict[str, Any]] | None, str]:
    """The running gateway's list, or None and why not (said to the user as it is)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=2.0) as response:
            return list(json.loads(response.read())["items"]), ""
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return None, (
                f"the gateway at {url} asks who you are: pass a manager's or installer's API token "
                "with --token or LINLI_TOKEN (linli token create NAME)"
            )
        return None, f"the gateway at {url} answered HTTP {exc.code}"
    except (OSError, ValueError, KeyError) as exc:
        return None, f"no gateway answered at {url} ({getattr(exc, 'reason', exc)})"


def _offline(allowed: list[str] | None = None, builtin_package: str | None = None) -> list[dict[str, Any]]:
    permitted = parse_allowed(SHIPPED if allowed is None else allowed, shipped_package=builtin_package)
    items = []
    for entry in discover(builtin_package=builtin_package):
        manifest = entry.manifest
        state, reason = "ok", None
        if entry.problem or manifest is None:
            state, reason = "broken", entry.problem or "no manifest"
        elif (refused := refusal(entry, permitted)) is not None:
            state, reason = "not_allowed", refused  # never imported, not even to check it
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
                "manifest_sha256": entry.manifest_sha256,
                "state": state,
                "reason": reason,
            }
        )
    return items


def _reason(item: dict[str, Any]) -> str:
    """The reason, and when a failed or crashed adapter is tried again (the host restarts it)."""
    reason = str(item.get("reason") or "")
    retry_at = item.get("retry_at")
    if isinstance(retry_at, int | float):
        attempt = item.get("restarts") or 1
        retry = f"restart in {max(0.0, retry_at - time.time()):.0f} s (attempt {attempt})"
        reason = f"{reason}; {retry}" if reason else retry
    return reason


def list_adapters(
    portal_url: str | None,
    as_json: bool,
    *,
    token: str | None = None,
    required: bool = False,
    allowed: list[str] | None = None,
    builtin_package: str | None = None,
) -> int:
    """Print the adapters; `required`: the user named the gateway, so not reaching it is an error.

    `allowed`: the configuration's adapters.allowed, for the offline check (default: the shipped ones).
    """
    items, why = _live(portal_url.rstrip("/") + "/api/v1/adapters", token) if portal_url else (None, "")
    if items is None and required:
        print(f"linli: {why}", file=sys.stderr)
        return 2
    where = (
        f"running gateway at {portal_url}"
        if items is not None
        else f"installed, checked offline — start errors not shown: {why or 'no gateway configured'}"
    )
    if items is None:
        items = _offline(allowed, builtin_package)
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
                _reason(item),
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5])
    if not items:
        print("(none installed)")
    return 1 if broken else 0
