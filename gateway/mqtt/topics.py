"""Linli's MQTT topic layout (documented in README.md, "MQTT topics").

    linli/<gateway-id>/status                 online | offline, retained (birth / last will)
    linli/v1/<household>/<device>             device state, JSON, published by the device or its hub
    linli/v1/<household>/<device>/set         commands to the device, JSON
    linli/v1/<household>/<device>/availability  online | offline, retained, from the device or hub
    linli/v1/discovery/<id>/config            native announcements, retained (gateway/discovery)
    linli/v1/discovery/<id>                   a native device's state until it is adopted

Devices that already speak another convention (Zigbee2MQTT's
`zigbee2mqtt/<name>`) keep their own topics: the registry routes by each
device's exact state topic, whatever its shape.
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "linli/v1"
DEVICE_STATE_FILTER: Final = f"{PREFIX}/+/+"
DEVICE_AVAILABILITY_FILTER: Final = f"{PREFIX}/+/+/availability"


def status_topic(gateway_id: str) -> str:
    return f"linli/{gateway_id}/status"


def device_topic(household_id: str, device_id: str) -> str:
    return f"{PREFIX}/{household_id}/{device_id}"


def is_plain_topic(topic: str) -> bool:
    """A topic a device may publish on: no wildcards, no NUL, not empty."""
    return bool(topic) and not any(c in topic for c in "+#\0") and len(topic) <= 1024
