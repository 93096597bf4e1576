"""The demo community's TVs: half the households have a carrier IPTV box, half a cable box.

Each household gets its own simulated box on 127.0.0.1 (Thunder JSON-RPC, or
DIAL + DLNA) and the box is adopted through its operator's adapter, found by
name in the `adapters` component — the simulation imports no adapter. Boxes
wake by Wake-on-LAN on loopback only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from adapters.sim.box import SimBox
from adapters.sim.dial_box import DialBox
from adapters.sim.layout import household_id, tv_operator
from adapters.sim.thunder_box import ThunderBox
from gateway.runtime import Gateway

_LOGGER = logging.getLogger(__name__)
MAX_BOXES: Final = 500  # one HTTP server and one UDP socket each
_ADAPTER: Final = {"carrier": "stb_carrier", "broadcast": "stb_broadcast"}
_BATCH: Final = 25


def make_box(operator: str, name: str) -> SimBox:
    return ThunderBox(name=name) if operator == "carrier" else DialBox(name=name)


class SimTelevisions:
    """The simulated boxes of the demo's households, started and adopted."""

    def __init__(self) -> None:
        self.boxes: dict[str, SimBox] = {}

    async def async_start(self, gateway: Gateway, households: int) -> None:
        host: Any = gateway.components.get("adapters")
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
        carriers = sum(1 for box in self.boxes.values() if isinstance(box, ThunderBox))
        _LOGGER.info(
            "demo: %d TV boxes: %d carrier IPTV (Thunder), %d cable (DIAL + DLNA)",
            len(self.boxes),
            carriers,
            len(self.boxes) - carriers,
        )

    async def async_stop(self) -> None:
        boxes, self.boxes = list(self.boxes.values()), {}
        await asyncio.gather(*(box.async_stop() for box in boxes), return_exceptions=True)
