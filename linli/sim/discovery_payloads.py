"""MQTT discovery configs in the shapes real projects publish (for the demo, tests and bench).

Each function returns `(topic, payload)` pairs to publish retained. Where each
shape comes from:

* `zigbee2mqtt_*` — Zigbee2MQTT's Home Assistant extension
  (`lib/extension/homeassistant.ts`, 1.3x–2.x): one config per exposed
  feature under `<prefix>/<component>/<ieee>/<feature>/config`, full key
  names (never abbreviated), `device.identifiers = ["zigbee2mqtt_<ieee>"]`,
  `model_id` beside the `model` description, `via_device` naming the bridge,
  an `origin` block, and two availability topics (bridge and device, mode
  "all"). Binary features carry their own `payload_on`/`payload_off`: for a
  door contact `payload_on` is `false` (no contact = open). Zigbee2MQTT leaves
  out `sw_version` when the device never reported a software build id, as
  many Aqara end devices do.
* `tasmota_*` — Tasmota's legacy Home Assistant discovery (`SetOption19 1`,
  `xdrv_12_home_assistant.ino`, 8.x–9.x) with FullTopic `%topic%/%prefix%/`:
  abbreviated keys, the `~` topic base, `uniq_id` = `<MAC>_RL_1` /
  `<MAC>_ENERGY_Power`, `dev.ids` = `[<MAC>]`, LWT availability
  `Online`/`Offline`, `node_id`-less topics `<prefix>/switch/<uniq_id>/config`.
* `esphome_*` — ESPHome's MQTT discovery (`esphome/components/mqtt/
  mqtt_component.cpp`): `<prefix>/<component>/<node name>/<object_id>/config`,
  abbreviated keys, state on `<node>/<component>/<object_id>/state` (raw
  values, no JSON), `<node>/status` availability, `dev.ids` a bare MAC string
  and `dev.cns` `[["mac", …]]`.
* `ha_device_form` — Home Assistant's device-based discovery (2024.11+, the
  example in its MQTT docs): one `<prefix>/device/<id>/config` with `dev`, `o`,
  `cmps` (each with its platform `p`) and a shared `state_topic`.
* `linli_native` — Linli's own announcement (adapters/discovery/mqtt.py,
  NATIVE_SCHEMA) on `linli/v1/discovery/<id>/config`.
"""

from __future__ import annotations

from typing import Any

Message = tuple[str, dict[str, Any]]


def _z2m_common(ieee: str, name: str, base: str, model_id: str, model: str, vendor: str) -> dict[str, Any]:
    return {
        "availability": [
            {"topic": f"{base}/bridge/state", "value_template": "{{ value_json.state }}"},
            {"topic": f"{base}/{name}/availability", "value_template": "{{ value_json.state }}"},
        ],
        "availability_mode": "all",
        "device": {
            "identifiers": [f"zigbee2mqtt_{ieee}"],
            "manufacturer": vendor,
            "model": model,
            "model_id": model_id,
            "name": name,
            "via_device": "zigbee2mqtt_bridge_0x00124b0024c1a2b3",
        },
        "origin": {"name": "Zigbee2MQTT", "sw": "2.1.1", "url": "https://www.zigbee2mqtt.io"},
        "state_topic": f"{base}/{name}",
    }


def _z2m_entity(
    prefix: str, component: str, ieee: str, feature: str, common: dict[str, Any], **fields: Any
) -> Message:
    name = common["device"]["name"]
    payload = {
        **common,
        "object_id": f"{name}_{feature}".replace("/", "_"),
        "unique_id": f"{ieee}_{feature}_zigbee2mqtt",
        "value_template": f"{{{{ value_json.{feature} }}}}",
        **fields,
    }
    return f"{prefix}/{component}/{ieee}/{feature}/config", payload


def zigbee2mqtt_contact_sensor(
    ieee: str, name: str, *, base: str = "zigbee2mqtt", prefix: str = "homeassistant"
) -> list[Message]:
    """Aqara MCCGQ11LM door/window contact, as Zigbee2MQTT announces it."""
    common = _z2m_common(ieee, name, base, "MCCGQ11LM", "Door and window sensor", "Aqara")
    return [
        _z2m_entity(
            prefix, "binary_sensor", ieee, "contact", common,
            name="Contact", device_class="door", payload_on=False, payload_off=True,
        ),
        _z2m_entity(
            prefix, "sensor", ieee, "battery", common,
            name="Battery", device_class="battery", entity_category="diagnostic",
            state_class="measurement", unit_of_measurement="%",
        ),
        _z2m_entity(
            prefix, "sensor", ieee, "voltage", common,
            name="Voltage", device_class="voltage", entity_category="diagnostic",
            state_class="measurement", unit_of_measurement="mV", enabled_by_default=False,
        ),
        _z2m_entity(
            prefix, "sensor", ieee, "linkquality", common,
            name="Linkquality", entity_category="diagnostic", icon="mdi:signal",
            state_class="measurement", unit_of_measurement="lqi", enabled_by_default=False,
        ),
    ]  # fmt: skip


