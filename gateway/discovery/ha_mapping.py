"""Home Assistant entity configs → Linli capabilities (DESIGN.md, "The capability model").

A binary sensor's device class says what it senses (door → contact, moisture →
water_leak, safety → sos_button as Zigbee2MQTT marks SOS buttons); a sensor's
device class and unit say what it measures. Entities that Linli has no kind for
(buttons, firmware updates, diagnostics) are listed as unmapped, not dropped.
"""

from __future__ import annotations

import re
from typing import Any, Final

from linli.gateway.discovery.model import ProposedCapability

#: Every entity platform of Home Assistant's MQTT integration (plus `device` for the device form).
HA_COMPONENTS: Final = frozenset(
    {
        "alarm_control_panel",
        "binary_sensor",
        "button",
        "camera",
        "climate",
        "cover",
        "device_automation",
        "device_tracker",
        "event",
        "fan",
        "humidifier",
        "image",
        "lawn_mower",
        "light",
        "lock",
        "notify",
        "number",
        "scene",
        "select",
        "sensor",
        "siren",
        "switch",
        "tag",
        "text",
        "update",
        "vacuum",
        "valve",
        "water_heater",
    }
)

BINARY_SENSOR_KINDS: Final[dict[str, str]] = {
    "door": "contact",
    "window": "contact",
    "garage_door": "contact",
    "opening": "contact",
    "motion": "motion",
    "occupancy": "occupancy",
    "presence": "presence",
    "smoke": "smoke",
    "gas": "gas",
    "carbon_monoxide": "gas",
    "moisture": "water_leak",
    "safety": "sos_button",
    "tamper": "tamper",
    "vibration": "activity",
    "lock": "lock",
}

SENSOR_KINDS: Final[dict[str, str]] = {
    "temperature": "temperature",
    "humidity": "humidity",
    "battery": "battery",
    "power": "power_usage",
    "energy": "energy",
    "signal_strength": "signal",
    "weight": "weight",
    # Linli has no illuminance kind; the shipped motion profiles keep lux as a `signal` too.
    "illuminance": "signal",
}

#: Event types (Zigbee2MQTT `action` values) that mean "help, now": an SOS alarm on every press.
EMERGENCY_EVENTS: Final = frozenset({"emergency", "sos", "panic", "sos_alarm", "help"})

#: Writable platforms with a Linli kind of their own.
CONTROL_KINDS: Final[dict[str, str]] = {
    "switch": "switch",
    "light": "light",
    "lock": "lock",
    "siren": "siren",
}

#: Units as Home Assistant devices write them → UCUM (as Linli stores them).
UCUM: Final[dict[str, str]] = {
    "°C": "Cel",
    "°F": "[degF]",
    "%": "%",
    "W": "W",
    "kW": "kW",
    "Wh": "W.h",
    "kWh": "kW.h",
    "kg": "kg",
    "g": "g",
    "dB": "dB",
    "dBm": "dB[mW]",
    "V": "V",
    "A": "A",
    "lx": "lx",
    "lqi": "1",
}

# `{{ value_json.contact }}`, `{{value_json['ENERGY']['Power']}}`, `{{ value_json["AM2301"].Temperature }}`
_VALUE_JSON: Final = re.compile(
    r"^\{\{\s*value_json((?:\.[A-Za-z_][\w]*|\[\s*['\"][^'\"\]]+['\"]\s*\])+)\s*(?:\|[^}]*)?\}\}$"
)
_PATH_PART: Final = re.compile(r"\.([A-Za-z_]\w*)|\[\s*['\"]([^'\"\]]+)['\"]\s*\]")


def template_path(template: Any) -> str | None:
    """The dotted payload path a simple `value_json` template reads; None for anything else."""
    if not isinstance(template, str):
        return None
    match = _VALUE_JSON.match(template.strip())
    if match is None:
        return None
    parts = [a or b for a, b in _PATH_PART.findall(match.group(1))]
    return ".".join(parts) if parts and all("." not in p for p in parts) else None


def unit_to_ucum(unit: Any) -> str | None:
    if not isinstance(unit, str) or not unit:
        return None
    return UCUM.get(unit, unit)


def capability_for(component: str, object_id: str, config: dict[str, Any]) -> ProposedCapability | None:
    """The Linli capability one entity config stands for, if Linli has a kind for it."""
    device_class = config.get("device_class")
    kind: str | None = None
    access = "r"
    if component == "binary_sensor":
        kind = BINARY_SENSOR_KINDS.get(str(device_class))
    elif component == "sensor":
        kind = SENSOR_KINDS.get(str(device_class))
    elif component == "event":
        # A button's presses; an SOS button when one of its event types is an emergency.
        types = {str(t) for t in config.get("event_types") or () if isinstance(t, str)}
        emergency = bool(types & EMERGENCY_EVENTS)
        return ProposedCapability(
            key=re.sub(r"[^a-z0-9_]", "_", object_id.lower())[:64] or "action",
            kind="sos_button" if emergency else "button",
            topic=config.get("state_topic") if isinstance(config.get("state_topic"), str) else None,
            origin="event",
        )
    elif component in CONTROL_KINDS:
        kind = CONTROL_KINDS[component]
        access = "rw" if config.get("command_topic") else "r"
    if kind is None:
        return None
    template = config.get("value_template") or config.get("state_value_template")
    on = config.get("payload_on", "ON") if kind not in ("lock",) else config.get("state_unlocked")
    off = config.get("payload_off", "OFF") if kind not in ("lock",) else config.get("state_locked")
    binary = component != "sensor"
    return ProposedCapability(
        key=re.sub(r"[^a-z0-9_]", "_", object_id.lower())[:64] or kind,
        kind=kind,
        unit=unit_to_ucum(config.get("unit_of_measurement")),
        access=access,
        path=template_path(template),
        topic=config.get("state_topic") if isinstance(config.get("state_topic"), str) else None,
        value_on=on if binary else None,
        value_off=off if binary else None,
        origin=f"{component}/{device_class}" if device_class else component,
    )
