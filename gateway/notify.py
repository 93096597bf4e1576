"""Delivery channels for alerts, behind one interface.

Channels live with what they reach — the portal's WebSocket, the set-top box
adapters' TV overlay, a provider webhook — and register here, in the core.
The alert engine (a service) reaches them only through this registry, so no
service imports an adapter or the portal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class Audience(StrEnum):
    """Who an escalation step is for."""

    HOUSEHOLD = "household"  # the residents' own screens: phones, tablets, the TV
    CARERS = "carers"  # family carers (with the household's consent)
    DUTY_DESK = "duty_desk"  # the property manager's console
    EMERGENCY = "emergency"  # the configured emergency contact / call centre


class Outcome(StrEnum):
    DELIVERED = "delivered"  # a person's screen or a provider's system has it
    NO_RECIPIENT = "no_recipient"  # nobody of that audience is reachable on this channel
    FAILED = "failed"  # try again later


@dataclass(slots=True, kw_only=True)
class Delivery:
    outcome: Outcome
    detail: str = ""


class Channel(Protocol):
    """Something that can put an alert in front of an audience."""

    name: str

    async def async_deliver(self, alert: dict[str, Any], audience: Audience) -> Delivery: ...


class Notifier:
    """The channels registered by whatever components are running."""

    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}

    def register(self, channel: Channel) -> None:
        self._channels[channel.name] = channel

    def unregister(self, name: str) -> None:
        self._channels.pop(name, None)

    @property
    def channels(self) -> list[Channel]:
        return list(self._channels.values())
