"""Devices adopted from their own Home Assistant discovery configs, with no shipped profile needed.

Each kind: announced → approved (no profile named, none needed) → its states mapped right
→ alerts where they should be. The configs and state messages are written from the public
formats: Zigbee2MQTT's Home Assistant extension (lib/extension/homeassistant.ts, 2.x: full
keys, `availability` list with the bridge's `{"state": …}` topic, `event` entities for
`action` with its pattern template), zigbee-herdsman-converters' exposes (contact `true`
= magnet near = CLOSED; occupancy, `illuminance` in lx, water_leak, smoke, action
`emergency` of the Tuya TS0215A SOS button), Tasmota and ESPHome (linli/sim/
discovery_payloads.py) and OpenMQTTGateway/Theengs BLE (abbreviated keys, the `+/+/BTtoMQTT/<MAC>`
gateway's state topic, `{{ value_json.weight | is_defined }}`; OpenMQTTGateway may also announce
`+/+/BTtoMQTT/<MAC>`, which discovery's schema refuses today).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from linli.gateway.events import DeviceEvent
from linli.gateway.registry import Device
from linli.gateway.runtime import Gateway
from linli.sim import discovery_payloads as payloads
from tests.brokers import settle
from tests.discovering import COMPONENTS, discovery_config, inbox_of, item_for, publish_retained
from tests.homes import add_home, publish

SERVICES = [
    *COMPONENTS,
    "linli.services.alerts:AlertEngine",
    "linli.services.eldercare:ElderCare",
    "linli.services.security:Security",
]
BASE = "zigbee2mqtt"
BRIDGE = "zigbee2mqtt_bridge_0x00124b0024c1a2b3"
#: Zigbee2MQTT 2.x's value template for `event` entities (homeassistant.ts, ACTION_PATTERNS).
Z2M_EVENT_TEMPLATE = (
    "{% set patterns = [\n"
    "{\"pattern\": '^(?P<button>(?:button_)?[a-z0-9]+)_(?P<action>(?:press|hold)(?:_release)?)$', "
    '"groups": ["button", "action"]},\n'
    '{"pattern": \'^(?P<action>recall|scene)_(?P<scene>[0-2][0-9]{0,2})$\', "groups": ["action", "scene"]}\n'
    "] %}\n{% set action_value = value_json.action|default('') %}\n"
    "{% set ns = namespace(r=[('action', action_value)]) %}\n{% for p in patterns %}\n"
    "  {% set m = action_value|regex_findall(p.pattern) %}\n"
    "  {% if m[0] is undefined %}{% continue %}{% endif %}\n"
    "  {% for key, value in zip(p.groups, m[0]) %}\n"
    "    {% set ns.r = ns.r|rejectattr(0, 'eq', key)|list + [(key, value)] %}\n  {% endfor %}\n{% endfor %}\n"
    "{% set ns.r = ns.r + [('event_type', ns.r|selectattr(0, 'eq', 'action')|map(attribute=1)|first)] %}\n"
    "{{dict.from_keys(ns.r|rejectattr(0, 'in', ('action', 'actionPrefix'))"
    "|reject('eq', ('event_type', None))|reject('eq', ('event_type', '')))|to_json}}"
)


def z2m(
    ieee: str,
    name: str,
    model_id: str,
    description: str,
    vendor: str,
    entities: list[tuple[str, str, dict]],
    *,
    firmware: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """One Zigbee2MQTT device's configs: (component, feature, fields) each."""
    device = {
        "identifiers": [f"zigbee2mqtt_{ieee}"],
        "manufacturer": vendor,
        "model": description,
        "model_id": model_id,
        "name": name,
        "via_device": BRIDGE,
        **({"sw_version": firmware} if firmware else {}),
    }
    common = {
        "availability": [{"topic": f"{BASE}/bridge/state", "value_template": "{{ value_json.state }}"}],
        "device": device,
        "origin": {"name": "Zigbee2MQTT", "sw": "2.1.1", "url": "https://www.zigbee2mqtt.io"},
        "state_topic": f"{BASE}/{name}",
    }
    return [
        (
            f"homeassistant/{component}/{ieee}/{feature}/config",
            {
                **common,
                "object_id": f"{name}_{feature}",
                "unique_id": f"{ieee}_{feature}_zigbee2mqtt",
                "value_template": f"{{{{ value_json.{feature} }}}}",
                **fields,
            },
        )
        for component, feature, fields in entities
    ]  # fmt: skip


