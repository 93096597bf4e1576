"""The three discovery sources as components: each starts its listener and hands it to the inbox.

A source does nothing when `discovery.enabled` is false or the source is not in
`discovery.sources`; a source that cannot open its sockets is reported (in the
discovery component's stats and the log) and the others carry on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from linli.adapters.discovery.mqtt import MqttDiscovery
from linli.adapters.discovery.ssdp import SsdpDiscovery
from linli.adapters.discovery.tasmota import TASMOTA_PREFIX
from linli.adapters.discovery.zeroconf import DEFAULT_TYPES, ZeroconfDiscovery
from linli.gateway.component import ComponentApi
from linli.gateway.discovery import DISCOVERY, Discovery
from linli.gateway.discovery.identity import renderer_udn

_LOGGER = logging.getLogger(__name__)


def _settings(api: ComponentApi, source: str) -> tuple[Discovery, dict[str, Any]] | None:
    """The discovery component and its settings, or None when this source is not to listen."""
    config = api.config["discovery"]
    if not config["enabled"] or source not in config["sources"]:
        return None
    return api.require(DISCOVERY), config


def _where(config: dict[str, Any]) -> str:
    interfaces = config["interfaces"]
    return "every interface" if interfaces == "all" else ", ".join(interfaces)


class MqttDiscoverySource:
    """Announcements on MQTT: Home Assistant's discovery, Tasmota's own, Linli's native topics."""

    name = "discovery_mqtt"
    requires = ("discovery", "mqtt")

    def __init__(self) -> None:
        self.listener: MqttDiscovery | None = None

    async def async_start(self, api: ComponentApi) -> None:
        found = _settings(api, "mqtt")
        if found is None:
            return
        discovery, config = found
        assert discovery.inbox is not None
        mqtt_cfg = config["mqtt"]
        # no device's state topic filter may reach into the announcements
        discovery.inbox.reserve_topics(mqtt_cfg["prefix"], TASMOTA_PREFIX)
        listener = MqttDiscovery(
            discovery.inbox,
            api.mqtt,
            prefix=mqtt_cfg["prefix"],
            max_config_bytes=mqtt_cfg["max_config_bytes"],
        )
        await listener.async_start()
        self.listener = listener
        api.on_stop(discovery.add_source("mqtt", listener))
        _LOGGER.info("discovery: listening on mqtt (%s)", ", ".join(listener.filters))

    async def async_stop(self) -> None:
        if self.listener is not None:
            await self.listener.async_stop()
            self.listener = None


def zeroconf_types(config: dict[str, Any], profile_types: list[str]) -> list[str]:
    """The configured types, the defaults, and every type a firmware profile declares."""
    return sorted({*config["zeroconf"].get("types", DEFAULT_TYPES), *profile_types})


class ZeroconfSource:
    """mDNS/DNS-SD: the configured service types, those profiles declare, those adapters adopt."""

    name = "discovery_zeroconf"
    requires = ("discovery",)

    def __init__(self) -> None:
        self.listener: ZeroconfDiscovery | None = None

    async def async_start(self, api: ComponentApi) -> None:
        found = _settings(api, "zeroconf")
        if found is None:
            return
        discovery, config = found
        assert discovery.inbox is not None
        profile_types = [
            p.match["zeroconf"]["type"] for p in api.profiles.profiles.values() if "zeroconf" in p.match
        ]
        listener = ZeroconfDiscovery(
            discovery.inbox,
            interfaces=config["interfaces"],
            types=zeroconf_types(config, [*profile_types, *discovery.adopted_zeroconf_types()]),
            resolve_timeout_s=config["zeroconf"]["resolve_timeout_s"],
        )
        try:
            await listener.async_start()
        except OSError as exc:
            discovery.source_failed("zeroconf", exc, _where(config))
            return
        self.listener = listener
        api.on_stop(discovery.add_source("zeroconf", listener))
        _LOGGER.info("discovery: listening on zeroconf (%d types on %s)", len(listener.types), _where(config))

    async def async_stop(self) -> None:
        if self.listener is not None:
            await self.listener.async_stop()
            self.listener = None


def _own_renderer(api: ComponentApi) -> Callable[[str], bool]:
    """Whether a UDN is one of this gateway's own cast renderers (recomputed as homes change)."""
    known: dict[str, Any] = {"households": None, "udns": frozenset()}

    def own(udn: str) -> bool:
        households = api.registry.households
        if known["households"] != len(households):
            known["households"] = len(households)
            known["udns"] = frozenset(renderer_udn(api.gateway_id, h) for h in households)
        return udn in known["udns"]

    return own


class SsdpSource:
    """SSDP: alive/byebye announcements and searches, with each device's UPnP description."""

    name = "discovery_ssdp"
    requires = ("discovery",)

    def __init__(self) -> None:
        self.listener: SsdpDiscovery | None = None

    async def async_start(self, api: ComponentApi) -> None:
        found = _settings(api, "ssdp")
        if found is None:
            return
        discovery, config = found
        assert discovery.inbox is not None
        ssdp_cfg = config["ssdp"]
        if config["interfaces"] == "all":
            import ifaddr

            interfaces = [
                ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips if isinstance(ip.ip, str)
            ]
        else:
            interfaces = list(config["interfaces"])
        listener = SsdpDiscovery(
            discovery.inbox,
            interfaces=interfaces,
            group=ssdp_cfg["group"],
            port=ssdp_cfg["port"],
            mx=ssdp_cfg["mx"],
            search_interval_s=ssdp_cfg["search_interval_s"],
            description_timeout_s=ssdp_cfg["description_timeout_s"],
            max_description_bytes=ssdp_cfg["max_description_bytes"],
            own=_own_renderer(api),
        )
        try:
            await listener.async_start()
        except OSError as exc:
            discovery.source_failed("ssdp", exc, _where(config))
            return
        self.listener = listener
        api.on_stop(discovery.add_source("ssdp", listener))
        _LOGGER.info(
            "discovery: listening on ssdp (%s:%d on %s)", ssdp_cfg["group"], ssdp_cfg["port"], _where(config)
        )

    async def async_stop(self) -> None:
        if self.listener is not None:
            await self.listener.async_stop()
            self.listener = None


#: The three, as the composition root lists them (linli/components.py).
SOURCE_COMPONENTS = (
    "linli.adapters.discovery.sources:MqttDiscoverySource",
    "linli.adapters.discovery.sources:ZeroconfSource",
    "linli.adapters.discovery.sources:SsdpSource",
)
