"""What a usable discovery config looks like: the JSON Schemas, and their fast path.

The schemas are the specification (and word every error, with its JSON path).
Checking each retained config with jsonschema costs ~400 µs, which is most of
the time a burst of thousands of configs takes, so the common case is checked
by `_ha_config_ok` (a few µs) first; only a config it refuses goes through
jsonschema, which then says exactly what is wrong — or accepts it, if the fast
path was stricter than the schema. tests/test_discovery_schema.py checks that
the two agree.
"""

from __future__ import annotations

import re
from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

_TOPIC: Final = {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": "^[^+#\\u0000]*$"}
#: A state topic may be a filter of whole-level `+` wildcards ending in a literal level, as
#: OpenMQTTGateway announces BLE devices (`+/+/BTtoMQTT/<MAC>`); never `#` (topic_filters.py).
_STATE_TOPIC: Final = {
    "type": "string",
    "minLength": 1,
    "maxLength": 1024,
    "pattern": "^[^+#\\u0000]*$|^(?:(?:[^+#/\\u0000]*|\\+)/)+[^+#/\\u0000]+$",
}
_TEXT: Final = {"type": ["string", "null"], "maxLength": 256}
_AVAILABILITY: Final = {
    "type": "array",
    "maxItems": 16,
    "items": {
        "type": "object",
        "required": ["topic"],
        "properties": {"topic": _TOPIC, "payload_available": _TEXT, "payload_not_available": _TEXT},
    },
}
_DEVICE: Final[dict[str, Any]] = {
    "type": "object",
    "maxProperties": 64,
    "properties": {
        "identifiers": {
            "anyOf": [
                {"type": "string", "minLength": 1, "maxLength": 256},
                {
                    "type": "array",
                    "maxItems": 32,
                    "items": {"type": "string", "minLength": 1, "maxLength": 256},
                },
            ]
        },
        "connections": {
            "type": "array",
            "maxItems": 32,
            "items": {
                "type": "array",
                "minItems": 2,
                "maxItems": 2,
                "items": {"type": "string", "maxLength": 256},
            },
        },
        **{
            key: _TEXT
            for key in (
                "name",
                "manufacturer",
                "model",
                "model_id",
                "sw_version",
                "hw_version",
                "serial_number",
                "suggested_area",
                "via_device",
            )
        },
    },
}
#: What Linli reads from a Home Assistant entity config (after abbreviations are expanded).
HA_CONFIG_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "maxProperties": 512,
    "properties": {
        "unique_id": {"type": "string", "maxLength": 256},
        "object_id": {"type": "string", "maxLength": 256},
        "name": _TEXT,
        "device_class": _TEXT,
        "unit_of_measurement": _TEXT,
        "state_topic": _STATE_TOPIC,
        "command_topic": _TOPIC,
        "availability_topic": _TOPIC,
        "json_attributes_topic": _STATE_TOPIC,
        "availability": _AVAILABILITY,
        "value_template": {"type": "string", "maxLength": 4096},
        "device": _DEVICE,
        "origin": {
            "type": "object",
            "properties": {"name": _TEXT, "sw_version": _TEXT, "support_url": _TEXT},
        },
        "components": {"type": "object", "maxProperties": 256, "additionalProperties": {"type": "object"}},
        "platform": {"type": "string"},
    },
}
#: Linli's native announcement on linli/v1/discovery/<id>/config.
NATIVE_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Linli native discovery announcement",
    "type": "object",
    "required": ["model"],
    "maxProperties": 64,
    "properties": {
        "id": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
        "model": {"type": "string", "minLength": 1, "maxLength": 64},
        "manufacturer": {"type": "string", "maxLength": 64},
        "name": {"type": "string", "maxLength": 128},
        "firmware": {"type": "string", "pattern": "^[0-9A-Za-z._+-]{1,64}$"},
        "state_topic": _TOPIC,
        "availability_topic": _TOPIC,
        "profile": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]*/[a-z0-9][a-z0-9_.-]*$"},
    },
}
_HA_VALIDATOR: Final = Draft202012Validator(HA_CONFIG_SCHEMA)
_NATIVE_VALIDATOR: Final = Draft202012Validator(NATIVE_SCHEMA)
_MISSING: Final = object()
_NATIVE_ID: Final = re.compile(NATIVE_SCHEMA["properties"]["id"]["pattern"])
_NATIVE_FIRMWARE: Final = re.compile(NATIVE_SCHEMA["properties"]["firmware"]["pattern"])
_NATIVE_PROFILE: Final = re.compile(NATIVE_SCHEMA["properties"]["profile"]["pattern"])
_TOPIC_KEYS: Final = ("command_topic", "availability_topic")
_STATE_TOPIC_KEYS: Final = ("state_topic", "json_attributes_topic")
_ID_KEYS: Final = ("unique_id", "object_id")
_TEXT_KEYS: Final = ("name", "device_class", "unit_of_measurement")
_DEVICE_TEXT_KEYS: Final = tuple(k for k, v in _DEVICE["properties"].items() if v is _TEXT)
_ORIGIN_TEXT_KEYS: Final = ("name", "sw_version", "support_url")