BATTERY = ("sensor", "battery", {"device_class": "battery", "unit_of_measurement": "%",
                                 "state_class": "measurement", "entity_category": "diagnostic"})  # fmt: skip


def door(ieee: str = "0x00158d0001a2b3c4", name: str = "front_door") -> list[tuple[str, dict[str, Any]]]:
    return z2m(ieee, name, "MCCGQ11LM", "Door and window sensor", "Aqara", [
        ("binary_sensor", "contact", {"name": "Door", "device_class": "door",
                                      "payload_on": False, "payload_off": True}),
        BATTERY,
    ], firmware="3000-0001")  # fmt: skip


def motion() -> list[tuple[str, dict[str, Any]]]:
    return z2m("0x00158d0002c3d4e5", "hall_motion", "RTCGQ11LM", "Motion sensor", "Aqara", [
        ("binary_sensor", "occupancy", {"name": "Occupancy", "device_class": "occupancy",
                                        "payload_on": True, "payload_off": False}),
        ("sensor", "illuminance", {"name": "Illuminance", "device_class": "illuminance",
                                   "unit_of_measurement": "lx", "state_class": "measurement"}),
        BATTERY,
    ])  # fmt: skip


def water_leak() -> list[tuple[str, dict[str, Any]]]:
    return z2m("0x00158d0003d4e5f6", "kitchen_leak", "SJCGQ11LM", "Water leak sensor", "Aqara", [
        ("binary_sensor", "water_leak", {"name": "Water leak", "device_class": "moisture",
                                         "payload_on": True, "payload_off": False}),
        BATTERY,
    ])  # fmt: skip


def smoke() -> list[tuple[str, dict[str, Any]]]:
    return z2m("0xa4c138aabbccdd01", "kitchen_smoke", "TS0205", "Smoke sensor", "Tuya", [
        ("binary_sensor", "smoke", {"name": "Smoke", "device_class": "smoke",
                                    "payload_on": True, "payload_off": False}),
        ("binary_sensor", "battery_low", {"name": "Battery low", "device_class": "battery",
                                          "payload_on": True, "payload_off": False,
                                          "entity_category": "diagnostic"}),
    ])  # fmt: skip


def sos_button() -> list[tuple[str, dict[str, Any]]]:
    return z2m("0xa4c138ddeeff0011", "bedside_sos", "TS0215A_sos", "SOS button", "Tuya", [
        ("event", "action", {"name": "Action", "event_types": ["emergency"],
                             "icon": "mdi:gesture-double-tap", "value_template": Z2M_EVENT_TEMPLATE}),
        BATTERY,
    ])  # fmt: skip


def mini_switch() -> list[tuple[str, dict[str, Any]]]:
    return z2m("0x00158d0004e5f607", "doorbell_button", "WXKG11LM", "Wireless mini switch", "Aqara", [
        ("event", "action", {"name": "Action", "icon": "mdi:gesture-double-tap",
                             "event_types": ["single", "double", "triple", "quadruple", "hold", "release"],
                             "value_template": Z2M_EVENT_TEMPLATE}),
    ])  # fmt: skip


def z2m_plug() -> list[tuple[str, dict[str, Any]]]:
    return z2m("0xa4c1380011223344", "kettle_plug", "TS011F_plug_1", "Smart plug (with power monitoring)",
               "Tuya", [
        ("switch", "switch", {"name": None, "payload_on": "ON", "payload_off": "OFF",
                              "value_template": "{{ value_json.state }}",
                              "command_topic": f"{BASE}/kettle_plug/set"}),
        ("sensor", "power", {"name": "Power", "device_class": "power", "unit_of_measurement": "W",
                             "state_class": "measurement"}),
    ])  # fmt: skip


