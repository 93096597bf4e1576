"""Real-world MQTT shapes: OpenMQTTGateway's wildcard BLE announcements and Tasmota's own discovery.

Fixtures are written from the publishers' own code, not from what Linli would like:

* OpenMQTTGateway `main/ZmqttDiscovery.ino` `createDiscovery()` and `main/ZgatewayBT.ino`
  `launchBTDiscovery()`: a BLE device's entity is announced on
  `homeassistant/sensor/<MAC>-<property>/config` with abbreviated keys, `stat_t` =
  `+/+/BTtoMQTT/<MAC>` ("wild card for the location and gateway name allowing to have the entity
  detected by several gateways"), `val_tpl` = `{{ value_json.<property> | is_defined }}`, the
  full key `state_class`, and a `dev` block with `ids`/`cns` = the MAC without colons, `mf` =
  the Theengs brand, `mdl` = the Theengs model id, `name` = model + "-" + MAC[6:], `via_device` =
  the gateway's name. No availability for BLE devices. Properties and ids from Theengs decoder
  (`src/devices/LYWSD03MMC_PVVX_json.h`, `XMTZC05HM_json.h`): tempc/tempf/hum/batt/volt;
  weighing_mode/unit/weight/impedance. The state message goes to
  `<mqtt_topic><gateway_name>/BTtoMQTT/<MAC>` (default `home/OMG_ESP32_BLE/...`).
* Tasmota 9+ (`tasmota/discovery/<MAC>/config` and `.../sensors`, as hatasmota reads them):
  abbreviated keys, full topic `%prefix%/%topic%/`, relays in `rl`, power states in `state`,
  commands on `cmnd/<topic>/POWER<n>`, the relay's state on `stat/<topic>/POWER[<n>]`.
"""

from __future__ import annotations

from typing import Any

import aiomqtt
import pytest

from linli.gateway.discovery import InboxError
from linli.gateway.registry import Device
from linli.gateway.runtime import Gateway
from tests.brokers import settle
from tests.discovering import COMPONENTS, discovery_config, inbox_of, item_for, publish_retained
from tests.homes import add_home, publish

OMG_GATEWAY = "OMG_ESP32_BLE"


def omg_ble(
    mac: str, brand: str, model: str, model_id: str, properties: list[tuple[str, str | None, str | None]]
) -> list[tuple[str, dict[str, Any]]]:
    """One Theengs-decoded BLE device as OpenMQTTGateway announces it: (key, device class, unit)."""
    device = {"ids": [mac], "cns": [["mac", mac]], "mf": brand, "mdl": model_id,
              "name": f"{model}-{mac[6:]}", "via_device": OMG_GATEWAY}  # fmt: skip
    configs = []
    for key, device_class, unit in properties:
        config: dict[str, Any] = {"stat_t": f"+/+/BTtoMQTT/{mac}"}
        if device_class:
            config["dev_cla"] = device_class
        if unit:
            config["unit_of_meas"] = unit
        config |= {"name": f"{model_id}-{key}", "uniq_id": f"{mac}-{key}",
                   "val_tpl": f"{{{{ value_json.{key} | is_defined }}}}",
                   "state_class": "measurement", "device": device}  # fmt: skip
        configs.append((f"homeassistant/sensor/{mac}-{key}/config", config))
    return configs


THERMOMETER_MAC = "A4C138ABCDEF"
SCALE_MAC = "5CCAD3A1B2C3"


def lywsd03mmc(mac: str = THERMOMETER_MAC) -> list[tuple[str, dict[str, Any]]]:
    return omg_ble(mac, "Xiaomi", "LYWSD03MMC", "LYWSD03MMC_PVVX", [
        ("tempc", "temperature", "°C"), ("tempf", "temperature", "°F"), ("hum", "humidity", "%"),
        ("batt", "battery", "%"), ("volt", "voltage", "V"),
    ])  # fmt: skip


