"""Component `discovery`: the inbox and the sources that feed it (config section `discovery`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from linli.gateway.discovery.adopters import Declaration, FoundAdopter, found_device
from linli.gateway.discovery.adopters import zeroconf_types as declared_types
from linli.gateway.discovery.identity import renderer_udn
from linli.gateway.discovery.inbox import Adoption, Inbox
from linli.gateway.discovery.matching import declaration_score
from linli.gateway.discovery.migrations import MIGRATIONS
from linli.gateway.discovery.model import InboxItem
from linli.gateway.discovery.mqtt_discovery import MqttDiscovery
from linli.gateway.discovery.ssdp import SsdpDiscovery
from linli.gateway.discovery.tasmota import TASMOTA_PREFIX
from linli.gateway.discovery.zeroconf import DEFAULT_TYPES, ZeroconfDiscovery

if TYPE_CHECKING:
    from linli.gateway.component import ComponentApi

_LOGGER = logging.getLogger(__name__)


def zeroconf_types(config: dict[str, Any], profile_types: list[str]) -> list[str]:
    """The configured types, the defaults, and every type a firmware profile declares."""
    return sorted({*config["zeroconf"].get("types", DEFAULT_TYPES), *profile_types})


class Discovery:
    """Finds devices (zeroconf, SSDP, MQTT discovery) and keeps them in the inbox."""

    name = "discovery"
    requires = ("registry", "mqtt")
    migrations = MIGRATIONS  # its own tables, made before it starts

    def __init__(self) -> None:
        self.inbox: Inbox | None = None
        self.mqtt: MqttDiscovery | None = None
        self.zeroconf: ZeroconfDiscovery | None = None
        self.ssdp: SsdpDiscovery | None = None
        self.failed: dict[str, str] = {}
        # Adapters that adopt what they declare; kept across this component's own restarts.
        self._adopters: dict[str, tuple[Declaration, FoundAdopter]] = {}
        self._unregister: dict[str, Callable[[], None]] = {}

    @staticmethod
    def _own_renderer(gateway: ComponentApi) -> Callable[[str], bool]:
        """Whether a UDN is one of this gateway's own cast renderers (recomputed as homes change)."""
        known: dict[str, Any] = {"households": None, "udns": frozenset()}

        def own(udn: str) -> bool:
            households = gateway.registry.households
            if known["households"] != len(households):
                known["households"] = len(households)
                known["udns"] = frozenset(renderer_udn(gateway.gateway_id, h) for h in households)
            return udn in known["udns"]

        return own

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
            # no state topic filter may reach into Linli's own topics or the announcements
            reserved_topics=("linli", config["mqtt"]["prefix"], TASMOTA_PREFIX),
        )
        await self.inbox.async_start()
        for adapter_id in self._adopters:
            self._attach(adapter_id)
        if not config["enabled"]:
            _LOGGER.info("discovery: disabled (discovery.enabled = false); the inbox keeps its items")
            return
        sources = config["sources"]
        interfaces = config["interfaces"]
        started: list[str] = []
        if "mqtt" in sources:
            mqtt_cfg = config["mqtt"]
            self.mqtt = MqttDiscovery(
                self.inbox,
                api.mqtt,
                prefix=mqtt_cfg["prefix"],
                max_config_bytes=mqtt_cfg["max_config_bytes"],
            )
            await self.mqtt.async_start()
            started.append(f"mqtt ({', '.join(self.mqtt.filters)})")
        where = "every interface" if interfaces == "all" else ", ".join(interfaces)
        if "zeroconf" in sources:
            profile_types = [
                p.match["zeroconf"]["type"]
                for p in api.profiles.profiles.values()
                if "zeroconf" in p.match
            ]
            zeroconf = ZeroconfDiscovery(
                self.inbox,
                interfaces=interfaces,
                types=zeroconf_types(
                    config,
                    [*profile_types, *(t for d, _ in self._adopters.values() for t in declared_types(d))],
                ),
                resolve_timeout_s=config["zeroconf"]["resolve_timeout_s"],
            )
            try:
                await zeroconf.async_start()
            except OSError as exc:
                self._source_failed("zeroconf", exc, where)
            else:
                self.zeroconf = zeroconf
                started.append(f"zeroconf ({len(zeroconf.types)} types on {where})")
        if "ssdp" in sources:
            ssdp_cfg = config["ssdp"]
            if interfaces == "all":
                import ifaddr

                ssdp_interfaces = [
                    ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips if isinstance(ip.ip, str)
                ]
            else:
                ssdp_interfaces = list(interfaces)
            ssdp = SsdpDiscovery(
                self.inbox,
                interfaces=ssdp_interfaces,
                group=ssdp_cfg["group"],
                port=ssdp_cfg["port"],
                mx=ssdp_cfg["mx"],
                search_interval_s=ssdp_cfg["search_interval_s"],
                description_timeout_s=ssdp_cfg["description_timeout_s"],
                max_description_bytes=ssdp_cfg["max_description_bytes"],
                own=self._own_renderer(api),
            )
            try:
                await ssdp.async_start()
            except OSError as exc:
                self._source_failed("ssdp", exc, where)
            else:
                self.ssdp = ssdp
                started.append(f"ssdp ({ssdp_cfg['group']}:{ssdp_cfg['port']} on {where})")
        counts = self.inbox.counts()
        _LOGGER.info(
            "discovery: inbox has %d pending of %d; listening on %s",
            counts["pending"],
            len(self.inbox.items),
            "; ".join(started) or "nothing",
        )

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
        if self.zeroconf is not None:
            self.zeroconf.browse(declared_types(declaration))

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

    def _source_failed(self, source: str, exc: OSError, where: str) -> None:
        # One source that cannot open its sockets must not take the gateway down.
        self.failed[source] = str(exc)
        _LOGGER.error(
            "discovery: %s cannot listen on %s (%s); the other sources carry on. "
            "Check discovery.interfaces names addresses of this machine",
            source,
            where,
            exc,
        )

    async def async_stop(self) -> None:
        for source in (self.ssdp, self.zeroconf, self.mqtt):
            if source is not None:
                await source.async_stop()
        self.ssdp = self.zeroconf = self.mqtt = None
        self._unregister.clear()
        if self.inbox is not None:
            await self.inbox.async_stop()

    def async_scan(self) -> bool:
        """Search now (an SSDP M-SEARCH; mDNS browsers re-query on their own schedule)."""
        if self.ssdp is None:
            return False
        self.ssdp.async_search()
        return True

    def stats(self) -> dict[str, Any]:
        inbox = self.inbox
        return {
            "inbox": inbox.counts() if inbox else {},
            "rejected_inputs": inbox.rejected_inputs if inbox else 0,
            "dropped": inbox.dropped if inbox else 0,
            "sources": {
                "mqtt": self.mqtt is not None,
                "zeroconf": self.zeroconf is not None,
                "ssdp": self.ssdp is not None,
            },
            "failed": self.failed,
        }
