"""Component `discovery`: the inbox of devices found, and the door the discovery sources feed it by.

The sources themselves (MQTT announcements, mDNS, SSDP) are components of their
own above the core (linli.adapters.discovery): each starts its listener, gives it
the inbox, and registers it here with `add_source`, so that the inbox's status,
a search on demand and the service types adapters adopt reach every source that
runs. Config section `discovery`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from linli.gateway.discovery.adopters import Declaration, FoundAdopter, found_device
from linli.gateway.discovery.adopters import zeroconf_types as declared_types
from linli.gateway.discovery.inbox import Adoption, Inbox
from linli.gateway.discovery.matching import declaration_score
from linli.gateway.discovery.migrations import MIGRATIONS
from linli.gateway.discovery.model import InboxItem

if TYPE_CHECKING:
    from linli.gateway.component import ComponentApi

_LOGGER = logging.getLogger(__name__)


class Source(Protocol):
    """A running discovery listener, as the inbox's keeper knows it."""

    async def async_stop(self) -> None: ...


class Discovery:
    """Keeps the inbox of devices found; the discovery sources feed it."""

    name = "discovery"
    requires = ("registry", "mqtt")
    migrations = MIGRATIONS  # its own tables, made before it starts

    def __init__(self) -> None:
        self.inbox: Inbox | None = None
        self.sources: dict[str, Source] = {}  # name → the listener of a source that runs
        self.failed: dict[str, str] = {}  # name → why a source could not listen
        # Adapters that adopt what they declare; kept across this component's own restarts.
        self._adopters: dict[str, tuple[Declaration, FoundAdopter]] = {}
        self._unregister: dict[str, Callable[[], None]] = {}

    async def async_start(self, api: ComponentApi) -> None:
        config = api.config["discovery"]
        self.inbox = Inbox(
            api.store,
            api.bus,
            api.registry,
            api.profiles,
            max_items=config["max_items"],
            topic_owner=api.mqtt_credentials.household_for_topic,
            bridges=api.mqtt_credentials.bridges,
            # no state topic filter may reach into Linli's own topics (sources reserve theirs)
            reserved_topics=("linli",),
        )
        await self.inbox.async_start()
        for adapter_id in self._adopters:
            self._attach(adapter_id)
        counts = self.inbox.counts()
        _LOGGER.info(
            "discovery: inbox has %d pending of %d%s",
            counts["pending"],
            len(self.inbox.items),
            "" if config["enabled"] else "; disabled (discovery.enabled = false), the inbox keeps its items",
        )

    # -- the sources ---------------------------------------------------------------

    def add_source(self, name: str, source: Source) -> Callable[[], None]:
        """A source that listens now; returns the function that takes it back (on its stop)."""
        self.sources[name] = source
        self.failed.pop(name, None)

        def remove() -> None:
            if self.sources.get(name) is source:
                del self.sources[name]

        return remove

    def source_failed(self, name: str, exc: OSError, where: str) -> None:
        """A source that cannot open its sockets must not take the gateway down: said, and kept."""
        self.failed[name] = str(exc)
        _LOGGER.error(
            "discovery: %s cannot listen on %s (%s); the other sources carry on. "
            "Check discovery.interfaces names addresses of this machine",
            name,
            where,
            exc,
        )

    def adopted_zeroconf_types(self) -> list[str]:
        """The mDNS service types the adapters that adopt devices declare."""
        return [t for declaration, _ in self._adopters.values() for t in declared_types(declaration)]

    # -- adapters that adopt what they declare --------------------------------------

    def register_adopter(
        self, adapter_id: str, declaration: Declaration, adopt: FoundAdopter
    ) -> Callable[[], None]:
        """On approval, inbox items `declaration` claims go to `adopt` (see adopters.py).

        The adapter's zeroconf types are browsed from now on. Returns the unregister function.
        """
        self._adopters[adapter_id] = (declaration, adopt)
        if self.inbox is not None:
            self._attach(adapter_id)
        for source in self.sources.values():
            browse = getattr(source, "browse", None)
            if browse is not None:
                browse(declared_types(declaration))

        def unregister() -> None:
            if self._adopters.get(adapter_id, (None, None))[1] is adopt:
                del self._adopters[adapter_id]
                detach = self._unregister.pop(adapter_id, None)
                if detach is not None:
                    detach()

        return unregister

    def _attach(self, adapter_id: str) -> None:
        assert self.inbox is not None
        declaration, adopt = self._adopters[adapter_id]

        async def adopt_item(item: InboxItem, adoption: Adoption) -> Any:
            return await adopt(found_device(item, adoption))

        self._unregister[adapter_id] = self.inbox.register_adopter(
            adapter_id, lambda item: declaration_score(item, declaration), adopt_item
        )

    async def async_stop(self) -> None:
        self._unregister.clear()
        if self.inbox is not None:
            await self.inbox.async_stop()

    def async_scan(self) -> bool:
        """Search now (an SSDP M-SEARCH; mDNS browsers re-query on their own schedule)."""
        search = getattr(self.sources.get("ssdp"), "async_search", None)
        if search is None:
            return False
        search()
        return True

    def stats(self) -> dict[str, Any]:
        inbox = self.inbox
        return {
            "inbox": inbox.counts() if inbox else {},
            "rejected_inputs": inbox.rejected_inputs if inbox else 0,
            "dropped": inbox.dropped if inbox else 0,
            "sources": {name: name in self.sources for name in ("mqtt", "zeroconf", "ssdp")},
            "failed": self.failed,
        }
