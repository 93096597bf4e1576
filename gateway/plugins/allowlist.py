"""Which adapters may be loaded at all: `adapters.allowed` (ETSI EN 303 645 provision 5.7).

An installed package is not trusted because it is installed: its code runs
only when its manifest is allowed in the configuration. Each entry is

    "@shipped"                         every adapter shipped in Linli's own adapters/ package
    "stb_carrier"                      the adapter with that manifest id
    "acme_tv@sha256:9f86d08…"          …and only while its manifest.json has that SHA-256

The default is ["@shipped"]: the adapters that come with Linli itself. A provider's adapter is added
by name after review; pinning its manifest's digest (shown by `linli adapters
--json` as `manifest_sha256`) also refuses a changed package — new
permissions, a new entry point — until someone reviews it again. Anything not
allowed is found and listed (state `not_allowed`, with the reason) but never
imported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from linli.gateway.plugins.catalog import AdapterEntry

_ENTRY: Final = re.compile(r"^(?P<id>[a-z][a-z0-9_]{1,63})(@sha256:(?P<digest>[0-9a-f]{64}))?$")
SHIPPED_MARK: Final = "@shipped"
SHIPPED: Final = (SHIPPED_MARK,)


@dataclass(slots=True, kw_only=True)
class Allowed:
    shipped: bool = False
    ids: dict[str, str | None] = field(default_factory=dict)  # id → pinned manifest digest, None: any
    shipped_package: str | None = None  # the package the shipped adapters are in (adapters.builtin_package)


def parse_allowed(entries: Iterable[str], shipped_package: str | None = None) -> Allowed:
    """The allow-list; ValueError naming a malformed entry."""
    allowed = Allowed(shipped_package=shipped_package)
    for index, text in enumerate(entries):
        if text.strip() == SHIPPED_MARK:
            allowed.shipped = True
            continue
        match = _ENTRY.match(text.strip())
        if match is None:
            raise ValueError(
                f"adapters.allowed[{index}]: {text!r} is not {SHIPPED_MARK!r} nor an adapter id, optionally "
                "pinned as 'id@sha256:<64 hex digits of its manifest.json>' (see `linli adapters --json`)"
            )
        allowed.ids[match["id"]] = match["digest"]
    return allowed


def shipped(entry: AdapterEntry, package: str | None) -> bool:
    """Part of Linli's own (reviewed, hash-pinned) release: a package inside its shipped adapters' package."""
    return package is not None and entry.module.startswith(f"{package}.")


def refusal(entry: AdapterEntry, allowed: Allowed) -> str | None:
    """Why this adapter may not be loaded, or None when its manifest is allowed."""
    if entry.id not in allowed.ids:
        if allowed.shipped and shipped(entry, allowed.shipped_package):
            return None
        return (
            f"not allowed in the configuration: its manifest is not in adapters.allowed; after "
            f"reviewing the package, add {entry.id!r} (or pin it as "
            f"'{entry.id}@sha256:{entry.manifest_sha256 or '…'}')"
        )
    pinned = allowed.ids[entry.id]
    if pinned is not None and pinned != entry.manifest_sha256:
        return (
            f"not allowed in the configuration: adapters.allowed pins its manifest as sha256:{pinned[:12]}…, "
            f"the installed one is sha256:{(entry.manifest_sha256 or '?')[:12]}… (the package changed); "
            "review it and update the pin"
        )
    return None
