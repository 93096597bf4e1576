"""Putting an announcement on every TV of the community, through the `notify` capability.

Whatever the operator's box, its adapter takes the same set-top box `notify`
command (`{"action": "show", ...}`); a box that confirms counts as shown. The
uplink never knows which adapter is behind a TV.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from linli.gateway.context import Context

if TYPE_CHECKING:
    from linli.gateway.component import ComponentApi


def tv_targets(api: ComponentApi) -> list[tuple[str, str]]:
    """(device id, capability key) of every writable `notify` capability."""
    return [
        (device.id, cap.key)
        for device in api.registry.iter_devices()
        for cap in device.profile.capabilities
        if cap.kind == "notify" and "w" in cap.access
    ]


async def async_show_on_tvs(
    api: ComponentApi, *, title: str, text: str, level: str, announcement_id: str, timeout_s: float
) -> tuple[int, int]:
    """Show on every TV at once; returns (TVs that confirmed, TVs tried)."""
    targets = tv_targets(api)
    command: dict[str, Any] = {"action": "show", "text": text, "level": level}
    if title:
        command["title"] = title

    async def one(device_id: str, key: str) -> bool:
        try:
            await asyncio.wait_for(
                api.commands.async_send(
                    device_id, key, dict(command), context=Context(origin=f"uplink:{announcement_id}")
                ),
                timeout_s,
            )
        except Exception:  # an unreachable box is counted as not shown, nothing more
            return False
        return True

    results = await asyncio.gather(*(one(d, k) for d, k in targets))
    return sum(results), len(targets)