def mi_scale(mac: str = SCALE_MAC) -> list[tuple[str, dict[str, Any]]]:
    # weighing_mode and unit are strings (OMG announces them as enum sensors); impedance has no
    # Home Assistant device class, so OMG sends none.
    return omg_ble(mac, "Xiaomi", "Mi_Body_Composition_Scale", "XMTZC02HM/XMTZC05HM", [
        ("weighing_mode", "enum", None), ("unit", "enum", None), ("weight", "weight", "kg"),
        ("impedance", None, "Ω"),
    ])  # fmt: skip


def thermometer_reading(mac: str, tempc: float, hum: float, batt: int) -> dict[str, Any]:
    colons = ":".join(mac[i : i + 2] for i in range(0, 12, 2))
    return {"id": colons, "name": f"ATC_{mac[6:]}", "rssi": -67, "brand": "Xiaomi", "model": "LYWSD03MMC",
            "model_id": "LYWSD03MMC_PVVX", "type": "THB", "tempc": tempc,
            "tempf": round(tempc * 9 / 5 + 32, 2), "hum": hum, "batt": batt, "volt": 2.975}  # fmt: skip


def state(device: Device, key: str) -> Any:
    found = device.states.get(key)
    return None if found is None else found.value


async def gateway_with_homes(make_gateway: Any) -> Gateway:
    gateway: Gateway = await make_gateway(components=COMPONENTS, discovery=discovery_config("mqtt"))
    await add_home(gateway, "h1")
    await add_home(gateway, "h2")
    return gateway


async def announced(gateway: Gateway, broker: Any, configs: list, key: str, entities: int) -> Any:
    await publish_retained(broker.port, configs)
    inbox = inbox_of(gateway)
    item = await item_for(inbox, key)
    await settle(lambda: len(item.sources["mqtt"].announcement.details.get("entities", ())) == entities)
    return item


# -- OpenMQTTGateway: wildcard state topics -------------------------------------------------


async def test_omg_thermometer_with_a_wildcard_topic_is_adopted_and_reads_values(
    make_gateway, broker
) -> None:
    # given a LYWSD03MMC announced by OpenMQTTGateway on `+/+/BTtoMQTT/<MAC>` (no bridge set up)
    gateway = await gateway_with_homes(make_gateway)
    item = await announced(gateway, broker, lywsd03mmc(), f"mac:{THERMOMETER_MAC.lower()}", 5)
    assert item.topic == f"+/+/BTtoMQTT/{THERMOMETER_MAC}"
    assert (item.manufacturer, item.model) == ("Xiaomi", "LYWSD03MMC_PVVX")
    # when it is approved
    device = await inbox_of(gateway).async_approve(item.id, household_id="h1", by="li.installer")
    # then it is registered on a plain stand-in topic and reads through the filter
    assert device.topic == f"_/_/BTtoMQTT/{THERMOMETER_MAC}"
    assert device.profile.state_topics == (f"+/+/BTtoMQTT/{THERMOMETER_MAC}",)  # type: ignore[attr-defined]
    # when the gateway, under whatever base and name it has, reports a reading
    topic = f"home/{OMG_GATEWAY}/BTtoMQTT/{THERMOMETER_MAC}"
    await publish(broker.port, [(topic, thermometer_reading(THERMOMETER_MAC, 23.45, 51.2, 88))])
    # then the shipped profile's keys carry the values (tempc → temperature, hum → humidity)
    await settle(lambda: state(device, "temperature") == 23.45)
    assert (state(device, "humidity"), state(device, "battery"), state(device, "voltage")) == (
        51.2,
        88,
        2.975,
    )
    # and a second gateway in another room feeds the same device
    await publish(broker.port, [(f"home/OMG_bedroom/BTtoMQTT/{THERMOMETER_MAC}",
                                 thermometer_reading(THERMOMETER_MAC, 22.0, 50.0, 87))])  # fmt: skip
    await settle(lambda: state(device, "temperature") == 22.0)


