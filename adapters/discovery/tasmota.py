"""Tasmota's own discovery → Home Assistant-shaped entity configs (no I/O).

Tasmota 9+ announces itself, retained, on

    tasmota/discovery/<MAC>/config    the device: names, topics, relays, options
    tasmota/discovery/<MAC>/sensors   its last SENSOR telemetry: {"sn": {"AM2301": {…}, …}}

with abbreviated keys (dn device name, fn friendly names, hn host name, md module, sw
firmware, t topic, ft full topic, tp prefixes cmnd/stat/tele, rl relay types, state the
OFF/ON/TOGGLE/HOLD words, onln/ofln the LWT words, so the options that change meaning).
Home Assistant's Tasmota integration (hatasmota) turns these into entities; so does this
module, into the same entity configs an MQTT discovery announcement carries, so that
mqtt_discovery.py puts them in the inbox and ha_profile.py adopts them unchanged:

* each relay (`rl` 1, or 2 / SetOption30 for a light) → a `switch` (or `light`) with
  `cmnd/<t>/POWER<n>` as its command topic and `stat/<t>/POWER` (one relay) or
  `stat/<t>/POWER<n>` as its state topic, which Tasmota publishes plainly (`ON`) on every change;
* each number in the sensors message that has a Home Assistant device class (Temperature,
  Humidity, Illuminance, ENERGY Power/Total/Voltage/Current, Pressure) → a `sensor` on
  `tele/<t>/SENSOR` with `{{ value_json['<sensor>']['<quantity>'] }}`;
* availability from `tele/<t>/LWT` (`Online` / `Offline`).

Shutters (`rl` 3), buttons and switch inputs are not mapped: Linli has no kind for them yet.
"""

from __future__ import annotations

import re
from typing import Any, Final

TASMOTA_PREFIX: Final = "tasmota/discovery"
_NAME: Final = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_RELAY: Final = 1
_LIGHT: Final = 2
_SETOPTION_RELAY_AS_LIGHT: Final = "30"
#: A quantity in a sensor's telemetry → (Home Assistant device class, unit); None: from the message.
_QUANTITIES: Final[dict[str, tuple[str, str | None]]] = {
    "Temperature": ("temperature", None),  # TempUnit: "C" or "F"
    "Humidity": ("humidity", "%"),
    "Illuminance": ("illuminance", "lx"),
    "Pressure": ("pressure", None),  # PressureUnit: "hPa" or "mmHg"
    "Power": ("power", "W"),
    "Total": ("energy", "kWh"),
    "Voltage": ("voltage", "V"),
    "Current": ("current", "A"),
}


class TasmotaConfigError(ValueError):
    """A Tasmota discovery message that cannot be used; the message says why."""


def _topic(config: dict[str, Any], prefix: str) -> str:
    """hatasmota's `_get_topic`: the full topic with its tokens filled in."""
    topic = str(config["ft"])
    for token, value in (
        ("%hostname%", config["hn"]),
        ("%id%", str(config["mac"])[-6:]),
        ("%prefix%", prefix),
        ("%topic%", config["t"]),
    ):
        topic = topic.replace(token, str(value))
    if "%" in topic:
        raise TasmotaConfigError(f"ft {config['ft']!r} has a token Linli does not know (%…%)")
    return topic


def topics(config: dict[str, Any]) -> tuple[str, str, str]:
    """(command, stat, tele) topic bases, each ending in "/"."""
    cmnd, stat, tele = (_topic(config, prefix) for prefix in config["tp"])
    return cmnd, stat, tele


def device_block(config: dict[str, Any]) -> dict[str, Any]:
    """The device as a Home Assistant `device` block (so the MAC keys the inbox item)."""
    mac = str(config["mac"]).upper()
    return {
        "identifiers": [mac],
        "connections": [["mac", mac]],
        "name": config.get("dn") or config["hn"],
        "manufacturer": "Tasmota",
        "model": config.get("md"),
        "sw_version": config.get("sw"),
    }


def _availability(config: dict[str, Any], tele: str) -> dict[str, Any]:
    return {
        "availability_topic": f"{tele}LWT",
        "payload_available": config["onln"],
        "payload_not_available": config["ofln"],
    }


def relay_entities(config: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(component, unique id, entity config) for each relay."""
    cmnd, stat, tele = topics(config)
    relays: list[int] = config["rl"]
    present = sum(1 for kind in relays if kind)
    states: list[str] = config["state"]
    names: list[Any] = config.get("fn") or []
    as_light = (config.get("so") or {}).get(_SETOPTION_RELAY_AS_LIGHT) == 1
    device = device_block(config)
    mac = device["identifiers"][0]
    found = []
    for index, kind in enumerate(relays):
        if kind not in (_RELAY, _LIGHT):
            continue
        n = index + 1
        component = "light" if kind == _LIGHT or as_light else "switch"
        unique_id = f"{mac}_RL_{n}"
        name = names[index] if index < len(names) and names[index] else f"{config['dn']} {n}"
        found.append(
            (
                component,
                unique_id,
                {
                    "name": name,
                    "unique_id": unique_id,
                    "object_id": f"relay_{n}",
                    # Tasmota names a single relay's state POWER and takes POWER1 for it too
                    "state_topic": f"{stat}POWER" if present == 1 else f"{stat}POWER{n}",
                    "command_topic": f"{cmnd}POWER{n}",
                    "payload_off": states[0],
                    "payload_on": states[1],
                    **_availability(config, tele),
                    "device": device,
                },
            )
        )
    return found


def sensor_entities(config: dict[str, Any], sensors: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(component, unique id, entity config) for each number in the sensors message Linli has a
    device class for; sensors and quantities with names a template cannot quote safely are skipped."""
    _, _, tele = topics(config)
    device = device_block(config)
    mac = device["identifiers"][0]
    readings: dict[str, Any] = sensors.get("sn") or {}
    temperature_unit = "°F" if readings.get("TempUnit") == "F" else "°C"
    pressure_unit = str(readings.get("PressureUnit") or "hPa")
    found = []
    for sensor, values in readings.items():
        if not isinstance(values, dict) or not _NAME.match(sensor):
            continue
        for quantity, value in values.items():
            known = _QUANTITIES.get(quantity)
            if known is None or isinstance(value, bool) or not isinstance(value, int | float):
                continue  # lists (multi-channel meters), text and unknown quantities
            device_class, unit = known
            if quantity == "Temperature":
                unit = temperature_unit
            elif quantity == "Pressure":
                unit = pressure_unit
            unique_id = f"{mac}_{sensor}_{quantity}"
            found.append(
                (
                    "sensor",
                    unique_id,
                    {
                        "name": f"{sensor} {quantity}",
                        "unique_id": unique_id,
                        "object_id": f"{sensor}_{quantity}".lower(),
                        "state_topic": f"{tele}SENSOR",
                        "value_template": f"{{{{ value_json['{sensor}']['{quantity}'] }}}}",
                        "device_class": device_class,
                        "unit_of_measurement": unit,
                        "state_class": "measurement",
                        **_availability(config, tele),
                        "device": device,
                    },
                )
            )
    return found
