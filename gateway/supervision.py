"""Periodic upkeep: device availability by silence, telemetry retention, and memory.

The last will alone cannot be trusted for availability (a hub's will covers the
hub, not each device, and many devices have none), so a device silent for longer
than its profile's supervision interval is marked unavailable here.

Memory: after a burst (a flood of junk from the network, a backlog delivered at
start), Python frees its objects but glibc keeps the freed heap pages; they are
handed back to the system (`malloc_trim`), so a burst that is over does not leave
the gateway's resident size raised for good. Only after a burst, though: the
resident size is looked at once a minute, and the heap trimmed when it is
`TRIM_GROWTH` (5 %) over where it settled after the last trim and no longer rising.
A trim walks the whole heap holding glibc's allocator lock, and every allocation
on the event loop waits for it: done every minute regardless, it was the longest
pause an SOS met under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from linli.gateway.store import async_apply_retention

if TYPE_CHECKING:
    from linli.gateway.runtime import Gateway

_LOGGER = logging.getLogger(__name__)
MEMORY_TRIM_S = 60.0
TRIM_GROWTH = 1.05  # trim when the resident size is 5 % over the floor (after the last trim)


def burst_to_give_back(rss: int | None, floor: int | None) -> bool:
    """Whether to trim now: the first time, where the size is unknown, or after a burst."""
    return rss is None or floor is None or rss > floor * TRIM_GROWTH


def _resident_bytes() -> int | None:
    """This process's resident size (Linux), or None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


try:
    import resource

    _PAGE = resource.getpagesize()
except ImportError:  # pragma: no cover - not on Linux
    _PAGE = 4096


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None  # glibc only
    except (OSError, AttributeError):
        return None


class Supervision:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._tasks: list[asyncio.Task[None]] = []
        self.last_retention: float | None = None

    async def async_start(self) -> None:
        cfg = self._gateway.config
        self._tasks = [
            asyncio.create_task(
                self._every(cfg["devices"]["supervision_check_s"], self.async_check_availability),
                name="linli-availability",
            ),
            asyncio.create_task(
                self._every(cfg["retention"]["interval_s"], self.async_retention, first=5.0),
                name="linli-retention",
            ),
        ]
        trim = _malloc_trim()
        if trim is not None:
            seen: dict[str, int] = {}  # "floor": where it settled after the last trim; "last": the last look

            async def release_memory() -> None:
                rss = _resident_bytes()
                last, seen["last"] = seen.get("last"), rss or 0
                # Give a burst back once it is over (the size no longer rising): trimming mid-burst
                # gives little back, and would set the floor at the burst's height.
                rising = rss is not None and last is not None and rss > last * 1.01
                if rising or not burst_to_give_back(rss, seen.get("floor")):
                    if rss is not None and "floor" in seen:
                        seen["floor"] = min(seen["floor"], rss)
                    return
                await asyncio.to_thread(trim, 0)  # walks the heap: off the loop (ctypes drops the GIL)
                after = _resident_bytes()
                if after is not None:
                    seen["floor"] = seen["last"] = after

            self._tasks.append(
                asyncio.create_task(self._every(MEMORY_TRIM_S, release_memory), name="linli-memory")
            )

    async def async_stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        with contextlib.suppress(Exception):
            await self._gateway.registry.async_persist_availability(force=True)

    async def _every(self, interval: float, job, first: float | None = None) -> None:  # type: ignore[no-untyped-def]
        await asyncio.sleep(interval if first is None else first)
        while True:
            try:
                await job()
            except Exception:
                _LOGGER.exception("periodic job %s failed; will run again", job.__name__)
            await asyncio.sleep(interval)

    async def async_check_availability(self, now: float | None = None) -> int:
        """Mark silent devices unavailable; returns how many went offline."""
        gateway = self._gateway
        now = time.time() if now is None else now
        default = gateway.config["devices"]["supervision_default_s"]
        started = gateway.started_at or now
        offline = 0
        registry = gateway.registry
        for device in registry.iter_devices():
            limit = device.profile.supervision_s or default
            last = device.last_seen
            # A device not heard since the gateway started gets one interval of grace.
            if last is None or last < started:
                last = max(last or 0.0, started)
            if device.available and now - last > limit:
                registry.set_available(device, False, now, f"silent for over {limit:g}s")
                offline += 1
        await registry.async_persist_availability()
        return offline

    async def async_retention(self) -> None:
        cfg = self._gateway.config["retention"]
        result = await async_apply_retention(
            self._gateway.store, raw_days=cfg["raw_days"], hourly_days=cfg["hourly_days"]
        )
        self.last_retention = time.time()
        if result.raw_expired or result.hourly_expired:
            _LOGGER.info(
                "retention: %d raw rows folded into hourly aggregates, %d hourly rows expired",
                result.raw_expired,
                result.hourly_expired,
            )