async def test_omg_body_scale_reads_weight_and_impedance(make_gateway, broker) -> None:
    gateway = await gateway_with_homes(make_gateway)
    item = await announced(gateway, broker, mi_scale(), f"mac:{SCALE_MAC.lower()}", 4)
    device = await inbox_of(gateway).async_approve(item.id, household_id="h1", by="li.installer")
    topic = f"home/{OMG_GATEWAY}/BTtoMQTT/{SCALE_MAC}"
    # when a person steps on (an advertisement with a stable weight and the impedance)
    await publish(broker.port, [(topic, {
        "id": "5C:CA:D3:A1:B2:C3", "name": "MIBFS", "rssi": -72, "brand": "Xiaomi",
        "model": "Mi_Body_Composition_Scale", "model_id": "XMTZC02HM/XMTZC05HM", "type": "SCALE",
        "weighing_mode": "person", "unit": "kg", "weight": 62.35, "impedance": 503})])  # fmt: skip
    # then weight, and the impedance the announcement gave no device class (the profile knows it)
    await settle(lambda: state(device, "weight") == 62.35)
    assert state(device, "impedance") == 503
    # and an advertisement without a weight is not a reading
    await publish(broker.port, [(topic, {"id": "5C:CA:D3:A1:B2:C3", "rssi": -70})])
    await publish(broker.port, [(topic, {"id": "5C:CA:D3:A1:B2:C3", "weight": 63.1, "unit": "kg"})])
    await settle(lambda: state(device, "weight") == 63.1)
    assert state(device, "impedance") == 503


async def test_a_filter_is_narrowed_to_the_households_bridge_and_other_households_are_ignored(
    make_gateway, broker
) -> None:
    # given each household's OpenMQTTGateway connected as its bridge, with its own base topic
    gateway = await gateway_with_homes(make_gateway)
    await gateway.mqtt_credentials.async_issue_bridge("h1", "home/OMG_h1")
    await gateway.mqtt_credentials.async_issue_bridge("h2", "home/OMG_h2")
    item = await announced(gateway, broker, lywsd03mmc(), f"mac:{THERMOMETER_MAC.lower()}", 5)
    # when the thermometer is adopted into h1
    device = await inbox_of(gateway).async_approve(item.id, household_id="h1", by="li.installer")
    # then the registry keeps the filter narrowed to h1's bridge
    assert device.topic == f"home/OMG_h1/BTtoMQTT/{THERMOMETER_MAC}"
    # and the neighbours' gateway hearing the same thermometer through the wall is not read
    await publish(broker.port, [(f"home/OMG_h2/BTtoMQTT/{THERMOMETER_MAC}",
                                 thermometer_reading(THERMOMETER_MAC, 30.0, 20.0, 50))])  # fmt: skip
    await publish(broker.port, [(f"home/OMG_h1/BTtoMQTT/{THERMOMETER_MAC}",
                                 thermometer_reading(THERMOMETER_MAC, 21.5, 45.0, 90))])  # fmt: skip
    await settle(lambda: state(device, "temperature") is not None)
    assert state(device, "temperature") == 21.5
    # (the neighbours' reading first, then one of h1's that carries only the battery)
    await publish(broker.port, [(f"home/OMG_h2/BTtoMQTT/{THERMOMETER_MAC}",
                                 thermometer_reading(THERMOMETER_MAC, 30.0, 20.0, 50)),
                                (f"home/OMG_h1/BTtoMQTT/{THERMOMETER_MAC}",
                                 {"id": "A4:C1:38:AB:CD:EF", "rssi": -60, "batt": 89})])  # fmt: skip
    await settle(lambda: state(device, "battery") == 89)
    assert (state(device, "temperature"), state(device, "humidity")) == (21.5, 45.0)


