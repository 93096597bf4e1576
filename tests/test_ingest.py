"""Telemetry ingest over a real broker: what residents' devices publish becomes state."""

from __future__ import annotations

import sqlite3

import aiomqtt
import orjson
import pytest

from linli.gateway.commands import NotSupportedError
from linli.gateway.events import AvailabilityChanged, PayloadRejected, StateChanged, TelemetryReceived
from tests.brokers import settle
from tests.homes import add_home, publish


async def test_door_payload_becomes_state_event_and_stored_row(make_gateway, broker) -> None:
    # given a home with a Zigbee door contact (contact=true means CLOSED)
    gateway = await make_gateway()
    topics = await add_home(gateway)
    changes = gateway.bus.subscribe(StateChanged, household="h1")
    # when the door opens
    await publish(broker.port, [(topics["h1-door"], {"contact": False, "battery": 91, "linkquality": 120})])
    await settle(lambda: "door" in gateway.registry.device("h1-door").states)
    # then the capability is active (open), an event says so, and the row is on disk
    door = gateway.registry.device("h1-door")
    assert door.states["door"].value is True
    assert door.available
    event = await changes.get()
    assert (event.device_id, event.kind, event.new) == ("h1-door", "contact", True)
    assert event.household == "h1"
    await gateway.store.async_flush()
    rows = (
        sqlite3.connect(gateway.store.path)
        .execute("SELECT capability, num FROM telemetry ORDER BY capability")
        .fetchall()
    )
    assert rows == [("battery", 91.0), ("door", 1.0), ("linkquality", 120.0)]


async def test_blood_pressure_maps_to_composite_value(make_gateway, broker) -> None:
    gateway = await make_gateway()
    topics = await add_home(gateway)
    await publish(broker.port, [(topics["h1-bp"], {"sys": 128, "dia": 84, "pul": 71, "battery": 80})])
    await settle(lambda: "blood_pressure" in gateway.registry.device("h1-bp").states)
    assert gateway.registry.device("h1-bp").states["blood_pressure"].value == {
        "systolic": 128,
        "diastolic": 84,
        "pulse": 71,
    }


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json at all", "not JSON"),
        (b'{"contact": NaN}', "not JSON"),
        (b"[1, 2, 3]", "expected a JSON object"),
        (orjson.dumps({"contact": "maybe"}), "neither value_on"),
        (orjson.dumps({"battery": "full"}), "does not match its schema"),
        (orjson.dumps({"battery": 1e400}), ""),
        (orjson.dumps({"unrelated": 1}), "no field of profile"),
        (b"{" + b'"x": 1, ' * 150_000 + b'"contact": true}', "over the"),
    ],
    ids=["not-json", "nan", "array", "unknown-binary", "wrong-type", "infinite", "no-fields", "1MB"],
)
async def test_bad_payload_is_quarantined_and_ingest_goes_on(make_gateway, broker, payload, reason) -> None:
    gateway = await make_gateway()
    topics = await add_home(gateway)
    rejected = gateway.bus.subscribe(PayloadRejected)
    # when a device sends garbage, then a good payload
    await publish(
        broker.port,
        [
            (topics["h1-door"], payload),
            (topics["h1-door"], {"contact": True, "battery": 50}),
        ],
    )
    # then the garbage is refused with a reason, and the good payload still lands
    await settle(lambda: "door" in gateway.registry.device("h1-door").states)
    assert gateway.registry.device("h1-door").states["door"].value is False
    event = await rejected.get()
    assert reason in event.reason
    assert event.device_id == "h1-door"
    await gateway.store.async_flush()
    quarantined = (
        sqlite3.connect(gateway.store.path)
        .execute("SELECT device_id, reason, length(payload) FROM quarantine")
        .fetchall()
    )
    assert quarantined[0][0] == "h1-door"
    assert quarantined[0][2] <= 4096
    assert gateway.components["mqtt_device"].rejected == 1


async def test_rejections_are_logged_once_a_minute_per_device(make_gateway, broker, caplog) -> None:
    gateway = await make_gateway()
    topics = await add_home(gateway)
    await publish(
        broker.port, [(topics["h1-door"], b"garbage")] * 50 + [(topics["h1-door"], {"contact": True})]
    )
    await settle(lambda: "door" in gateway.registry.device("h1-door").states)
    warnings = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert len(warnings) == 1
    assert gateway.components["mqtt_device"].rejected == 50


async def test_every_accepted_payload_is_one_bus_event(make_gateway, broker) -> None:
    gateway = await make_gateway()
    topics = await add_home(gateway)
    received = gateway.bus.subscribe(TelemetryReceived, maxsize=10_000)
    messages = [(topics["h1-climate"], {"temperature": 20 + i / 100, "humidity": 50}) for i in range(500)]
    await publish(broker.port, messages)
    await settle(lambda: len(received) == 500)
    await gateway.store.async_flush()
    count = (
        sqlite3.connect(gateway.store.path)
        .execute("SELECT count(*) FROM telemetry WHERE capability = 'temperature'")
        .fetchone()[0]
    )
    assert count == 500


async def test_availability_topic_and_silence_mark_devices_offline(make_gateway, broker) -> None:
    gateway = await make_gateway()
    topics = await add_home(gateway)
    events = gateway.bus.subscribe(AvailabilityChanged)
    await publish(broker.port, [(topics["h1-door"], {"contact": True}), (topics["h1-sos"], {"sos": "idle"})])
    await settle(lambda: gateway.registry.device("h1-sos").available)
    # the hub says the door sensor dropped off its Zigbee network
    await publish(broker.port, [(topics["h1-door"] + "/availability", b"offline")])
    await settle(lambda: not gateway.registry.device("h1-door").available)
    # the pendant goes silent for longer than its profile's supervision interval (1800 s)
    sos = gateway.registry.device("h1-sos")
    offline = await gateway.supervision.async_check_availability(now=sos.last_seen + 1801)
    assert offline == 1 and not sos.available
    reasons = []
    while (event := events.get_nowait()) is not None:
        reasons.append((event.device_id, event.available, event.reason))
    assert ("h1-door", False, "availability topic") in reasons
    assert ("h1-sos", False, "silent for over 1800s") in reasons


async def test_command_reaches_the_device_in_its_own_words(make_gateway, broker) -> None:
    gateway = await make_gateway()
    topics = await add_home(gateway)
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="plug") as plug:
        await plug.subscribe(topics["h1-plug"] + "/set", qos=1)
        result = await gateway.commands.async_send("h1-plug", "relay", False)
        message = await anext(plug.messages)
    assert orjson.loads(message.payload) == {"state": "OFF"}
    assert result["topic"] == topics["h1-plug"] + "/set"


async def test_read_only_capability_command_is_not_supported(make_gateway) -> None:
    gateway = await make_gateway()
    await add_home(gateway)
    with pytest.raises(NotSupportedError) as raised:
        await gateway.commands.async_send("h1-door", "door", True)
    assert raised.value.code == "not_supported"
    with pytest.raises(NotSupportedError):
        await gateway.commands.async_send("h1-plug", "volume", 3)


async def test_state_survives_a_gateway_restart(make_gateway, broker, tmp_path) -> None:
    gateway = await make_gateway()
    topics = await add_home(gateway)
    await publish(broker.port, [(topics["h1-climate"], {"temperature": 23.5, "humidity": 40})])
    await settle(lambda: "temperature" in gateway.registry.device("h1-climate").states)
    await gateway.async_stop()
    again = await make_gateway(gateway_id="gw-test2")
    assert again.registry.device("h1-climate").states["temperature"].value == 23.5
    assert again.registry.households["h1"].name == "h1 home"
