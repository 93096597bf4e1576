"""The kit's test doubles: neighbours that misbehave, to prove the adapter under test is isolated."""

from __future__ import annotations

import asyncio
from typing import Any

from linli.gateway.plugins import AdapterEntry
from linli.gateway.plugins.manifest import build_manifest


class CrashingAdapter:
    """Starts fine, then a background job of it raises."""

    async def async_start(self, api: Any) -> None:
        async def boom() -> None:
            await asyncio.sleep(0.05)
            raise RuntimeError("conformance kit: deliberate crash")

        api.spawn(boom(), "boom")

    async def async_stop(self) -> None:
        return None


class FailingStartAdapter:
    """Raises in async_start."""

    async def async_start(self, api: Any) -> None:
        raise RuntimeError("conformance kit: deliberate failure in start")

    async def async_stop(self) -> None:
        return None


def _entry(adapter_id: str, cls: str) -> AdapterEntry:
    manifest = build_manifest(
        {
            "id": adapter_id,
            "name": f"Conformance kit double ({cls})",
            "version": "1.0.0",
            "kind": "device",
            "entry": f"linli.certify.doubles:{cls}",
            "provides": [],
            "permissions": ["bus"],
        }
    )
    return AdapterEntry(
        id=adapter_id, module="linli.certify.doubles", sources=["conformance kit"], manifest=manifest
    )


def doubles() -> list[AdapterEntry]:
    return [_entry("certify_crash", "CrashingAdapter"), _entry("certify_failstart", "FailingStartAdapter")]