async def test_a_filter_only_another_households_bridge_reports_is_refused(make_gateway, broker) -> None:
    # given only h2 has a bridge whose base the thermometer's filter matches
    gateway = await gateway_with_homes(make_gateway)
    await gateway.mqtt_credentials.async_issue_bridge("h2", "home/OMG_h2")
    item = await announced(gateway, broker, lywsd03mmc(), f"mac:{THERMOMETER_MAC.lower()}", 5)
    # when an installer approves it into h1, then it is refused, saying whose it is
    with pytest.raises(InboxError) as refused:
        await inbox_of(gateway).async_approve(item.id, household_id="h1", by="li.installer")
    assert refused.value.code == "wrong_household"
    assert "'home/OMG_h2'" in refused.value.message and "'h2'" in refused.value.message
    # and into h2 it is adopted
    device = await inbox_of(gateway).async_approve(item.id, household_id="h2", by="li.installer")
    assert device.topic == f"home/OMG_h2/BTtoMQTT/{THERMOMETER_MAC}"


async def test_a_filter_covering_another_households_device_is_refused(make_gateway, broker) -> None:
    # given h2 already has a device registered on a topic the filter would match
    gateway = await gateway_with_homes(make_gateway)
    await gateway.registry.async_add_device(
        "h2-thermo", household_id="h2", name="thermo", profile_id="xiaomi/lywsd03mmc",
        topic=f"home/OMG_h2/BTtoMQTT/{THERMOMETER_MAC}",
    )  # fmt: skip
    item = await announced(gateway, broker, lywsd03mmc(), f"mac:{THERMOMETER_MAC.lower()}", 5)
    with pytest.raises(InboxError) as refused:
        await inbox_of(gateway).async_approve(item.id, household_id="h1", by="li.installer")
    assert refused.value.code == "wrong_household" and "h2-thermo" not in refused.value.message
    assert f"home/OMG_h2/BTtoMQTT/{THERMOMETER_MAC}" in refused.value.message


async def test_a_filter_reaching_into_linli_topics_is_refused(make_gateway, broker) -> None:
    gateway = await gateway_with_homes(make_gateway)
    configs = omg_ble("112233445566", "Acme", "Spy", "SPY1", [("tempc", "temperature", "°C")])
    configs = [(t, {**c, "stat_t": "linli/v1/+/112233445566"}) for t, c in configs]
    item = await announced(gateway, broker, configs, "mac:112233445566", 1)
    with pytest.raises(InboxError) as refused:
        await inbox_of(gateway).async_approve(item.id, household_id="h1", by="li.installer")
    assert refused.value.code == "not_adoptable" and "'linli'" in refused.value.message


@pytest.mark.parametrize(
    ("stat_t", "said"),
    [("home/#", "has '#'"), ("+/+/BTtoMQTT/+", "last level must name the device")],
    ids=["hash", "all-wildcards"],
)
async def test_a_hash_or_open_ended_filter_is_rejected_with_its_reason(
    make_gateway, broker, stat_t: str, said: str
) -> None:
    gateway = await gateway_with_homes(make_gateway)
    [(topic, config)] = omg_ble("665544332211", "Acme", "Wide", "W1", [("tempc", "temperature", "°C")])
    await publish_retained(broker.port, [(topic, {**config, "stat_t": stat_t})])
    inbox = inbox_of(gateway)
    item = await item_for(inbox, f"topic:{topic}")
    assert item.status.value == "rejected" and said in (item.reason or "")


async def test_no_device_credential_is_issued_for_a_filter(make_gateway, broker) -> None:
    from linli.gateway.mqtt.credentials import CredentialError

    gateway = await gateway_with_homes(make_gateway)
    item = await announced(gateway, broker, lywsd03mmc(), f"mac:{THERMOMETER_MAC.lower()}", 5)
    device = await inbox_of(gateway).async_approve(item.id, household_id="h1", by="li.installer")
    with pytest.raises(CredentialError) as refused:
        await gateway.mqtt_credentials.async_issue_device(device)
    assert "no single device owns" in str(refused.value) and "bridge" in str(refused.value)


