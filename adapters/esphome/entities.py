"""An ESPHome node's entities → a Linli firmware profile of its own.

ESPHome names what an entity senses with Home Assistant's device classes
(`door`, `moisture`, `smoke`, `temperature`, …), so the mapping is Home
Assistant's (gateway/discovery/ha_mapping.py): a door binary_sensor is a
`contact`, a moisture one a `water_leak`, a temperature sensor a
`temperature` in UCUM `Cel`; switches and lights are writable. Entities Linli
has no kind for (text sensors, buttons, a binary sensor without a class) are
listed as unmapped, never dropped silently.

The profile is ordinary profile data, checked by the same JSON Schema as a
shipped one: each capability reads the value under its own key, so a state
from the node is mapped (and checked) as `{key: value}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from aioesphomeapi import BinarySensorInfo, DeviceInfo, EntityInfo, LightInfo, SensorInfo, SwitchInfo

from linli.gateway.discovery.ha_mapping import BINARY_SENSOR_KINDS, CONTROL_KINDS, SENSOR_KINDS, unit_to_ucum
from linli.gateway.profiles import check_profile_data

PROFILE_VENDOR: Final = "esphome"

#: aioesphomeapi's entity info classes → the platform names ESPHome's YAML uses.
_PLATFORMS: Final[dict[type[EntityInfo], str]] = {
    BinarySensorInfo: "binary_sensor",
    SensorInfo: "sensor",
    SwitchInfo: "switch",
    LightInfo: "light",
}


def platform_of(info: EntityInfo) -> str:
    """`binary_sensor`, `sensor`, … (`text_sensor` for TextSensorInfo and the like)."""
    known = _PLATFORMS.get(type(info))
    if known is not None:
        return known
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(info).__name__.removesuffix("Info")).lower()


@dataclass(slots=True, frozen=True, kw_only=True)
class NodeModel:
    """What one node is to Linli: its profile data and which entity key feeds which capability."""

    profile: dict[str, Any]
    capabilities: dict[int, str]  # ESPHome entity key → capability key
    platforms: dict[str, str]  # capability key → platform (switch, light, …)
    unmapped: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "capabilities": {str(k): v for k, v in self.capabilities.items()},
            "platforms": self.platforms,
            "unmapped": self.unmapped,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeModel:
        return cls(
            profile=data["profile"],
            capabilities={int(k): v for k, v in data["capabilities"].items()},
            platforms=dict(data["platforms"]),
            unmapped=list(data.get("unmapped", [])),
        )


def _kind(platform: str, device_class: str) -> str | None:
    if platform == "binary_sensor":
        return BINARY_SENSOR_KINDS.get(device_class)
    if platform == "sensor":
        return SENSOR_KINDS.get(device_class)
    return CONTROL_KINDS.get(platform) if platform in ("switch", "light") else None


def _capability_key(object_id: str, taken: set[str]) -> str:
    key = re.sub(r"[^a-z0-9_]+", "_", object_id.lower()).strip("_")[:60] or "entity"
    if not key[0].isalpha():
        key = f"e_{key}"
    base, suffix = key, 2
    while key in taken:
        key = f"{base}_{suffix}"
        suffix += 1
    taken.add(key)
    return key


def profile_id_for(mac: str) -> str:
    """`esphome/a4cf12b3c4d5`: one profile per node, named by its MAC."""
    return f"{PROFILE_VENDOR}/{re.sub(r'[^0-9a-f]', '', mac.lower())}"


def node_model(device: DeviceInfo, entities: list[EntityInfo]) -> NodeModel:
    """The node's profile from its device info and entity list (ValueError if nothing maps)."""
    taken: set[str] = set()
    caps: list[dict[str, Any]] = []
    by_key: dict[int, str] = {}
    platforms: dict[str, str] = {}
    unmapped: list[dict[str, str]] = []
    for info in entities:
        platform = platform_of(info)
        device_class = str(getattr(info, "device_class", "") or "")
        kind = _kind(platform, device_class)
        if kind is None:
            unmapped.append(
                {
                    "platform": platform,
                    "object_id": info.object_id,
                    "name": info.name,
                    "device_class": device_class,
                    "why": f"Linli has no kind for a {platform}"
                    + (f" of class {device_class!r}" if device_class else " without a device class"),
                }
            )
            continue
        key = _capability_key(info.object_id or info.name, taken)
        cap: dict[str, Any] = {"key": key, "kind": kind, "name": info.name or key, "source": key}
        if platform == "sensor":
            unit = unit_to_ucum(getattr(info, "unit_of_measurement", ""))
            if unit:
                cap["unit"] = unit
        else:
            cap |= {"value_on": True, "value_off": False}
        if platform in ("switch", "light"):
            cap["access"] = "rw"
        caps.append(cap)
        by_key[info.key] = key
        platforms[key] = platform
    name = device.friendly_name or device.name
    if not caps:
        listed = ", ".join(f"{u['platform']} {u['object_id']}" for u in unmapped) or "none"
        raise ValueError(
            f"ESPHome node {name!r} has no entity Linli has a kind for (its entities: {listed}); "
            "give its binary sensors a device_class (door, smoke, moisture, …) or its sensors one "
            "(temperature, humidity, …) in the node's YAML"
        )
    profile = {
        "id": profile_id_for(device.mac_address),
        "vendor": device.manufacturer or "ESPHome",
        "model": device.model or "ESPHome node",
        "name": name,
        "description": (
            f"Built from the entities of ESPHome node {device.name} (esphome {device.esphome_version})"
        ),
        "capabilities": caps,
    }
    errors = check_profile_data(profile)
    if errors:  # a bug in the mapping above, not the node's fault; say which
        raise ValueError(f"profile for ESPHome node {name!r} is not valid: {'; '.join(errors[:3])}")
    return NodeModel(profile=profile, capabilities=by_key, platforms=platforms, unmapped=unmapped)
