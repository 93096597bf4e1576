"""Delivery channels for alerts, behind one interface.

Channels live with what they reach — the portal's WebSocket, the set-top box
adapters' TV overlay, a provider webhook — and register here, in the core.
The alert engine (a service) reaches them only through this registry, so no
service imports an adapter or the portal.

This is the only road from an alert to a screen: a channel is told of an alert
when the escalation step that names its audience starts (`async_deliver`), and of
each later change — acknowledged, escalated, resolved, cancelled, counted again —
only for the audiences a step has already reached (`async_follow`). Nothing else
puts an alert on a screen, so the policy's timing holds on every one of them.
Each call carries the context it is made in, a child of the step's (or the
answer's), so a TV overlay can be traced back to the button press.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from linli.gateway.context import Context


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
    """Something that can put an alert in front of an audience.

    `context` is the delivery's own (a child of the escalation step's): a channel passes
    it on to whatever it does (the TV box's `notify` command, the WebSocket message).
    """

    name: str

    async def async_deliver(
        self, alert: dict[str, Any], audience: Audience, *, context: Context
    ) -> Delivery: ...


@runtime_checkable
class FollowingChannel(Channel, Protocol):
    """A channel whose screens keep showing an alert, and so must hear how it goes on.

    `async_follow` is called once per audience the alert has already reached, for each
    later change (`transition`: repeated, escalated, acknowledged, resolved, cancelled):
    one message per screen per change, best effort (the screen re-reads on reconnect).
    """

    async def async_follow(
        self, alert: dict[str, Any], audience: Audience, transition: str, *, context: Context
    ) -> None: ...


@runtime_checkable
class ImmediateChannel(Channel, Protocol):
    """A channel that can put an alert on its screens within the caller's own turn of the loop.

    `deliver_now` sends at once (writing a WebSocket frame never waits) and returns the
    outcome to await. The engine uses it for a step started with its raise, so the first
    screen has an SOS straight after the commit rather than a turn of the loop later —
    under telemetry load a turn is a millisecond or two (bench/sos_ws.py).
    """

    def deliver_now(
        self, alert: dict[str, Any], audience: Audience, *, context: Context
    ) -> asyncio.Future[Delivery]: ...


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