async def test_a_device_adopted_with_a_filter_reads_again_after_a_restart(
    make_gateway, broker, tmp_path
) -> None:
    data = tmp_path / "data"
    gateway: Gateway = await make_gateway(data, components=COMPONENTS, discovery=discovery_config("mqtt"))
    await add_home(gateway, "h1")
    item = await announced(gateway, broker, lywsd03mmc(), f"mac:{THERMOMETER_MAC.lower()}", 5)
    device = await inbox_of(gateway).async_approve(item.id, household_id="h1", by="li.installer")
    await gateway.async_stop()
    # when the gateway starts again, the device subscribes to its filter again
    again: Gateway = await make_gateway(data, components=COMPONENTS, discovery=discovery_config("mqtt"))
    restored = again.registry.device(device.id)
    assert restored is not None
    topic = f"home/{OMG_GATEWAY}/BTtoMQTT/{THERMOMETER_MAC}"
    await settle(lambda: f"+/+/BTtoMQTT/{THERMOMETER_MAC}" in again.components["mqtt_device"]._subscribed)  # type: ignore[attr-defined]
    await publish(broker.port, [(topic, thermometer_reading(THERMOMETER_MAC, 19.5, 60.0, 80))])
    await settle(lambda: state(restored, "temperature") == 19.5)


def test_fixture_topics_are_as_openmqttgateway_builds_them() -> None:
    [(topic, config), *_] = lywsd03mmc()
    assert topic == f"homeassistant/sensor/{THERMOMETER_MAC}-tempc/config"
    assert config["stat_t"] == f"+/+/BTtoMQTT/{THERMOMETER_MAC}"
    assert config["device"]["name"] == "LYWSD03MMC-ABCDEF"


# -- Tasmota's own discovery -----------------------------------------------------------------

TASMOTA_MAC = "3C71BF4A1B2C"


def tasmota_config(
    mac: str, topic: str, module: str, relays: list[int], names: list[str | None]
) -> dict[str, Any]:
    """`tasmota/discovery/<MAC>/config` as Tasmota 13 publishes it (xdrv_12_discovery.ino)."""
    return {
        "ip": "192.168.1.77", "dn": module, "fn": [*names, *[None] * (8 - len(names))],
        "hn": f"tasmota-{mac[6:]}-6956", "mac": mac, "md": module, "ty": 0, "if": 0,
        "ofln": "Offline", "onln": "Online", "state": ["OFF", "ON", "TOGGLE", "HOLD"],
        "sw": "13.2.0", "t": topic, "ft": "%prefix%/%topic%/", "tp": ["cmnd", "stat", "tele"],
        "rl": [*relays, *[0] * (8 - len(relays))], "swc": [-1] * 8, "swn": [None] * 8, "btn": [0] * 8,
        "so": {"4": 0, "11": 0, "13": 0, "17": 0, "20": 0, "30": 0, "68": 0, "73": 0, "82": 0,
               "114": 0, "117": 0},
        "lk": 0, "lt_st": 0, "bat": 0, "dslp": 0, "sho": [], "sht": [], "ver": 1,
    }  # fmt: skip


def tasmota_sensors(readings: dict[str, Any]) -> dict[str, Any]:
    """`tasmota/discovery/<MAC>/sensors`: the last SENSOR telemetry under `sn`."""
    return {"sn": {"Time": "2026-05-01T10:00:00", **readings, "TempUnit": "C"}, "ver": 1}


SONOFF_TH = [
    (f"tasmota/discovery/{TASMOTA_MAC}/config",
     tasmota_config(TASMOTA_MAC, "tasmota_4A1B2C", "Sonoff TH", [1], ["加湿器"])),
    (f"tasmota/discovery/{TASMOTA_MAC}/sensors",
     tasmota_sensors({"AM2301": {"Temperature": 24.3, "Humidity": 55.1, "DewPoint": 14.7}})),
]  # fmt: skip


def key_of(device: Device, kind: str, n: int = 0) -> str:
    return [c.key for c in device.profile.capabilities if c.kind == kind][n]


async def first_message(port: int, topic: str, send: Any) -> bytes:
    """Subscribe to `topic`, run `send()`, and return the first payload that arrives."""
    async with aiomqtt.Client("127.0.0.1", port, identifier="tasmota-listener") as client:
        await client.subscribe(topic, qos=1)
        await send()
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            return message.payload
    raise AssertionError("no message")


