"""MQTT discovery over a real broker: retained configs in the shapes real bridges publish.

Payload shapes: linli/sim/discovery_payloads.py (each function says which
project and which of its files the shape follows).
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from linli.gateway.discovery import InboxStatus, Source
from linli.sim import discovery_payloads as payloads
from tests.brokers import settle
from tests.discovering import inbox_of, item_for, publish_retained, rejected_view, start

DOOR_IEEE = "0x00158d0001a2b3c4"


async def test_zigbee2mqtt_sensor_retained_before_start_is_one_pending_item_with_its_profile(
    make_gateway, broker
) -> None:
    # given a Zigbee2MQTT bridge's retained configs for a door sensor (four entities)
    await publish_retained(broker.port, payloads.zigbee2mqtt_contact_sensor(DOOR_IEEE, "front_door"))
    # when the gateway starts
    gateway = await start(make_gateway, "mqtt")
    inbox = inbox_of(gateway)
    item = await item_for(inbox, "ieee:00158d0001a2b3c4")
    await settle(lambda: len(item.sources[Source.MQTT].announcement.details["config_topics"]) == 4)
    # then it is one pending device, matched to its firmware profile, with what was learned
    assert item.status is InboxStatus.PENDING
    assert len(inbox.list_items(None)) == 1
    data = item.as_dict()
    assert (data["manufacturer"], data["model"], data["name"]) == ("Aqara", "MCCGQ11LM", "front_door")
    assert data["profile"] == "aqara/mccgq11lm"
    assert data["topic"] == "zigbee2mqtt/front_door"
    assert data["category"] == "zigbee2mqtt"
    assert data["available"] is True
    door = next(c for c in data["capabilities"] if c["kind"] == "contact")
    assert (door["path"], door["value_on"], door["value_off"]) == ("contact", False, True)
    details = data["sources"]["mqtt"]["details"]
    assert details["availability_topics"] == [
        "zigbee2mqtt/bridge/state",
        "zigbee2mqtt/front_door/availability",
    ]
    assert details["origin"]["name"] == "Zigbee2MQTT"


async def test_tasmota_abbreviated_keys_and_topic_base_are_expanded(make_gateway, broker) -> None:
    gateway = await start(make_gateway, "mqtt")
    inbox = inbox_of(gateway)
    await publish_retained(broker.port, payloads.tasmota_plug("3C:71:BF:4A:1B:2C", "tasmota_4A1B2C", "Plug"))
    await settle(lambda: (i := inbox.find("mac:3c71bf4a1b2c")) is not None and len(i.capabilities) == 3)
    item = inbox.find("mac:3c71bf4a1b2c")
    capabilities = {c.kind: c for c in item.capabilities}
    relay = capabilities["switch"]
    assert (relay.access, relay.topic, relay.path) == ("rw", "tasmota_4A1B2C/tele/STATE", "POWER")
    assert (relay.value_on, relay.value_off) == ("ON", "OFF")
    assert (capabilities["power_usage"].unit, capabilities["power_usage"].path) == ("W", "ENERGY.Power")
    assert capabilities["energy"].unit == "kW.h"
    assert item.category == "tasmota"
    assert item.firmware == "9.5.0(tasmota)"
    assert item.sources["mqtt"].announcement.details["availability_topics"] == ["tasmota_4A1B2C/tele/LWT"]
    assert item.profile_id is None  # no Tasmota profile ships: approval will ask for one


async def test_esphome_sensors_map_with_ucum_units(make_gateway, broker) -> None:
    gateway = await start(make_gateway, "mqtt")
    inbox = inbox_of(gateway)
    await publish_retained(broker.port, payloads.esphome_climate("bedroom-climate", "a4:cf:12:b3:c4:d5"))
    await settle(lambda: (i := inbox.find("mac:a4cf12b3c4d5")) is not None and len(i.capabilities) == 2)
    item = inbox.find("mac:a4cf12b3c4d5")
    units = {c.kind: c.unit for c in item.capabilities}
    assert units == {"temperature": "Cel", "humidity": "%"}
    assert item.category == "esphome"
    assert item.name == "bedroom-climate"


async def test_home_assistant_device_form_is_one_device_with_its_components(make_gateway, broker) -> None:
    gateway = await start(make_gateway, "mqtt")
    inbox = inbox_of(gateway)
    await publish_retained(broker.port, payloads.ha_device_form("0AFFD2"))
    item = await item_for(inbox, "mqtt:0AFFD2")
    assert {c.kind for c in item.capabilities} == {"temperature", "humidity"}
    assert item.topic == "sensor0AFFD2/state"  # the shared state_topic, inherited by both components
    assert (item.manufacturer, item.model, item.firmware) == ("Bla electronics", "xya", "1.0")
    assert item.category == "bla2mqtt"


async def test_discovery_prefix_is_configurable(make_gateway, broker) -> None:
    gateway = await start(make_gateway, "mqtt", mqtt={"prefix": "smarthome/discovery"})
    inbox = inbox_of(gateway)
    await publish_retained(
        broker.port,
        payloads.zigbee2mqtt_contact_sensor(DOOR_IEEE, "front_door", prefix="homeassistant")[:1]
        + payloads.zigbee2mqtt_motion_sensor("0x00158d0001ffeedd", "hall", prefix="smarthome/discovery"),
    )
    await item_for(inbox, "ieee:00158d0001ffeedd")
    assert inbox.find("ieee:00158d0001a2b3c4") is None  # under the default prefix: not ours to read


async def test_empty_retained_config_makes_the_device_unavailable_not_deleted(make_gateway, broker) -> None:
    gateway = await start(make_gateway, "mqtt")
    inbox = inbox_of(gateway)
    configs = payloads.zigbee2mqtt_contact_sensor(DOOR_IEEE, "front_door")
    await publish_retained(broker.port, configs)
    item = await item_for(inbox, "ieee:00158d0001a2b3c4")
    await settle(lambda: len(item.capabilities) == 3)
    # when the bridge removes the device (an empty retained payload on each config topic)
    await publish_retained(broker.port, [(topic, b"") for topic, _ in configs])
    await settle(lambda: not item.available)
    # then it is still in the inbox, unavailable, with the reason
    assert inbox.get(item.id) is item
    assert item.sources["mqtt"].gone_reason.startswith("discovery config removed")
    await inbox.async_flush()


# -- bad input: each rejected with a reason in the rejected view and the log; the rest goes on --


async def _bad_config_is_rejected(
    make_gateway, broker, caplog, topic: str, payload: bytes, reason: str
) -> None:
    gateway = await start(make_gateway, "mqtt")
    inbox = inbox_of(gateway)
    # when a bad config arrives, then a good one
    await publish_retained(
        broker.port, [(topic, payload), *payloads.zigbee2mqtt_contact_sensor(DOOR_IEEE, "front_door")]
    )
    # then discovery goes on: the good device is pending
    good = await item_for(inbox, "ieee:00158d0001a2b3c4")
    assert good.status is InboxStatus.PENDING
    # and the bad one is in the rejected view with the reason, decided by discovery
    await settle(lambda: inbox.find(f"topic:{topic}") is not None)
    rejected = await rejected_view(gateway)
    assert len(rejected) == 1
    assert reason in rejected[0]["reason"]
    assert rejected[0]["decided_by"] == "discovery"
    assert rejected[0]["address"] == topic
    logged = [r for r in caplog.records if r.levelno == logging.WARNING and reason in r.getMessage()]
    assert logged, f"no warning mentioning {reason!r}"


async def test_malformed_discovery_json_is_rejected(make_gateway, broker, caplog) -> None:
    await _bad_config_is_rejected(
        make_gateway,
        broker,
        caplog,
        "homeassistant/binary_sensor/0x00158d00000bad01/contact/config",
        b'{"device_class": "door", "state_topic": "zigbee2mqtt/x",',
        "config is not JSON",
    )


async def test_unknown_component_is_rejected(make_gateway, broker, caplog) -> None:
    await _bad_config_is_rejected(
        make_gateway,
        broker,
        caplog,
        "homeassistant/teleporter/0x00158d00000bad02/beam/config",
        orjson.dumps({"state_topic": "zigbee2mqtt/x"}),
        "unknown component 'teleporter'",
    )


async def test_topic_id_with_illegal_characters_is_rejected(make_gateway, broker, caplog) -> None:
    await _bad_config_is_rejected(
        make_gateway,
        broker,
        caplog,
        "homeassistant/binary_sensor/front door!/config",
        orjson.dumps({"device_class": "door", "state_topic": "zigbee2mqtt/x"}),
        "object_id 'front door!' has characters other than",
    )


async def test_config_of_one_megabyte_is_rejected(make_gateway, broker, caplog) -> None:
    big = orjson.dumps({"state_topic": "zigbee2mqtt/x", "padding": "x" * 1_048_576})
    await _bad_config_is_rejected(
        make_gateway,
        broker,
        caplog,
        "homeassistant/sensor/0x00158d00000bad03/temperature/config",
        big,
        "over the 65536-byte limit",
    )


async def test_config_with_wrong_types_is_rejected_with_the_key(make_gateway, broker, caplog) -> None:
    await _bad_config_is_rejected(
        make_gateway,
        broker,
        caplog,
        "homeassistant/sensor/0x00158d00000bad04/temperature/config",
        orjson.dumps({"stat_t": "zigbee2mqtt/x", "dev": {"ids": 42}}),
        "device.identifiers",
    )


async def test_a_flood_of_bad_configs_is_logged_sparingly_and_kept_whole(
    make_gateway, broker, caplog
) -> None:
    gateway = await start(make_gateway, "mqtt")
    inbox = inbox_of(gateway)
    bad = [(f"homeassistant/sensor/junk{i}/config", b"not json") for i in range(100)]
    await publish_retained(broker.port, bad)
    await settle(lambda: inbox.rejected_inputs == 100)
    assert len(await rejected_view(gateway)) == 100
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "rejected" in r.getMessage()]
    assert len(warnings) <= 20


async def test_the_gateway_says_home_assistants_birth_message_so_bridges_announce_again(
    make_gateway, broker
) -> None:
    import aiomqtt

    # given a bridge listening for Home Assistant's birth message, as Zigbee2MQTT does
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="z2m-bridge") as bridge:
        await bridge.subscribe("homeassistant/status", qos=1)
        # when the gateway starts
        await start(make_gateway, "mqtt")
        # then the bridge hears "online" and would re-send every discovery config
        message = await asyncio.wait_for(anext(aiter(bridge.messages)), 5)
        assert (message.topic.value, message.payload) == ("homeassistant/status", b"online")


async def test_a_flood_of_junk_configs_on_made_up_topics_keeps_only_the_latest_few(
    make_gateway, broker
) -> None:
    # given a gateway whose inbox keeps at most 50 items known only from unusable input
    gateway = await start(make_gateway, "mqtt")
    inbox = inbox_of(gateway)
    inbox.max_invalid = 50
    # when 400 malformed configs arrive, each on a topic of its own, in two bursts (the first
    # burst is written to the database before the second makes it forgotten)
    junk = [(f"homeassistant/sensor/junk{n}/config", b"{not json " + str(n).encode()) for n in range(400)]
    await publish_retained(broker.port, junk[:50])
    await settle(lambda: inbox.rejected_inputs >= 50, timeout=10)
    await inbox.async_flush()
    await publish_retained(broker.port, junk[50:])
    await settle(lambda: inbox.rejected_inputs >= 400, timeout=10)
    await inbox.async_flush()
    # then memory and the database hold the 50 most recent, and the rest is forgotten
    assert len(inbox.items) == 50 and inbox.invalid_forgotten == 350
    assert inbox.find("topic:homeassistant/sensor/junk399/config") is not None
    assert inbox.find("topic:homeassistant/sensor/junk0/config") is None
    rows = await gateway.store.async_read(lambda c: c.execute("SELECT count(*) FROM inbox").fetchone()[0])
    assert rows == 50 and not inbox._write_failed