def zigbee2mqtt_motion_sensor(
    ieee: str, name: str, *, base: str = "zigbee2mqtt", prefix: str = "homeassistant"
) -> list[Message]:
    """Aqara RTCGQ11LM motion sensor, as Zigbee2MQTT announces it."""
    common = _z2m_common(ieee, name, base, "RTCGQ11LM", "Motion sensor", "Aqara")
    return [
        _z2m_entity(
            prefix, "binary_sensor", ieee, "occupancy", common,
            name="Occupancy", device_class="occupancy", payload_on=True, payload_off=False,
        ),
        _z2m_entity(
            prefix, "sensor", ieee, "illuminance_lux", common,
            name="Illuminance", device_class="illuminance", state_class="measurement",
            unit_of_measurement="lx",
        ),
        _z2m_entity(
            prefix, "sensor", ieee, "battery", common,
            name="Battery", device_class="battery", entity_category="diagnostic",
            state_class="measurement", unit_of_measurement="%",
        ),
    ]  # fmt: skip


def tasmota_plug(mac: str, topic: str, name: str, *, prefix: str = "homeassistant") -> list[Message]:
    """A Tasmota smart plug with energy monitoring (legacy HA discovery, `~` base)."""
    mac = mac.upper().replace(":", "")
    base = {"~": f"{topic}/", "avty_t": "~tele/LWT", "pl_avail": "Online", "pl_not_avail": "Offline"}
    return [
        (
            f"{prefix}/switch/{mac}_RL_1/config",
            {
                "name": name,
                "cmd_t": "~cmnd/POWER",
                "stat_t": "~tele/STATE",
                "val_tpl": "{{value_json.POWER}}",
                "pl_off": "OFF",
                "pl_on": "ON",
                "uniq_id": f"{mac}_RL_1",
                "dev": {
                    "ids": [mac],
                    "name": name,
                    "mdl": "Sonoff Pow R2",
                    "sw": "9.5.0(tasmota)",
                    "mf": "Tasmota",
                },
                **base,
            },
        ),
        (
            f"{prefix}/sensor/{mac}_ENERGY_Power/config",
            {
                "name": f"{name} ENERGY Power",
                "stat_t": "~tele/SENSOR",
                "uniq_id": f"{mac}_ENERGY_Power",
                "dev": {"ids": [mac]},
                "unit_of_meas": "W",
                "dev_cla": "power",
                "frc_upd": True,
                "val_tpl": "{{value_json['ENERGY']['Power']}}",
                **base,
            },
        ),
        (
            f"{prefix}/sensor/{mac}_ENERGY_Total/config",
            {
                "name": f"{name} ENERGY Total",
                "stat_t": "~tele/SENSOR",
                "uniq_id": f"{mac}_ENERGY_Total",
                "dev": {"ids": [mac]},
                "unit_of_meas": "kWh",
                "dev_cla": "energy",
                "val_tpl": "{{value_json['ENERGY']['Total']}}",
                **base,
            },
        ),
    ]


def esphome_climate(node: str, mac: str, *, prefix: str = "homeassistant") -> list[Message]:
    """An ESPHome temperature/humidity node (e.g. an ESP32 with a DHT22)."""
    mac = mac.lower().replace(":", "")
    device = {
        "ids": mac,
        "name": node,
        "sw": "2024.6.1 (ESPHome 2024.6.1)",
        "mdl": "esp32dev",
        "mf": "espressif",
        "cns": [["mac", mac]],
    }
    return [
        (
            f"{prefix}/sensor/{node}/{object_id}/config",
            {
                "dev_cla": object_id,
                "unit_of_meas": unit,
                "stat_cla": "measurement",
                "name": object_id.capitalize(),
                "stat_t": f"{node}/sensor/{object_id}/state",
                "avty_t": f"{node}/status",
                "uniq_id": f"ESPsensor{object_id}",
                "dev": device,
            },
        )
        for object_id, unit in (("temperature", "°C"), ("humidity", "%"))
    ]


def ha_device_form(object_id: str, *, prefix: str = "homeassistant") -> list[Message]:
    """Home Assistant's device-based discovery, as in its MQTT docs' example."""
    return [
        (
            f"{prefix}/device/{object_id}/config",
            {
                "dev": {
                    "ids": object_id,
                    "name": "Kitchen",
                    "mf": "Bla electronics",
                    "mdl": "xya",
                    "sw": "1.0",
                    "sn": object_id,
                    "hw": "1.0rev2",
                },
                "o": {"name": "bla2mqtt", "sw": "2.1", "url": "https://bla2mqtt.example.com/support"},
                "cmps": {
                    "some_unique_component_id1": {
                        "p": "sensor",
                        "device_class": "temperature",
                        "unit_of_measurement": "°C",
                        "value_template": "{{ value_json.temperature}}",
                        "unique_id": "temp01ae_t",
                    },
                    "some_unique_id2": {
                        "p": "sensor",
                        "device_class": "humidity",
                        "unit_of_measurement": "%",
                        "value_template": "{{ value_json.humidity}}",
                        "unique_id": "temp01ae_h",
                    },
                },
                "state_topic": f"sensor{object_id}/state",
                "qos": 2,
            },
        )
    ]


def linli_native(
    device_id: str, model: str, *, firmware: str = "1.4.0", name: str | None = None
) -> list[Message]:
    """A native Linli device's announcement."""
    payload: dict[str, Any] = {"id": device_id, "model": model, "manufacturer": "Linli", "firmware": firmware}
    if name:
        payload["name"] = name
    return [(f"linli/v1/discovery/{device_id}/config", payload)]
