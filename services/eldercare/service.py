"""Component `eldercare`: turns care capabilities into alerts.

* SOS button / pendant pressed → a critical `sos` alert at once.
* Fall detected → a critical `fall` alert; its escalation chain opens with a
  30 s window in which the resident can answer "I'm OK" (an `AlertAnswered`
  with action `cancel`) before carers are called.

It works on capability kinds only, whatever the device's vendor or adapter,
and raises alerts through the bus (the alert engine listens there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gateway.events import AlertRequested, StateChanged
from gateway.runtime import Gateway

_LOGGER = logging.getLogger(__name__)


class ElderCare:
    name = "eldercare"
    requires = ("registry", "alerts")

    def __init__(self) -> None:
        self._gateway: Gateway | None = None
        self._unlisten: list[Callable[[], None]] = []

    async def async_start(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._unlisten = [gateway.bus.listen(StateChanged, self._on_state)]

    async def async_stop(self) -> None:
        for unlisten in self._unlisten:
            unlisten()
        self._unlisten = []

    def _on_state(self, event: StateChanged) -> None:
        if event.new is not True or event.kind not in ("sos_button", "fall"):
            return
        gateway = self._gateway
        assert gateway is not None
        device = gateway.registry.device(event.device_id)
        where = f" ({device.room})" if device and device.room else ""
        name = device.name if device else event.device_id
        if event.kind == "sos_button":
            kind, title = "sos", f"SOS 求助: {name}{where}"
        else:
            kind, title = "fall", f"跌倒 Fall detected: {name}{where}"
        gateway.bus.fire(
            AlertRequested(
                kind=kind,
                severity="critical",
                title=title,
                detail=f"{event.capability} on {event.device_id}",
                dedup_key=f"{kind}:{event.device_id}",
                data={"device_id": event.device_id, "capability": event.capability, "ts": event.ts},
                context=event.context.child(origin=self.name),
            )
        )
