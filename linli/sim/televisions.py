"""The demo community's TVs: half the households have a carrier IPTV box, half a cable box.

Each household gets its own simulated box on 127.0.0.1 (Thunder JSON-RPC, or
DIAL + DLNA) and the box is adopted through its operator's adapter, found by
name in the `adapters` component — the simulation imports no adapter. Boxes
wake by Wake-on-LAN on loopback only.

The residents use their own remotes too (`remote_per_hour` presses per TV): a
channel change or a volume step on the box itself, which reaches the gateway
the way each operator's boxes report such changes — a Thunder event, a UPnP
NOTIFY — and shows on the household's screens page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any, Final

from linli.gateway.component import ComponentApi
from linli.gateway.plugins import ADAPTERS
from linli.sim.box import SimBox
from linli.sim.dial_box import DialBox
from linli.sim.layout import household_id, tv_operator
from linli.sim.lineups import CARRIER_LINEUP
from linli.sim.thunder_box import ThunderBox

_LOGGER = logging.getLogger(__name__)
MAX_BOXES: Final = 500  # one HTTP server and one UDP socket each
_ADAPTER: Final = {"carrier": "stb_carrier", "broadcast": "stb_broadcast"}
_BATCH: Final = 25


def make_box(operator: str, name: str) -> SimBox:
    return ThunderBox(name=name) if operator == "carrier" else DialBox(name=name)


class SimTelevisions:
    """The simulated boxes of the demo's households, started and adopted."""

    def __init__(self, remote_per_hour: float = 0.0, seed: int = 1) -> None:
        self.boxes: dict[str, SimBox] = {}
        self.remote_per_hour = remote_per_hour
        self.presses = 0
        self._rng = random.Random(seed)
        self._remotes: asyncio.Task[None] | None = None

    async def async_start(self, gateway: ComponentApi, households: int) -> None:
        host: Any = gateway.peer(ADAPTERS)
        if host is None:
            _LOGGER.info("demo: no 'adapters' component, so the households get no TV boxes")
            return
        count = min(households, MAX_BOXES)
        if count < households:
            _LOGGER.info("demo: TV boxes for the first %d of %d households", count, households)

        async def one(index: int) -> None:
            hid = household_id(index)
            operator = tv_operator(index)
            adapter = host.adapter(_ADAPTER[operator])
            if adapter is None:
                return
            box = make_box(operator, f"{hid}-tv")
            await box.async_start()
            self.boxes[hid] = box
            await adapter.async_adopt(
                hid,
                box.url,
                name="电视 TV",
                room="living room",
                wake_address="127.0.0.1",
                wake_port=box.wake_port,
            )

        for start in range(1, count + 1, _BATCH):
            results = await asyncio.gather(
                *(one(i) for i in range(start, min(count, start + _BATCH - 1) + 1)), return_exceptions=True
            )
            for result in results:
                if isinstance(result, Exception):
                    _LOGGER.warning("demo: a TV box was not adopted: %s", result)
        self.start_remotes(self.remote_per_hour)
        carriers = sum(1 for box in self.boxes.values() if isinstance(box, ThunderBox))
        _LOGGER.info(
            "demo: %d TV boxes: %d carrier IPTV (Thunder), %d cable (DIAL + DLNA)",
            len(self.boxes),
            carriers,
            len(self.boxes) - carriers,
        )

    def start_remotes(self, per_hour: float) -> None:
        """From now on the residents press their TVs' remotes `per_hour` times each (0: never)."""
        self.remote_per_hour = per_hour
        if self.boxes and per_hour > 0 and (self._remotes is None or self._remotes.done()):
            self._remotes = asyncio.get_running_loop().create_task(
                self._use_remotes(), name="linli-sim-remotes"
            )

    async def async_stop_remotes(self) -> None:
        """The residents put their remotes down."""
        remotes, self._remotes = self._remotes, None
        if remotes is not None:
            remotes.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await remotes

    async def _use_remotes(self) -> None:
        """Now and then, somewhere in the community, someone zaps or turns the volume."""
        lcns = [record["lcn"] for record in CARRIER_LINEUP]  # the same numbers on both networks
        while self.remote_per_hour > 0:
            await asyncio.sleep(self._rng.expovariate(self.remote_per_hour * len(self.boxes) / 3600))
            box = self._rng.choice(list(self.boxes.values()))
            if not box.powered:
                continue
            try:
                if self._rng.random() < 0.7:
                    await box.remote_tune(self._rng.choice(lcns))
                else:
                    await box.remote_volume(
                        max(0, min(100, box.screen.volume + self._rng.choice((-6, -3, 3, 6))))
                    )
                self.presses += 1
            except Exception:  # a box mid power cycle: the resident presses again later
                _LOGGER.debug("demo: a remote press on %s did nothing", box.name, exc_info=True)

    async def async_stop(self) -> None:
        await self.async_stop_remotes()
        boxes, self.boxes = list(self.boxes.values()), {}
        await asyncio.gather(*(box.async_stop() for box in boxes), return_exceptions=True)
