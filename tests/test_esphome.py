"""ESPHome nodes: announced over mDNS, approved from the inbox, adopted through the native API.

A simulated node (linli/sim/esphome_device.py) speaks ESPHome's plaintext
native API on 127.0.0.1 with aioesphomeapi's own protobuf messages and
announces `_esphomelib._tcp` on loopback with ESPHome's TXT record
(friendly_name, version, mac, platform, board, network). Its entities are a
hall node's: a door reed switch (binary_sensor, class door), a smoke detector
(class smoke), a DHT temperature (sensor, °C), a relay (switch), the WiFi
signal (diagnostic) and its IP address (text_sensor, which Linli has no kind for).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aioesphomeapi import BinarySensorInfo, DeviceInfo, SensorInfo, SwitchInfo, TextSensorInfo

from linli.adapters.esphome.entities import node_model
from linli.gateway.discovery import InboxError, InboxStatus
from linli.gateway.events import AvailabilityChanged, ProfilesChanged, StateChanged
from linli.gateway.runtime import Gateway
from linli.sim.esphome_device import SimEsphomeDevice
from tests.brokers import settle
from tests.discovering import DISCOVERY, discovery_config, inbox_of, item_for
from tests.homes import add_home

COMPONENTS = [
    "linli.adapters.mqtt_device:MqttDeviceAdapter",
    *DISCOVERY,
    "linli.gateway.plugins.host:AdapterHost",
    "linli.services.alerts:AlertEngine",
    "linli.services.security:Security",
]


@pytest.fixture
async def nodes() -> AsyncIterator[Callable[..., Any]]:
    """Start (and announce) simulated nodes; each is stopped and unannounced afterwards."""
    started: list[SimEsphomeDevice] = []

    async def factory(**options: Any) -> SimEsphomeDevice:
        suffix = uuid.uuid4().hex[:6]  # mDNS on loopback is shared with whatever else runs
        mac = ":".join(["a4", "cf", "12", suffix[0:2], suffix[2:4], suffix[4:6]])
        node = SimEsphomeDevice(name=f"hall-node-{suffix}", mac=mac, **options)
        await node.async_start()
        await node.async_announce()
        started.append(node)
        return node

    yield factory
    for node in started:
        await node.async_unannounce()
        await node.async_stop()


async def esphome_gateway(
    make_gateway: Callable[..., Any], profiles: dict[str, Any] | None = None, **settings: Any
) -> Gateway:
    gateway: Gateway = await make_gateway(
        components=COMPONENTS,
        adapters={"only": ["esphome"], "settings": {"esphome": {"connect_timeout_s": 5, **settings}}},
        discovery=discovery_config("zeroconf"),
        **({"profiles": profiles} if profiles else {}),
    )
    await add_home(gateway, "h1", devices={})
    return gateway


@pytest.mark.slow
async def test_an_announced_node_is_adopted_and_behaves_like_any_device(make_gateway, nodes) -> None:
    # given a gateway that discovers over mDNS, household h1, and a hall node announcing itself
    gateway = await esphome_gateway(make_gateway)
    node = await nodes()
    inbox = inbox_of(gateway)
    item = await item_for(inbox, f"mac:{node.mac_digits}", timeout=8.0)
    # then it waits in the inbox under its friendly name, claimed by the esphome adapter
    assert item.status is InboxStatus.PENDING and item.name == "Hall node"
    assert item.category == "esphome" and inbox.adopter_for(item) == "esphome"
    changes = gateway.bus.subscribe(StateChanged, household="h1")

    # when an installer approves it into h1, in the hall
    device = await inbox.async_approve(item.id, household_id="h1", by="li.installer", room="门厅")

    # then it is one device of h1 whose capabilities are the node's entities, by device class
    assert (device.household_id, device.room, device.name) == ("h1", "门厅", "Hall node")
    kinds = {c.key: (c.kind, c.unit, c.access) for c in device.profile.capabilities}
    assert kinds == {
        "front_door": ("contact", None, "r"),
        "hall_smoke": ("smoke", None, "r"),
        "hall_temperature": ("temperature", "Cel", "r"),
        "hall_relay": ("switch", None, "rw"),
        "wifi_signal": ("signal", "dB[mW]", "r"),
    }
    assert inbox.get(item.id).status is InboxStatus.APPROVED  # type: ignore[union-attr]
    # the entity Linli has no kind for is listed, not dropped
    adapter = gateway.components["adapters"].adapter("esphome")  # type: ignore[attr-defined]
    [status] = adapter.status()
    assert [u["object_id"] for u in status["unmapped"]] == ["ip_address"]
    # and its states arrive: connected means available, the temperature is read
    await settle(lambda: device.available and "hall_temperature" in device.states, 5.0)
    assert device.states["hall_temperature"].value == 21.5
    assert device.states["front_door"].value is False

    # when the front door opens, the node pushes it; the registry and the bus have it
    node.set_state("front_door", True)
    await settle(lambda: device.states["front_door"].value is True)
    seen = []
    while (event := changes.get_nowait()) is not None:
        seen.append((event.capability, event.kind, event.new))
    assert ("front_door", "contact", True) in seen

    # when the smoke detector goes off, the household gets a critical smoke alert
    engine: Any = gateway.components["alerts"]
    node.set_state("hall_smoke", True)
    await settle(lambda: any(a.kind == "smoke" for a in engine.alerts.values()), 5.0)
    [smoke] = [a.as_dict() for a in engine.alerts.values() if a.kind == "smoke"]
    assert smoke["severity"] == "critical" and smoke["household_id"] == "h1"

    # when a resident switches the relay on from the portal (what the command route calls)
    result = await gateway.commands.async_send(device.id, "hall_relay", True)
    # then the command reached the node and the node's own report came back
    assert node.commands == [("hall_relay", True)]
    assert result["state"] is True and device.states["hall_relay"].value is True
    # and a reading is not something one commands
    with pytest.raises(Exception, match="cannot be commanded") as refused:
        await gateway.commands.async_send(device.id, "hall_temperature", True)
    assert getattr(refused.value, "code", None) == "not_supported"


@pytest.mark.slow
async def test_a_node_that_goes_away_is_unavailable_and_back_when_it_returns(make_gateway, nodes) -> None:
    # given an adopted node, connected
    gateway = await esphome_gateway(make_gateway)
    node = await nodes()
    inbox = inbox_of(gateway)
    item = await item_for(inbox, f"mac:{node.mac_digits}", timeout=8.0)
    device = await inbox.async_approve(item.id, household_id="h1", by="li.installer")
    await settle(lambda: device.available, 5.0)
    availability = gateway.bus.subscribe(AvailabilityChanged, household="h1")
    # when the node loses power (its API connection drops, no mDNS goodbye)
    await node.async_stop()
    # then the device is unavailable, and says why
    await settle(lambda: not device.available, 5.0)
    gone = availability.get_nowait()
    assert gone is not None and gone.available is False and "ESPHome" in gone.reason
    # and a command to it is refused as unavailable, not lost silently
    with pytest.raises(Exception, match="not connected") as refused:
        await gateway.commands.async_send(device.id, "hall_relay", True)
    assert getattr(refused.value, "code", None) == "unavailable"
    assert node.commands == []
    # when it comes back on the same address, the reconnect logic finds it
    await node.async_start()
    await settle(lambda: device.available, 15.0)
    # then it reports again
    node.set_state("front_door", True)
    await settle(lambda: device.states["front_door"].value is True)


@pytest.mark.slow
async def test_a_node_keeps_its_profile_when_the_profile_folders_are_reloaded(
    make_gateway, nodes, tmp_path
) -> None:
    # given an adopted node, and a gateway that follows an extra profile folder
    folder = tmp_path / "profiles"
    folder.mkdir()
    gateway = await esphome_gateway(make_gateway, profiles={"paths": [str(folder)]})
    node = await nodes()
    inbox = inbox_of(gateway)
    item = await item_for(inbox, f"mac:{node.mac_digits}", timeout=8.0)
    device = await inbox.async_approve(item.id, household_id="h1", by="li.installer")
    reloads = gateway.bus.subscribe(ProfilesChanged)
    # when someone drops a new profile into the folder (the set is reloaded from the folders)
    profile = {
        "id": "acme/door-1",
        "vendor": "Acme",
        "model": "Door 1",
        "name": "Door sensor",
        "capabilities": [
            {"key": "door", "kind": "contact", "source": "contact", "value_on": False, "value_off": True}
        ],
    }
    (folder / "door-1.json").write_text(json.dumps(profile), encoding="utf-8")
    await settle(lambda: gateway.profiles.get("acme/door-1") is not None, 10.0)
    assert reloads.get_nowait() is not None
    # then the node's own profile is still known (a second look-up by id finds it)
    assert gateway.profiles.get(device.profile.id) is not None


@pytest.mark.slow
async def test_a_wrong_api_password_is_a_clear_refusal_and_the_node_stays_pending(
    make_gateway, nodes
) -> None:
    # given a node with a legacy API password, and a gateway configured with another one for it
    node = await nodes(password="correct horse")
    gateway = await esphome_gateway(make_gateway, devices={node.mac_digits: {"password": "battery staple"}})
    inbox = inbox_of(gateway)
    item = await item_for(inbox, f"mac:{node.mac_digits}", timeout=8.0)
    # when an installer approves it
    with pytest.raises(InboxError) as refused:
        await inbox.async_approve(item.id, household_id="h1", by="li.installer")
    # then the refusal says the node refused the password, and where to set the right one
    message = str(refused.value)
    assert "refused the API password" in message
    assert f"adapters.settings.esphome.devices.{node.mac_digits}.password" in message
    # and nothing was adopted: the item is still pending, h1 has no device
    assert inbox.get(item.id).status is InboxStatus.PENDING  # type: ignore[union-attr]
    assert [
        d.id for d in gateway.registry.household_devices("h1") if d.profile.id.startswith("esphome/")
    ] == []


@pytest.mark.slow
async def test_a_node_with_the_right_password_from_the_settings_is_adopted(make_gateway, nodes) -> None:
    # given a node with a password, and the gateway's default esphome password is that one
    node = await nodes(password="correct horse")
    gateway = await esphome_gateway(make_gateway, password="correct horse")
    inbox = inbox_of(gateway)
    item = await item_for(inbox, f"mac:{node.mac_digits}", timeout=8.0)
    # when it is approved, then it is adopted and connected
    device = await inbox.async_approve(item.id, household_id="h1", by="li.installer")
    await settle(lambda: device.available and "hall_temperature" in device.states, 5.0)


@pytest.mark.slow
async def test_an_encrypted_node_without_its_key_is_refused_with_what_is_needed(make_gateway, nodes) -> None:
    # given a node that announces api_encryption (a noise key), and no key in the settings
    node = await nodes(encryption=True)
    gateway = await esphome_gateway(make_gateway)
    inbox = inbox_of(gateway)
    item = await item_for(inbox, f"mac:{node.mac_digits}", timeout=8.0)
    # when it is approved, then the refusal names the setting that takes its key
    with pytest.raises(InboxError, match=f"devices.{node.mac_digits}.noise_psk"):
        await inbox.async_approve(item.id, household_id="h1", by="li.installer")
    assert inbox.get(item.id).status is InboxStatus.PENDING  # type: ignore[union-attr]


def test_entities_map_by_device_class_and_the_rest_is_listed_as_unmapped() -> None:
    # given a node's entities as aioesphomeapi reads them
    info = DeviceInfo(name="bath-node", friendly_name="Bath", mac_address="A4:CF:12:00:00:01")
    entities = [
        BinarySensorInfo(object_id="leak", key=1, name="Leak", device_class="moisture"),
        BinarySensorInfo(object_id="pir", key=2, name="PIR", device_class="motion"),
        BinarySensorInfo(object_id="co", key=3, name="CO", device_class="carbon_monoxide"),
        BinarySensorInfo(object_id="button", key=4, name="Button"),
        SensorInfo(object_id="rh", key=5, name="RH", device_class="humidity", unit_of_measurement="%"),
        SensorInfo(object_id="pm25", key=6, name="PM2.5", device_class="pm25", unit_of_measurement="µg/m³"),
        SwitchInfo(object_id="1st_fan", key=7, name="Fan"),
        TextSensorInfo(object_id="version", key=8, name="Version"),
    ]
    # when its model is built
    model = node_model(info, entities)
    # then each entity with a Linli kind is a capability, keyed as the profile schema wants
    caps = {c["key"]: c["kind"] for c in model.profile["capabilities"]}
    assert caps == {
        "leak": "water_leak",
        "pir": "motion",
        "co": "gas",
        "rh": "humidity",
        "e_1st_fan": "switch",
    }
    assert model.capabilities == {1: "leak", 2: "pir", 3: "co", 5: "rh", 7: "e_1st_fan"}
    assert model.profile["id"] == "esphome/a4cf12000001"
    # and the others are listed with the reason
    assert {u["object_id"]: u["why"] for u in model.unmapped} == {
        "button": "Linli has no kind for a binary_sensor without a device class",
        "pm25": "Linli has no kind for a sensor of class 'pm25'",
        "version": "Linli has no kind for a text_sensor without a device class",
    }


def test_a_node_with_nothing_linli_knows_is_refused_with_a_hint() -> None:
    info = DeviceInfo(name="odd-node", mac_address="A4:CF:12:00:00:02")
    with pytest.raises(ValueError, match=r"no entity Linli has a kind for.*device_class"):
        node_model(info, [TextSensorInfo(object_id="uptime", key=1, name="Uptime")])


@pytest.mark.slow
async def test_an_adopted_node_is_back_after_a_restart_with_its_last_state(
    make_gateway, nodes, tmp_path
) -> None:
    async def start(gateway_id: str) -> Gateway:
        gateway: Gateway = await make_gateway(
            data_dir=tmp_path / "data",
            gateway_id=gateway_id,
            components=COMPONENTS,
            adapters={"only": ["esphome"], "settings": {"esphome": {"connect_timeout_s": 5}}},
            discovery=discovery_config("zeroconf"),
        )
        return gateway

    # given an adopted node whose door is open
    gateway = await start("gw-one")
    await add_home(gateway, "h1", devices={})
    node = await nodes()
    inbox = inbox_of(gateway)
    item = await item_for(inbox, f"mac:{node.mac_digits}", timeout=8.0)
    device = await inbox.async_approve(item.id, household_id="h1", by="li.installer")
    node.set_state("front_door", True)
    await settle(lambda: "front_door" in device.states and device.states["front_door"].value is True)
    await gateway.async_stop()
    # when the gateway starts again (its registry loads before the adapter builds the node's profile)
    again = await start("gw-two")
    # then the node is a device of h1 again, with what it last reported, connected and reporting
    back = again.registry.device(device.id)
    assert back is not None and back.household_id == "h1"
    assert again.registry.unknown_profile_devices == []
    await settle(lambda: back.available, 15.0)
    node.set_state("front_door", False)
    await settle(lambda: back.states["front_door"].value is False)
