"""Home Assistant MQTT discovery's abbreviated keys, and the `~` topic base.

Devices shorten their discovery configs (`stat_t` for `state_topic`,
`dev` → `device` with `mf`, `mdl`, `sw`, …) to fit small MQTT buffers; Tasmota
and ESPHome always do, Zigbee2MQTT never does. The convention is documented in
Home Assistant's MQTT discovery docs ("Using abbreviations and base topic").
This table holds the abbreviations of every key Linli reads plus the common
rest, grouped by what they are about; unknown abbreviations are kept as they
are (they cannot hide a key Linli needs, because Linli needs only these).
"""

from __future__ import annotations

from typing import Any, Final

TOPIC_BASE: Final = "~"


def _with_suffixes(stems: dict[str, str]) -> dict[str, str]:
    """`{"stat": "state"}` → stat_t/state_topic, stat_tpl/state_template (the usual pairs)."""
    table: dict[str, str] = {}
    for short, long in stems.items():
        table[f"{short}_t"] = f"{long}_topic"
        table[f"{short}_tpl"] = f"{long}_template"
    return table


#: Entity config keys (the top level of a config, and of each `cmps` entry).
ABBREVIATIONS: Final[dict[str, str]] = {
    # identity and presentation
    "uniq_id": "unique_id",
    "obj_id": "object_id",
    "def_ent_id": "default_entity_id",
    "dev_cla": "device_class",
    "stat_cla": "state_class",
    "unit_of_meas": "unit_of_measurement",
    "sug_dsp_prc": "suggested_display_precision",
    "ent_cat": "entity_category",
    "ent_pic": "entity_picture",
    "en": "enabled_by_default",
    "ic": "icon",
    "dev": "device",
    "o": "origin",
    "cmps": "components",
    "p": "platform",
    "e": "encoding",
    "qos": "qos",
    "ret": "retain",
    "opt": "optimistic",
    "frc_upd": "force_update",
    "exp_aft": "expire_after",
    "off_dly": "off_delay",
    # availability
    "avty": "availability",
    "avty_mode": "availability_mode",
    "avty_t": "availability_topic",
    "avty_tpl": "availability_template",
    "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available",
    # state and command topics and templates
    "t": "topic",
    "val_tpl": "value_template",
    "stat_val_tpl": "state_value_template",
    "cmd_t": "command_topic",
    "cmd_tpl": "command_template",
    "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template",
    "stat_t": "state_topic",
    "stat_tpl": "state_template",
    # payloads and states
    "pl": "payload",
    "pl_on": "payload_on",
    "pl_off": "payload_off",
    "pl_prs": "payload_press",
    "pl_lock": "payload_lock",
    "pl_unlk": "payload_unlock",
    "pl_open": "payload_open",
    "pl_cls": "payload_close",
    "pl_stop": "payload_stop",
    "pl_home": "payload_home",
    "pl_not_home": "payload_not_home",
    "pl_arm_away": "payload_arm_away",
    "pl_arm_home": "payload_arm_home",
    "pl_arm_nite": "payload_arm_night",
    "pl_disarm": "payload_disarm",
    "pl_trig": "payload_trigger",
    "pl_rst": "payload_reset",
    "stat_on": "state_on",
    "stat_off": "state_off",
    "stat_open": "state_open",
    "stat_clsd": "state_closed",
    "stat_locked": "state_locked",
    "stat_unlocked": "state_unlocked",
    # numbers, options, modes
    "min": "min",
    "max": "max",
    "step": "step",
    "mode": "mode",
    "ops": "options",
    "modes": "modes",
    "min_temp": "min_temp",
    "max_temp": "max_temp",
    "temp_unit": "temperature_unit",
    "bri_scl": "brightness_scale",
    "clrm": "color_mode",
    "sup_clrm": "supported_color_modes",
    "fx_list": "effect_list",
    "pr_modes": "preset_modes",
    "atype": "automation_type",
    "stype": "subtype",
    "sup_feat": "supported_features",
    "src_type": "source_type",
    "av_tones": "available_tones",
    "sup_dur": "support_duration",
    "sup_vol": "support_volume_set",
    # the paired *_t / *_tpl keys of lights, covers, climate, fans, locks and vacuums
    **_with_suffixes(
        {
            "act": "action",
            "bri": "brightness",
            "bri_cmd": "brightness_command",
            "bri_stat": "brightness_state",
            "clr_temp": "color_temp",
            "clr_temp_cmd": "color_temp_command",
            "clr_temp_stat": "color_temp_state",
            "curr_temp": "current_temperature",
            "curr_hum": "current_humidity",
            "temp_cmd": "temperature_command",
            "temp_stat": "temperature_state",
            "mode_cmd": "mode_command",
            "mode_stat": "mode_state",
            "fan_mode_cmd": "fan_mode_command",
            "fan_mode_stat": "fan_mode_state",
            "pr_mode_cmd": "preset_mode_command",
            "pr_mode_stat": "preset_mode_state",
            "pct_cmd": "percentage_command",
            "pct_stat": "percentage_state",
            "pos": "position",
            "set_pos": "set_position",
            "tilt_cmd": "tilt_command",
            "tilt_status": "tilt_status",
            "fx_cmd": "effect_command",
            "fx_stat": "effect_state",
            "rgb_cmd": "rgb_command",
            "rgb_stat": "rgb_state",
            "xy_cmd": "xy_command",
            "xy_stat": "xy_state",
            "hs_cmd": "hs_command",
            "hs_stat": "hs_state",
            "bat_lev": "battery_level",
            "chrg": "charging",
            "err": "error",
            "lrst": "last_reset",
        }
    ),
}