def omg_scale(mac: str = "5CCAD3A1B2C3") -> list[tuple[str, dict[str, Any]]]:
    """A Xiaomi body composition scale heard by an OpenMQTTGateway ESP32 (Theengs decoder)."""
    dev = {"ids": [mac], "cns": [["mac", ":".join(mac[i : i + 2] for i in range(0, 12, 2))]],
           "mf": "Xiaomi", "mdl": "XMTZC05HM", "name": f"XMTZC05HM-{mac[-4:]}",
           "via_device": "OMG_ESP32_BLE", "sw": "v1.7.0"}  # fmt: skip
    common = {"stat_t": f"home/OMG_ESP32_BLE/BTtoMQTT/{mac}", "stat_cla": "measurement", "dev": dev}
    return [
        (f"homeassistant/sensor/{mac}-weight/config", {**common, "dev_cla": "weight", "unit_of_meas": "kg",
         "name": "weight", "uniq_id": f"{mac}-weight", "val_tpl": "{{ value_json.weight | is_defined }}"}),
        (f"homeassistant/sensor/{mac}-impedance/config", {**common, "unit_of_meas": "Ω", "name": "impedance",
         "uniq_id": f"{mac}-impedance", "val_tpl": "{{ value_json.impedance | is_defined }}"}),
    ]  # fmt: skip


async def gateway_with_home(make_gateway: Any, data_dir: Path | None = None) -> Gateway:
    gateway: Gateway = await make_gateway(data_dir, components=SERVICES, discovery=discovery_config("mqtt"))
    if "h1" not in gateway.registry.households:
        await add_home(gateway)
    return gateway


async def adopt(gateway: Gateway, broker: Any, configs: list, key: str, entities: int) -> Device:
    """Announce `configs` (retained, as bridges do), wait for all `entities`, approve into h1."""
    await publish_retained(broker.port, configs)
    inbox = inbox_of(gateway)
    item = await item_for(inbox, key)
    await settle(lambda: len(item.sources["mqtt"].announcement.details.get("entities", ())) == entities)
    return await inbox.async_approve(item.id, household_id="h1", by="li.installer", room="厨房")


def state(device: Device, kind: str) -> Any:
    cap = next(c for c in device.profile.capabilities if c.kind == kind)
    found = device.states.get(cap.key)
    return None if found is None else found.value


def alert_kinds(gateway: Gateway) -> list[str]:
    return sorted(a.kind for a in gateway.components["alerts"].alerts.values())  # type: ignore[attr-defined]


async def test_door_reported_as_zigbee2mqtt_reports_it_is_adopted_and_true_means_closed(
    make_gateway, broker
) -> None:
    # given a Zigbee2MQTT door sensor reporting firmware "3000-0001" (outside any range)
    gateway = await gateway_with_home(make_gateway)
    device = await adopt(gateway, broker, door(), "ieee:00158d0001a2b3c4", entities=2)
    # then it is adopted from its announcement, on its state topic
    assert device.topic == "zigbee2mqtt/front_door" and device.household_id == "h1"
    # when the magnet is near (contact true), then far
    await publish(
        broker.port, [("zigbee2mqtt/front_door", {"contact": True, "battery": 91, "linkquality": 87})]
    )
    await settle(lambda: state(device, "contact") is not None)
    # then true means closed: the contact capability (active = open) is False
    assert state(device, "contact") is False and state(device, "battery") == 91
    await publish(broker.port, [("zigbee2mqtt/front_door", {"contact": False, "battery": 91})])
    await settle(lambda: state(device, "contact") is True)


async def test_motion_with_current_illuminance_field_reads_both(make_gateway, broker) -> None:
    gateway = await gateway_with_home(make_gateway)
    device = await adopt(gateway, broker, motion(), "ieee:00158d0002c3d4e5", entities=3)
    await publish(broker.port, [("zigbee2mqtt/hall_motion", {"occupancy": True, "illuminance": 126,
                                                            "battery": 100, "voltage": 3055})])  # fmt: skip
    await settle(lambda: state(device, "motion") is True)  # occupancy, as the shipped profile names it
    illuminance = next(c for c in device.profile.capabilities if c.unit == "lx")
    assert device.states[illuminance.key].value == 126


