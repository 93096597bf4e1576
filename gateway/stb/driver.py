"""What an operator adapter supplies: a `BoxDriver` that speaks its box's protocol.

The fleet (fleet.py) does everything else — validation, `not_supported`,
confirmation, availability, wake-up — identically for every operator. A driver
reads and changes the box's state in the contract's shapes (gateway/stb/schemas.py)
and raises:

* `BoxUnreachableError` when the box does not answer,
* `BoxAnswerError` when it answers with something unusable,
* `NotSupportedError` for a verb its protocol cannot express.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from linli.gateway.stb.channels import Lineup
from linli.gateway.stb.http import Limits

#: The kinds a driver reads from the box; the fleet derives `keys`, `now_playing` and `meta` itself.
READ_KINDS = frozenset({"power", "channel", "app", "media", "volume", "notify", "portal"})


@dataclass(slots=True, kw_only=True)
class BoxEndpoint:
    """Where a box is and how to wake it (kept in the adapter's storage namespace)."""

    url: str  # Thunder: http://host:9998 ; DIAL/DLNA: the device description's LOCATION
    mac: str | None = None
    wake_address: str | None = None  # where magic packets go (default: the adapter's setting)
    wake_port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "mac": self.mac,
            "wake_address": self.wake_address,
            "wake_port": self.wake_port,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BoxEndpoint:
        return cls(
            url=data["url"],
            mac=data.get("mac"),
            wake_address=data.get("wake_address"),
            wake_port=data.get("wake_port"),
            extra=dict(data.get("extra") or {}),
        )


@dataclass(slots=True, kw_only=True)
class DriverContext:
    """What the fleet lends a driver."""

    session: aiohttp.ClientSession
    limits: Limits
    lineup: Lineup
    portal_url: str
    log: logging.Logger
    on_change: Callable[[frozenset[str]], None] = lambda kinds: None  # the box pushed news
    # Ask the box to push its own changes (events)? Not when a box is only being identified.
    watch: bool = True


@dataclass(slots=True, kw_only=True)
class BoxFacts:
    """What a box says about itself when the driver connects."""

    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    id: str | None = None  # an identity key: uuid:… or mac:…
    mac: str | None = None
    name: str | None = None


class BoxDriver(Protocol):
    protocols: tuple[str, ...]  # e.g. ("thunder-jsonrpc", "dial")

    def supports(self, kind: str, action: str) -> bool:
        """Can this box's protocol express the verb? (Kinds are checked against the manifest first.)"""
        ...

    async def async_connect(self) -> BoxFacts:
        """Reach the box and learn what it is; called again after it was unreachable."""
        ...

    async def async_read(self, kinds: frozenset[str]) -> dict[str, Any]:
        """The current state of these kinds (of READ_KINDS), in the contract's shapes."""
        ...

    async def async_execute(self, kind: str, command: dict[str, Any]) -> None:
        """Carry out a validated, resolved command; return once the box accepted it."""
        ...

    async def async_close(self) -> None: ...


DriverFactory = Callable[[BoxEndpoint, DriverContext], BoxDriver]
