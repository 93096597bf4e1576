"""What a Linli gateway runs: the composition root's choice of components.

The core (linli.gateway) starts whatever `components` the configuration names and
knows none of them; this list is what `linli run` and `linli demo` name when the
configuration file does not. Order matters only for readability: the gateway
starts them in the order their `requires` allow.
"""

from __future__ import annotations

from typing import Final

DEFAULT_COMPONENTS: Final[tuple[str, ...]] = (
    "linli.adapters.mqtt_device:MqttDeviceAdapter",  # devices speaking MQTT, by firmware profile
    "linli.gateway.discovery:Discovery",  # the inbox of devices found
    "linli.adapters.discovery.sources:MqttDiscoverySource",  # … announced on MQTT
    "linli.adapters.discovery.sources:ZeroconfSource",  # … on mDNS
    "linli.adapters.discovery.sources:SsdpSource",  # … on SSDP
    "linli.portal.app:Portal",  # residents, property managers, providers
    "linli.gateway.plugins.host:AdapterHost",  # the installed adapters (set-top boxes, ESPHome, …)
    "linli.services.screens.screens:Screens",  # alarms and announcements on the households' TVs
    "linli.services.alerts:AlertEngine",  # durable, escalating alerts
    "linli.services.eldercare:ElderCare",
    "linli.services.security:Security",
    "linli.services.health:Health",
)

#: What `linli demo` adds: a simulated community living on the same gateway.
DEMO_COMPONENTS: Final[tuple[str, ...]] = ("linli.sim.community:SimCommunity",)

#: The package whose sub-folders (each with a manifest.json) are the adapters shipped with Linli:
#: "@shipped" in adapters.allowed means these.
BUILTIN_ADAPTERS: Final = "linli.adapters"
