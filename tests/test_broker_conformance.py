"""The broker keeps MQTT's rules, in every mode the gateway runs one (issue: the device plane).

Each test runs against the embedded broker (rumqttd in its own process) and, where it is
installed, the managed Mosquitto — the real brokers the gateway starts, on loopback,
driven by a third-party client (aiomqtt over paho).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from linli.gateway.mqtt.broker import GATEWAY_USER, EmbeddedBroker, MosquittoBroker
from tests.brokers import free_port
from tests.infrastructure import require_mosquitto

pytestmark = pytest.mark.slow  # every test waits out a window in which nothing more may arrive

MODES = ["embedded", "mosquitto"]


@dataclass
class Running:
    mode: str
    host: str
    port: int
    port5: int  # where MQTT 5 is spoken
    username: str | None
    password: str | None

    def client(self, identifier: str, *, v5: bool = False, **kwargs: object) -> aiomqtt.Client:
        return aiomqtt.Client(
            self.host,
            self.port5 if v5 else self.port,
            identifier=identifier,
            username=self.username,
            password=self.password,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            **kwargs,  # type: ignore[arg-type]
        )


@pytest.fixture(params=MODES)
async def running(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Running]:
    port = free_port()
    if request.param == "embedded":
        port5 = free_port()
        broker: EmbeddedBroker | MosquittoBroker = EmbeddedBroker(
            "127.0.0.1", port, tmp_path, mqtt5_port=port5
        )
        await broker.async_start()
        yield Running("embedded", "127.0.0.1", port, port5, None, None)
    else:
        require_mosquitto()
        broker = MosquittoBroker("127.0.0.1", port, tmp_path)
        await broker.async_start()
        yield Running("mosquitto", "127.0.0.1", port, port, GATEWAY_USER, broker.gateway_password)
    await broker.async_stop()


async def collect(client: aiomqtt.Client, seconds: float) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []

    async def read() -> None:
        async for message in client.messages:
            got.append((message.topic.value, bytes(message.payload)))  # type: ignore[arg-type]

    try:
        await asyncio.wait_for(read(), seconds)
    except TimeoutError:
        pass
    return got


@pytest.mark.parametrize("qos", [0, 1])
async def test_retained_messages_reach_only_matching_subscriptions(running: Running, qos: int) -> None:
    async with running.client("announcer") as pub:
        await pub.publish("homes/h1/door/availability", b"online", qos=qos, retain=True)
        await pub.publish("homeassistant/binary_sensor/d1/config", b"{}", qos=qos, retain=True)
    async with running.client("stranger") as sub:
        await sub.subscribe("nothing/here", qos=1)
        assert await collect(sub, 0.8) == []
    async with running.client("interested") as sub:
        await sub.subscribe("homes/+/door/availability", qos=1)
        assert await collect(sub, 0.8) == [("homes/h1/door/availability", b"online")]


@pytest.mark.parametrize("qos", [0, 1])
async def test_retained_publish_from_a_short_lived_client_is_kept(running: Running, qos: int) -> None:
    # how `mosquitto_pub -r` and most device scripts announce themselves: connect, publish, go
    async with running.client("one-shot") as pub:
        await pub.publish(f"homeassistant/sensor/q{qos}/config", b'{"name":"probe"}', qos=qos, retain=True)
    await asyncio.sleep(0.2)
    async with running.client("later") as sub:
        await sub.subscribe("homeassistant/#", qos=1)
        assert await collect(sub, 0.8) == [(f"homeassistant/sensor/q{qos}/config", b'{"name":"probe"}')]


async def test_an_empty_retained_payload_deletes_the_retained_message(running: Running) -> None:
    async with running.client("announcer") as pub:
        await pub.publish("homeassistant/sensor/gone/config", b"{}", qos=1, retain=True)
        await pub.publish("homeassistant/sensor/gone/config", b"", qos=1, retain=True)
    async with running.client("later") as sub:
        await sub.subscribe("homeassistant/#", qos=1)
        assert await collect(sub, 0.8) == []


_DEVICE = """
import sys, time, paho.mqtt.client as mqtt
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=sys.argv[3])
if sys.argv[4] != "-":
    c.username_pw_set(sys.argv[4], sys.argv[5])
c.will_set("devices/" + sys.argv[3] + "/availability", "offline", qos=1, retain=False)
c.connect(sys.argv[1], int(sys.argv[2]), keepalive=60)
c.loop_start()
time.sleep(0.5)
print("up", flush=True)
if sys.argv[6] == "clean":
    c.disconnect(); c.loop_stop()
else:
    time.sleep(60)
"""


async def test_the_will_is_sent_when_a_device_dies_and_not_when_it_leaves_cleanly(running: Running) -> None:
    async with running.client("watcher") as sub:
        await sub.subscribe("devices/#", qos=1)
        login = [running.username or "-", running.password or "-"]
        host_port = [running.host, str(running.port)]
        dead = subprocess.Popen(
            [sys.executable, "-c", _DEVICE, *host_port, "dying", *login, "kill"], stdout=subprocess.PIPE
        )
        assert dead.stdout is not None and dead.stdout.readline().strip() == b"up"
        dead.kill()  # the device loses power: no DISCONNECT
        dead.wait()
        dead.stdout.close()
        subprocess.run(
            [sys.executable, "-c", _DEVICE, *host_port, "leaving", *login, "clean"], check=True, timeout=20
        )
        assert await collect(sub, 1.5) == [("devices/dying/availability", b"offline")]


async def test_a_persistent_session_receives_what_was_published_while_it_was_away(running: Running) -> None:
    async with running.client("gateway-like", clean_session=False) as away:
        await away.subscribe("alarms/#", qos=1)
    async with running.client("pendant") as pub:
        for n in range(5):
            await pub.publish(f"alarms/sos/{n}", b"pressed", qos=1)
    async with running.client("gateway-like", clean_session=False) as back:
        got = await collect(back, 1.5)
    assert sorted(topic for topic, _ in got) == [f"alarms/sos/{n}" for n in range(5)]


async def test_overlapping_subscriptions_still_deliver_the_message(running: Running) -> None:
    async with running.client("overlapping") as sub:
        await sub.subscribe([("homes/#", 1), ("homes/+/door", 1), ("homes/h1/door", 0)])
        async with running.client("door") as pub:
            await pub.publish("homes/h1/door", b"open", qos=1)
        got = await collect(sub, 0.8)
    # MQTT allows one delivery or one per matching subscription; never none, never anything else
    assert 1 <= len(got) <= 3 and set(got) == {("homes/h1/door", b"open")}


async def test_shared_subscriptions_split_messages_over_mqtt5(running: Running) -> None:
    async with running.client("worker-a", v5=True) as a, running.client("worker-b", v5=True) as b:
        await a.subscribe("$share/workers/jobs/#", qos=1)
        await b.subscribe("$share/workers/jobs/#", qos=1)
        async with running.client("producer", v5=True) as pub:
            for n in range(20):
                await pub.publish(f"jobs/{n}", str(n).encode(), qos=1)
        got_a, got_b = await asyncio.gather(collect(a, 1.0), collect(b, 1.0))
    assert sorted(int(p) for _, p in got_a + got_b) == list(range(20))  # each exactly once
    assert got_a and got_b  # and shared between them