@pytest.mark.parametrize(
    ("configs", "key", "topic", "field", "alert"),
    [
        (water_leak, "ieee:00158d0003d4e5f6", "zigbee2mqtt/kitchen_leak", "water_leak", "water_leak"),
        (smoke, "ieee:a4c138aabbccdd01", "zigbee2mqtt/kitchen_smoke", "smoke", "smoke"),
    ],
    ids=["water-leak", "smoke"],
)
async def test_hazard_sensors_raise_their_alarm(
    make_gateway, broker, configs, key, topic, field, alert
) -> None:
    gateway = await gateway_with_home(make_gateway)
    device = await adopt(gateway, broker, configs(), key, entities=2)
    # given all quiet: no alarm
    await publish(broker.port, [(topic, {field: False, "battery": 100})])
    await settle(lambda: state(device, alert) is False)
    assert alert_kinds(gateway) == []
    # when the device detects it
    await publish(broker.port, [(topic, {field: True, "battery": 100})])
    # then the household's alarm of that kind is raised
    await settle(lambda: alert in alert_kinds(gateway))


async def test_sos_event_entity_raises_an_alarm_on_every_press(make_gateway, broker) -> None:
    # given a Tuya SOS button, announced with Zigbee2MQTT's event entity for `action`
    gateway = await gateway_with_home(make_gateway)
    device = await adopt(gateway, broker, sos_button(), "ieee:a4c138ddeeff0011", entities=2)
    assert any(c.kind == "sos_button" for c in device.profile.capabilities)
    presses: list[DeviceEvent] = []
    gateway.bus.listen(DeviceEvent, presses.append)
    engine = gateway.components["alerts"]
    # when it is pressed twice, with no empty `action` in between (Zigbee2MQTT 2.x)
    await publish(broker.port, [("zigbee2mqtt/bedside_sos", {"action": "emergency", "battery": 100})])
    await settle(lambda: alert_kinds(gateway) == ["sos"])
    await publish(broker.port, [("zigbee2mqtt/bedside_sos", {"action": "emergency", "battery": 100})])
    # then both presses are events on the bus, and the SOS alarm counts both
    await settle(lambda: len(presses) == 2)
    [alarm] = engine.alerts.values()  # type: ignore[attr-defined]
    await settle(lambda: alarm.count == 2)
    assert all(p.emergency and p.event_type == "emergency" for p in presses)
    # and the cleared action Zigbee2MQTT 1.x publishes after a press is not a press
    await publish(broker.port, [("zigbee2mqtt/bedside_sos", {"action": "", "battery": 100})])
    await publish(broker.port, [("zigbee2mqtt/bedside_sos", {"battery": 99})])
    await settle(lambda: state(device, "battery") == 99)
    assert len(presses) == 2


async def test_a_plain_button_is_an_event_for_services_not_an_alarm(make_gateway, broker) -> None:
    gateway = await gateway_with_home(make_gateway)
    device = await adopt(gateway, broker, mini_switch(), "ieee:00158d0004e5f607", entities=1)
    presses: list[DeviceEvent] = []
    gateway.bus.listen(DeviceEvent, presses.append)
    topic = "zigbee2mqtt/doorbell_button"
    await publish(broker.port, [(topic, {"action": "single", "battery": 80}),
                                (topic, {"action": "double", "battery": 80})])  # fmt: skip
    await settle(lambda: len(presses) == 2)
    assert [(p.device_id, p.kind, p.event_type, p.emergency) for p in presses] == [
        (device.id, "button", "single", False),
        (device.id, "button", "double", False),
    ]
    assert alert_kinds(gateway) == []


async def test_plug_switch_reports_and_takes_commands_as_home_assistant_sends_them(
    make_gateway, broker
) -> None:
    import aiomqtt

    gateway = await gateway_with_home(make_gateway)
    device = await adopt(gateway, broker, z2m_plug(), "ieee:a4c1380011223344", entities=2)
    await publish(broker.port, [("zigbee2mqtt/kettle_plug", {"state": "ON", "power": 1830.5})])
    await settle(lambda: state(device, "switch") is True)
    assert state(device, "power_usage") == 1830.5
    # when a resident switches it off, the plug's command topic receives HA's plain payload
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="plug-listener") as client:
        await client.subscribe("zigbee2mqtt/kettle_plug/set")
        switch = next(c.key for c in device.profile.capabilities if c.kind == "switch")
        await gateway.commands.async_send(device.id, switch, False)
        async for message in client.messages:
            assert message.payload == b"OFF"
            break