def _topic_ok(value: Any) -> bool:
    return (
        type(value) is str
        and 0 < len(value) <= 1024
        and "+" not in value
        and "#" not in value
        and "\0" not in value
    )


def _state_topic_ok(value: Any) -> bool:
    if type(value) is not str or "+" not in value:
        return _topic_ok(value)
    if not (len(value) <= 1024 and "#" not in value and "\0" not in value):
        return False
    *levels, last = value.split("/")
    return (
        bool(levels) and bool(last) and "+" not in last and all(lv == "+" or "+" not in lv for lv in levels)
    )


def _text_ok(value: Any, limit: int = 256) -> bool:
    return value is None or (type(value) is str and len(value) <= limit)


def _identifier_ok(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= 256


def _device_ok(device: Any) -> bool:
    if type(device) is not dict or len(device) > 64:
        return False
    identifiers = device.get("identifiers", _MISSING)
    if identifiers is not _MISSING and not (
        _identifier_ok(identifiers)
        or (
            type(identifiers) is list
            and len(identifiers) <= 32
            and all(_identifier_ok(i) for i in identifiers)
        )
    ):
        return False
    connections = device.get("connections", _MISSING)
    if connections is not _MISSING and not (
        type(connections) is list
        and len(connections) <= 32
        and all(
            type(c) is list and len(c) == 2 and all(type(p) is str and len(p) <= 256 for p in c)
            for c in connections
        )
    ):
        return False
    return all(_text_ok(device.get(key)) for key in _DEVICE_TEXT_KEYS)


def _availability_ok(availability: Any) -> bool:
    return (
        type(availability) is list
        and len(availability) <= 16
        and all(
            type(a) is dict
            and _topic_ok(a.get("topic"))
            and _text_ok(a.get("payload_available"))
            and _text_ok(a.get("payload_not_available"))
            for a in availability
        )
    )


def _ha_config_ok(config: dict[str, Any]) -> bool:
    """HA_CONFIG_SCHEMA's rules, hand-compiled (the hot path of a discovery burst)."""
    if len(config) > 512:
        return False
    get = config.get
    for key in _TOPIC_KEYS:
        value = get(key, _MISSING)
        if value is not _MISSING and not _topic_ok(value):
            return False
    for key in _STATE_TOPIC_KEYS:
        value = get(key, _MISSING)
        if value is not _MISSING and not _state_topic_ok(value):
            return False
    for key in _ID_KEYS:
        value = get(key, _MISSING)
        if value is not _MISSING and not (type(value) is str and len(value) <= 256):
            return False
    for key in _TEXT_KEYS:
        if not _text_ok(get(key)):
            return False
    template = get("value_template", _MISSING)
    if template is not _MISSING and not (type(template) is str and len(template) <= 4096):
        return False
    availability = get("availability", _MISSING)
    if availability is not _MISSING and not _availability_ok(availability):
        return False
    device = get("device", _MISSING)
    if device is not _MISSING and not _device_ok(device):
        return False
    origin = get("origin", _MISSING)
    if origin is not _MISSING and not (
        type(origin) is dict and all(_text_ok(origin.get(k)) for k in _ORIGIN_TEXT_KEYS)
    ):
        return False
    components = get("components", _MISSING)
    if components is not _MISSING and not (
        type(components) is dict
        and len(components) <= 256
        and all(type(c) is dict for c in components.values())
    ):
        return False
    platform = get("platform", _MISSING)
    return platform is _MISSING or type(platform) is str


def _schema_error(validator: Draft202012Validator, data: Any) -> str | None:
    errors = list(validator.iter_errors(data))
    if not errors:
        return None
    error = best_match(errors)
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"{where}: {error.message[:200]}"


def _wildcard_problem(config: dict[str, Any]) -> str | None:
    """What is wrong with a wildcard in a topic, said plainly (the schema's regex says it badly)."""
    for key in (*_STATE_TOPIC_KEYS, *_TOPIC_KEYS):
        value = config.get(key)
        if not isinstance(value, str) or not ("+" in value or "#" in value):
            continue
        if "#" in value:
            return (
                f"{key}: {value[:200]!r} has '#', which would take every topic below it: a state "
                "topic may use '+' for whole levels only (as OpenMQTTGateway's '+/+/BTtoMQTT/<MAC>')"
            )
        if key in _TOPIC_KEYS:
            return f"{key}: {value[:200]!r} has a '+' wildcard: only a state topic may be a filter"
        if not _state_topic_ok(value):
            return (
                f"{key}: {value[:200]!r} is not a usable filter: '+' must be a whole level, "
                "and the last level must name the device (e.g. '+/+/BTtoMQTT/A4C138ABCDEF')"
            )
    return None


def config_problem(config: dict[str, Any]) -> str | None:
    """None for a usable Home Assistant config (abbreviations expanded), else what is wrong."""
    if _ha_config_ok(config):
        return None
    return _wildcard_problem(config) or _schema_error(_HA_VALIDATOR, config)


def _native_ok(data: Any) -> bool:
    """NATIVE_SCHEMA's rules, hand-compiled."""
    if type(data) is not dict or len(data) > 64:
        return False
    model = data.get("model")
    if not (type(model) is str and 0 < len(model) <= 64):
        return False
    for key, limit in (("manufacturer", 64), ("name", 128)):
        value = data.get(key, _MISSING)
        if value is not _MISSING and not (type(value) is str and len(value) <= limit):
            return False
    for key, pattern in (("id", _NATIVE_ID), ("firmware", _NATIVE_FIRMWARE), ("profile", _NATIVE_PROFILE)):
        value = data.get(key, _MISSING)
        if value is not _MISSING and not (type(value) is str and pattern.match(value)):
            return False
    for key in ("state_topic", "availability_topic"):
        value = data.get(key, _MISSING)
        if value is not _MISSING and not _topic_ok(value):
            return False
    return True


def native_problem(data: Any) -> str | None:
    """None for a usable native announcement, else what is wrong."""
    if _native_ok(data):
        return None
    return _schema_error(_NATIVE_VALIDATOR, data)


_TASMOTA_NAME: Final = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[^\\s+#/\\u0000]+$"}
#: Tasmota's own discovery (9.0+), `tasmota/discovery/<MAC>/config`, as hatasmota reads it: the
#: keys Linli uses (ip, dn, fn, hn, mac, md, ty, if, ofln, onln, state, sw, t, ft, tp, rl, swc,
#: swn, btn, so, lk, lt_st, sho, sht, ver — the rest are accepted and left alone).
TASMOTA_CONFIG_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Tasmota discovery config",
    "type": "object",
    "required": ["dn", "hn", "mac", "md", "ofln", "onln", "state", "sw", "t", "ft", "tp", "rl"],
    "maxProperties": 64,
    "properties": {
        "ip": {"type": "string", "maxLength": 64},
        "dn": {"type": "string", "maxLength": 128},
        "fn": {"type": "array", "maxItems": 32, "items": {"type": ["string", "null"], "maxLength": 128}},
        "hn": _TASMOTA_NAME,
        "mac": {"type": "string", "pattern": "^[0-9A-Fa-f]{12}$"},
        "md": {"type": "string", "maxLength": 128},
        "ofln": {"type": "string", "minLength": 1, "maxLength": 64},
        "onln": {"type": "string", "minLength": 1, "maxLength": 64},
        "state": {
            "type": "array",
            "minItems": 2,
            "maxItems": 8,
            "items": {"type": "string", "maxLength": 32},
        },
        "sw": {"type": "string", "maxLength": 64},
        "t": _TASMOTA_NAME,
        "ft": {
            "type": "string",
            "maxLength": 256,
            "pattern": "^[^\\s+#\\u0000]*%topic%[^\\s+#\\u0000]*$",
        },
        "tp": {"type": "array", "minItems": 3, "maxItems": 3, "items": _TASMOTA_NAME},
        "rl": {"type": "array", "maxItems": 32, "items": {"type": "integer", "minimum": 0, "maximum": 16}},
        "so": {"type": "object", "maxProperties": 64},
        "ver": {"type": "integer"},
    },
}
#: `tasmota/discovery/<MAC>/sensors`: the last SENSOR telemetry, `{"sn": {…}, "ver": 1}`.
TASMOTA_SENSORS_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Tasmota discovery sensors",
    "type": "object",
    "required": ["sn"],
    "properties": {"sn": {"type": "object", "maxProperties": 64}, "ver": {"type": "integer"}},
}
_TASMOTA_VALIDATOR: Final = Draft202012Validator(TASMOTA_CONFIG_SCHEMA)
_TASMOTA_SENSORS_VALIDATOR: Final = Draft202012Validator(TASMOTA_SENSORS_SCHEMA)


def tasmota_problem(data: Any) -> str | None:
    """None for a usable Tasmota discovery config, else what is wrong (with its JSON path)."""
    return _schema_error(_TASMOTA_VALIDATOR, data)


def tasmota_sensors_problem(data: Any) -> str | None:
    return _schema_error(_TASMOTA_SENSORS_VALIDATOR, data)
