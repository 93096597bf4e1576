"""The hand-compiled fast checks of discovery configs agree with their JSON Schemas."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from linli.adapters.discovery.ha_abbreviations import apply_topic_base, expand
from linli.adapters.discovery.schemas import (
    HA_CONFIG_SCHEMA,
    NATIVE_SCHEMA,
    _ha_config_ok,
    _native_ok,
    config_problem,
    native_problem,
)
from linli.sim import discovery_payloads as payloads


def _ha_configs() -> list[dict[str, Any]]:
    """Every shape the demo and tests publish, expanded as the gateway sees them."""
    messages = [
        *payloads.zigbee2mqtt_contact_sensor("0x00158d0001a2b3c4", "door"),
        *payloads.zigbee2mqtt_motion_sensor("0x00158d0001a2b3c5", "hall"),
        *payloads.tasmota_plug("3C71BF4A1B2C", "tasmota_x", "Plug"),
        *payloads.esphome_climate("node", "a4cf12b3c4d5"),
        *payloads.ha_device_form("0AFFD2"),
    ]
    return [apply_topic_base(expand(copy.deepcopy(p))) for _, p in messages]


BROKEN: list[tuple[str, Any]] = [
    ("state_topic", "a/#"),  # a filter may use '+' (OpenMQTTGateway), never '#'
    ("state_topic", "a/b+"),
    ("command_topic", "a/+/set"),
    ("state_topic", ""),
    ("state_topic", 5),
    ("state_topic", None),
    ("unique_id", ["x"]),
    ("name", 3),
    ("device_class", {"x": 1}),
    ("value_template", "x" * 5000),
    ("availability", [{"payload_available": "on"}]),
    ("availability", [{"topic": "t/#"}]),
    ("availability", "t"),
    ("device", {"identifiers": 42}),
    ("device", {"identifiers": [""]}),
    ("device", {"identifiers": ["x"] * 40}),
    ("device", {"connections": [["mac"]]}),
    ("device", {"connections": [["mac", 5]]}),
    ("device", {"manufacturer": 7}),
    ("device", []),
    ("origin", {"name": 1}),
    ("origin", "z2m"),
    ("components", {"a": 1}),
    ("components", []),
    ("platform", 1),
]


@pytest.mark.parametrize("config", _ha_configs(), ids=lambda c: str(c.get("unique_id", "device")))
def test_real_configs_pass_both_checks(config: dict[str, Any]) -> None:
    assert _ha_config_ok(config)
    assert Draft202012Validator(HA_CONFIG_SCHEMA).is_valid(config)


@pytest.mark.parametrize(("key", "value"), BROKEN, ids=[f"{k}={v!r}"[:40] for k, v in BROKEN])
def test_broken_configs_fail_both_checks_with_the_key_named(key: str, value: Any) -> None:
    config = {**_ha_configs()[0], key: value}
    assert not _ha_config_ok(config)
    assert not Draft202012Validator(HA_CONFIG_SCHEMA).is_valid(config)
    assert config_problem(config).startswith(key)


@pytest.mark.parametrize(
    ("data", "valid"),
    [
        ({"model": "FR-60"}, True),
        ({"id": "fr60-7a21", "model": "FR-60", "firmware": "2.0.3", "profile": "linli/fall-radar"}, True),
        ({"model": ""}, False),
        ({"id": "bad id", "model": "FR-60"}, False),
        ({"model": "FR-60", "firmware": "2.0 beta"}, False),
        ({"model": "FR-60", "profile": "Linli/Radar"}, False),
        ({"model": "FR-60", "state_topic": "linli/#"}, False),
        ({"model": "FR-60", "name": "x" * 200}, False),
        ({"firmware": "1.0"}, False),
        (["FR-60"], False),
    ],
)
def test_native_announcement_checks_agree(data: Any, valid: bool) -> None:
    assert _native_ok(data) is valid
    assert Draft202012Validator(NATIVE_SCHEMA).is_valid(data) is valid
    assert (native_problem(data) is None) is valid