async def test_tasmota_plug_with_abbreviated_keys(make_gateway, broker) -> None:
    gateway = await gateway_with_home(make_gateway)
    configs = payloads.tasmota_plug("3C:71:BF:4A:1B:2C", "tasmota_4A1B2C", "Plug")
    device = await adopt(gateway, broker, configs, "mac:3c71bf4a1b2c", entities=3)
    await publish(broker.port, [
        ("tasmota_4A1B2C/tele/STATE", {"Time": "2026-12-06T10:00:00", "POWER": "ON"}),
        ("tasmota_4A1B2C/tele/SENSOR", {"Time": "2026-12-06T10:00:00",
                                        "ENERGY": {"Total": 12.345, "Power": 95, "Voltage": 229}}),
    ])  # fmt: skip
    await settle(lambda: state(device, "energy") == 12.345)
    assert (state(device, "switch"), state(device, "power_usage")) == (True, 95)


async def test_plain_payload_sensor_esphome_style(make_gateway, broker) -> None:
    # given an ESPHome node that publishes raw values ("23.5"), no JSON
    gateway = await gateway_with_home(make_gateway)
    configs = payloads.esphome_climate("bedroom-climate", "a4:cf:12:b3:c4:d5")
    device = await adopt(gateway, broker, configs, "mac:a4cf12b3c4d5", entities=2)
    await publish(broker.port, [("bedroom-climate/sensor/temperature/state", b"23.5"),
                                ("bedroom-climate/sensor/humidity/state", b"41")])  # fmt: skip
    await settle(lambda: state(device, "humidity") == 41)
    assert state(device, "temperature") == 23.5
    # and a value that is not a number is refused with a reason, the others kept
    await publish(broker.port, [("bedroom-climate/sensor/temperature/state", b"warm")])
    await settle(lambda: gateway.components["mqtt_device"].rejected >= 1)  # type: ignore[attr-defined]
    assert state(device, "temperature") == 23.5


async def test_openmqttgateway_ble_scale_with_abbreviated_keys(make_gateway, broker) -> None:
    gateway = await gateway_with_home(make_gateway)
    device = await adopt(gateway, broker, omg_scale(), "mac:5ccad3a1b2c3", entities=2)
    reading = {"id": "5C:CA:D3:A1:B2:C3", "name": "MIBCS", "brand": "Xiaomi",
               "model": "Mi Body Composition Scale 2", "model_id": "XMTZC05HM", "type": "SCALE",
               "weighing_mode": "person", "unit": "kg", "weight": 62.35, "impedance": 503,
               "rssi": -72}  # fmt: skip
    await publish(broker.port, [("home/OMG_ESP32_BLE/BTtoMQTT/5CCAD3A1B2C3", reading)])
    await settle(lambda: state(device, "weight") == 62.35)
    # a BLE advertisement without a weight is not a reading (is_defined)
    await publish(
        broker.port, [("home/OMG_ESP32_BLE/BTtoMQTT/5CCAD3A1B2C3", {"id": "5C:CA:D3:A1:B2:C3", "rssi": -70})]
    )
    await settle(lambda: device.last_seen is not None)
    assert state(device, "weight") == 62.35


@pytest.mark.slow
async def test_bridge_offline_makes_its_devices_unavailable_and_back(make_gateway, broker) -> None:
    gateway = await gateway_with_home(make_gateway)
    device = await adopt(gateway, broker, door(), "ieee:00158d0001a2b3c4", entities=2)
    await publish(broker.port, [("zigbee2mqtt/front_door", {"contact": True})])
    await settle(lambda: device.available)
    # when the bridge says it is offline (its JSON form), every device it bridges is unavailable
    await publish(broker.port, [("zigbee2mqtt/bridge/state", {"state": "offline"})])
    await settle(lambda: not device.available)
    # and back when it is online again (the legacy plain form too)
    await publish(broker.port, [("zigbee2mqtt/bridge/state", b"online")])
    await settle(lambda: device.available)


