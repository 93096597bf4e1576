"""Adapters that take over the devices they declare, when a person approves them in the inbox.

An adapter's manifest says what its devices look like on the network (its
`discovery` block: SSDP matchers, zeroconf types, MQTT topics). When an
installer approves an inbox item, the adapter whose declaration claims it most
specifically (matching.py) is handed a `FoundDevice` — where the device was
found and what the person decided — and returns the registry device it made.
The inbox never imports an adapter: the adapter host registers each running
adapter that asks for it (`AdapterApi.on_discovered`) with the discovery
component, which keeps the registrations across its own start and stop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from linli.gateway.discovery.inbox import Adoption
from linli.gateway.discovery.model import InboxItem, Source
from linli.gateway.registry import Device


@dataclass(slots=True, frozen=True, kw_only=True)
class FoundDevice:
    """An approved inbox item, as its adapter needs it to take the device over."""

    item_id: str
    household_id: str
    by: str  # who approved it
    name: str | None  # the name the person gave, if any
    room: str | None
    device_id: str | None  # the device id the person asked for, if any
    announced_name: str | None
    manufacturer: str | None
    model: str | None
    keys: tuple[str, ...]
    #: Per source that saw it ("ssdp", "zeroconf", "mqtt"): what that source learned
    #: (SSDP: location, application_url, udn, …; zeroconf: type, addresses, port, txt).
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ssdp(self) -> dict[str, Any] | None:
        return self.sources.get(Source.SSDP.value)

    @property
    def zeroconf(self) -> dict[str, Any] | None:
        return self.sources.get(Source.ZEROCONF.value)


FoundAdopter = Callable[[FoundDevice], Awaitable[Device]]
Declaration = Mapping[str, Sequence[Mapping[str, Any]]]


def found_device(item: InboxItem, adoption: Adoption) -> FoundDevice:
    sources: dict[str, dict[str, Any]] = {}
    for announcement in item.announcements():
        sources.setdefault(announcement.source.value, dict(announcement.details))
    return FoundDevice(
        item_id=item.id,
        household_id=adoption.household_id,
        by=adoption.by,
        name=adoption.name,
        room=adoption.room,
        device_id=adoption.device_id,
        announced_name=item.name,
        manufacturer=item.manufacturer,
        model=item.model,
        keys=tuple(item.keys),
        sources=sources,
    )


def zeroconf_types(declaration: Declaration) -> list[str]:
    """The DNS-SD service types a declaration names (discovery browses them too)."""
    return [str(rule["type"]) for rule in declaration.get(Source.ZEROCONF.value, ()) if rule.get("type")]