async def test_tasmota_native_discovery_relay_and_sensors_are_adopted_and_commanded(
    make_gateway, broker
) -> None:
    # given a Sonoff TH announced by Tasmota's own discovery (config and sensors messages)
    gateway = await gateway_with_homes(make_gateway)
    item = await announced(gateway, broker, SONOFF_TH, f"mac:{TASMOTA_MAC.lower()}", 3)
    assert (item.name, item.manufacturer, item.model, item.firmware) == (
        "Sonoff TH", "Tasmota", "Sonoff TH", "13.2.0"
    )  # fmt: skip
    device = await inbox_of(gateway).async_approve(item.id, household_id="h1", by="li.installer")
    relay = key_of(device, "switch")
    # when the relay switches on (Tasmota's plain stat/<topic>/POWER) and telemetry arrives
    await publish(broker.port, [("stat/tasmota_4A1B2C/POWER", b"ON"),
                                ("tele/tasmota_4A1B2C/SENSOR", tasmota_sensors(
                                    {"AM2301": {"Temperature": 25.1, "Humidity": 52.0}})["sn"])])  # fmt: skip
    # then the switch is on and the readings are mapped
    await settle(lambda: state(device, key_of(device, "humidity")) == 52.0)
    assert state(device, relay) is True and state(device, key_of(device, "temperature")) == 25.1
    # when a resident switches it off, Tasmota's command topic for relay 1 gets its OFF word
    payload = await first_message(
        broker.port,
        "cmnd/tasmota_4A1B2C/POWER1",
        lambda: gateway.commands.async_send(device.id, relay, False),
    )
    assert payload == b"OFF"
    # and its last will says when it is gone
    await publish(broker.port, [("tele/tasmota_4A1B2C/LWT", b"Offline")])
    await settle(lambda: not device.available)


async def test_tasmota_four_relays_each_on_its_own_power_topic(make_gateway, broker) -> None:
    gateway = await gateway_with_homes(make_gateway)
    mac = "C45BBE1A2B3C"
    config = tasmota_config(mac, "sonoff4ch", "Sonoff 4CH", [1, 1, 1, 1], ["灯", "风扇", None, None])
    item = await announced(
        gateway, broker, [(f"tasmota/discovery/{mac}/config", config)], f"mac:{mac.lower()}", 4
    )
    device = await inbox_of(gateway).async_approve(item.id, household_id="h1", by="li.installer")
    relays = [c for c in device.profile.capabilities if c.kind == "switch"]
    assert [c.name for c in relays] == ["灯", "风扇", "Sonoff 4CH 3", "Sonoff 4CH 4"]
    # relay 2's state is on POWER2, not POWER (several relays)
    await publish(broker.port, [("stat/sonoff4ch/POWER2", b"ON"), ("stat/sonoff4ch/POWER3", b"OFF")])
    await settle(lambda: state(device, relays[2].key) is False)
    assert state(device, relays[1].key) is True and state(device, relays[0].key) is None
    payload = await first_message(
        broker.port,
        "cmnd/sonoff4ch/POWER3",
        lambda: gateway.commands.async_send(device.id, relays[2].key, True),
    )
    assert payload == b"ON"


@pytest.mark.parametrize(
    ("change", "said"),
    [({"t": "a/#"}, "t:"), ({"ft": "%prefix%/fixed/"}, "ft:"), ({"mac": "3C71BF4A1B2D"}, "differs")],
    ids=["wildcard-topic", "no-topic-token", "mac-mismatch"],
)
async def test_an_unusable_tasmota_config_is_rejected_with_its_reason(
    make_gateway, broker, change: dict[str, Any], said: str
) -> None:
    gateway = await gateway_with_homes(make_gateway)
    topic = f"tasmota/discovery/{TASMOTA_MAC}/config"
    config = tasmota_config(TASMOTA_MAC, "tasmota_4A1B2C", "Sonoff Basic", [1], [None]) | change
    await publish_retained(broker.port, [(topic, config)])
    item = await item_for(inbox_of(gateway), f"topic:{topic}")
    assert item.status.value == "rejected" and said in (item.reason or "")