#: Keys of the `dev` (device) block.
DEVICE_ABBREVIATIONS: Final[dict[str, str]] = {
    "ids": "identifiers",
    "cns": "connections",
    "name": "name",
    "mf": "manufacturer",
    "mdl": "model",
    "mdl_id": "model_id",
    "hw": "hw_version",
    "sw": "sw_version",
    "sn": "serial_number",
    "sa": "suggested_area",
    "cu": "configuration_url",
    "via_device": "via_device",
}

#: Keys of the `o` (origin: the software that published the config) block.
ORIGIN_ABBREVIATIONS: Final[dict[str, str]] = {"name": "name", "sw": "sw_version", "url": "support_url"}


def _expand_keys(data: dict[str, Any], table: dict[str, str]) -> dict[str, Any]:
    return {table.get(key, key): value for key, value in data.items()}


def expand(config: dict[str, Any]) -> dict[str, Any]:
    """Long keys throughout (top level, `device`, `origin`, `availability` items, `components`)."""
    out = _expand_keys(config, ABBREVIATIONS)
    device = out.get("device")
    if isinstance(device, dict):
        out["device"] = _expand_keys(device, DEVICE_ABBREVIATIONS)
    origin = out.get("origin")
    if isinstance(origin, dict):
        out["origin"] = _expand_keys(origin, ORIGIN_ABBREVIATIONS)
    availability = out.get("availability")
    if isinstance(availability, list):
        out["availability"] = [
            _expand_keys(a, ABBREVIATIONS) if isinstance(a, dict) else a for a in availability
        ]
    components = out.get("components")
    if isinstance(components, dict):
        out["components"] = {
            key: expand(value) if isinstance(value, dict) else value for key, value in components.items()
        }
    return out


def apply_topic_base(config: dict[str, Any]) -> dict[str, Any]:
    """Replace `~` at the start or end of every `*_topic` (and availability `topic`) with the base."""
    base = config.pop(TOPIC_BASE, None)
    if not isinstance(base, str) or not base:
        return config

    def resolve(value: str) -> str:
        if value.startswith(TOPIC_BASE):
            return base + value[1:]
        if value.endswith(TOPIC_BASE):
            return value[:-1] + base
        return value

    for key, value in config.items():
        if key.endswith("topic") and isinstance(value, str) and value:
            config[key] = resolve(value)
    availability = config.get("availability")
    if isinstance(availability, list):
        for entry in availability:
            if isinstance(entry, dict) and isinstance(entry.get("topic"), str) and entry["topic"]:
                entry["topic"] = resolve(entry["topic"])
    components = config.get("components")
    if isinstance(components, dict):
        for component in components.values():
            if isinstance(component, dict):
                component.setdefault(TOPIC_BASE, base)
                apply_topic_base(component)
    return config