async def test_a_renamed_device_is_followed_without_losing_state(make_gateway, broker) -> None:
    gateway = await gateway_with_home(make_gateway)
    device = await adopt(gateway, broker, door(), "ieee:00158d0001a2b3c4", entities=2)
    await publish(broker.port, [("zigbee2mqtt/front_door", {"contact": True, "battery": 80})])
    await settle(lambda: state(device, "battery") == 80)
    # when it is renamed in Zigbee2MQTT (the bridge's answer to bridge/request/device/rename)
    await publish(broker.port, [("zigbee2mqtt/bridge/response/device/rename",
                                 {"data": {"from": "front_door", "to": "entrance_door",
                                           "homeassistant_rename": False}, "status": "ok"})])  # fmt: skip
    adapter: Any = gateway.components["mqtt_device"]
    await settle(lambda: "zigbee2mqtt/entrance_door" in adapter._announced_topics)
    # then its state keeps coming, under the new name, into the same device
    assert state(device, "contact") is False
    await publish(broker.port, [("zigbee2mqtt/entrance_door", {"contact": False, "battery": 79})])
    await settle(lambda: state(device, "battery") == 79)
    assert state(device, "contact") is True


HOSTILE = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"


async def test_a_hostile_template_is_quarantined_and_renders_nothing(make_gateway, broker) -> None:
    gateway = await gateway_with_home(make_gateway)
    configs = z2m("0x00158d0005f6a7b8", "evil", "WSDCGQ11LM", "Temperature and humidity sensor", "Aqara", [
        ("sensor", "temperature", {"device_class": "temperature", "unit_of_measurement": "°C",
                                   "value_template": HOSTILE}),
        ("sensor", "humidity", {"device_class": "humidity", "unit_of_measurement": "%"}),
    ])  # fmt: skip
    device = await adopt(gateway, broker, configs, "ieee:00158d0005f6a7b8", entities=2)
    await publish(broker.port, [("zigbee2mqtt/evil", {"temperature": 21.5, "humidity": 40})])
    await settle(lambda: state(device, "humidity") == 40)
    assert state(device, "temperature") is None
    await gateway.store.async_flush()
    rows = await gateway.store.async_read(
        lambda conn: conn.execute(
            "SELECT reason FROM quarantine WHERE device_id = ?", (device.id,)
        ).fetchall()
    )
    assert rows and "reaches for attribute '__globals__'" in rows[0][0]


async def test_an_adopted_announcement_survives_a_restart(make_gateway, broker, tmp_path) -> None:
    data = tmp_path / "data"
    gateway = await gateway_with_home(make_gateway, data)
    device = await adopt(gateway, broker, motion(), "ieee:00158d0002c3d4e5", entities=3)
    await gateway.async_stop()
    # when the gateway starts again
    again = await gateway_with_home(make_gateway, data)
    restored = again.registry.device(device.id)
    assert restored is not None and restored.profile.id == device.profile.id
    await publish(broker.port, [("zigbee2mqtt/hall_motion", {"occupancy": True, "illuminance": 5})])
    await settle(lambda: state(restored, "motion") is True)


def test_fixture_configs_are_json() -> None:
    for configs in (door(), motion(), sos_button(), omg_scale()):
        for _, config in configs:
            orjson.dumps(config)


async def test_devices_approved_in_bulk_from_their_announcements_survive_a_restart(
    make_gateway, broker, tmp_path
) -> None:
    # given three door sensors announced by Zigbee2MQTT, approved together into h1
    data = tmp_path / "data"
    gateway = await gateway_with_home(make_gateway, data)
    doors = [door(f"0x00158d00010000{n:02x}", f"door_{n}") for n in range(3)]
    for configs in doors:
        await publish_retained(broker.port, configs)
    inbox = inbox_of(gateway)
    items = [await item_for(inbox, f"ieee:00158d00010000{n:02x}") for n in range(3)]
    for item in items:
        await settle(
            lambda item=item: len(item.sources["mqtt"].announcement.details.get("entities", ())) == 2
        )
    devices, refused = await inbox.async_approve_many(
        [item.id for item in items], household_id="h1", by="li.installer", room="玄关"
    )
    assert refused == [] and len(devices) == 3
    await gateway.async_stop()
    # when the gateway starts again
    again = await gateway_with_home(make_gateway, data)
    # then each is back with its own announced profile, and reads its door (Z2M contact true = closed)
    for device in devices:
        restored = again.registry.device(device.id)
        assert restored is not None and restored.profile.id == device.profile.id
    assert again.registry.unknown_profile_devices == []
    await publish(broker.port, [("zigbee2mqtt/door_1", {"contact": False})])
    await settle(lambda: state(again.registry.device(devices[1].id), "contact") is not None)
