"""The gateway's MQTT link against a real Mosquitto that the tests kill and restart."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from linli.gateway.runtime import GatewayStartError
from tests.brokers import MosquittoProcess, settle
from tests.conftest import gateway_config
from tests.homes import add_home, publish
from tests.infrastructure import require_mosquitto


async def _retained(port: int, topic: str) -> bytes:
    async with aiomqtt.Client("127.0.0.1", port, identifier="retained-reader") as client:
        await client.subscribe(topic, qos=1)
        message = await asyncio.wait_for(anext(client.messages), 5)
        return bytes(message.payload)


@pytest.mark.slow
async def test_birth_message_is_retained_online_and_clean_stop_says_offline(make_gateway, broker) -> None:
    gateway = await make_gateway()
    assert await _retained(broker.port, "linli/gw-test/status") == b"online"
    await gateway.async_stop()
    assert await _retained(broker.port, "linli/gw-test/status") == b"offline"


@pytest.mark.slow
async def test_last_will_says_offline_when_the_gateway_vanishes(tmp_path, mosquitto) -> None:
    # given a gateway process connected to the broker
    import subprocess
    import sys

    config = tmp_path / "linli.toml"
    config.write_text(
        f'gateway_id = "gw-will"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[mqtt]\nbroker = "external"\nport = {mosquitto.port}\nkeepalive_s = 5\n'
        f"[portal]\nenabled = false\n"
    )
    process = subprocess.Popen([sys.executable, "-m", "linli", "run", "--config", str(config)])
    try:
        await settle(lambda: _status_sync(mosquitto.port) == b"online", timeout=15, interval=0.2)
        # when it is killed without a goodbye
        process.kill()
        process.wait()
        # then the broker publishes its will
        await settle(lambda: _status_sync(mosquitto.port) == b"offline", timeout=20, interval=0.5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _status_sync(port: int) -> bytes | None:
    import paho.mqtt.subscribe as subscribe

    try:
        message = subscribe.simple(
            "linli/gw-will/status",
            hostname="127.0.0.1",
            port=port,
            retained=True,
            msg_count=1,
            keepalive=5,
        )
    except OSError:
        return None
    return bytes(message.payload)


@pytest.mark.slow
async def test_no_qos1_message_is_lost_after_the_broker_restarts(make_gateway, tmp_path, mosquitto) -> None:
    # given a gateway on a Mosquitto that the test controls
    from linli.gateway.runtime import Gateway

    gateway = Gateway(gateway_config(tmp_path / "data", mosquitto.port))
    await gateway.async_start()
    try:
        topics = await add_home(gateway)
        topic = topics["h1-climate"]
        await publish(mosquitto.port, [(topic, {"temperature": 20.0})])
        await settle(lambda: gateway.registry.device("h1-climate").states.get("temperature"))
        # when the broker dies and comes back on the same port
        mosquitto.kill()
        await settle(lambda: not gateway.mqtt.connected, timeout=10)
        mosquitto.start()
        await gateway.mqtt.async_wait_connected(15)
        # then every QoS 1 message published after the reconnect arrives
        await publish(
            mosquitto.port, [(topic, {"temperature": 20 + i / 1000, "humidity": 40}) for i in range(1, 1001)]
        )
        adapter = gateway.components["mqtt_device"]
        await settle(lambda: adapter.accepted == 1001, timeout=15)
        assert gateway.registry.device("h1-climate").states["temperature"].value == 21.0
        assert gateway.mqtt.connects == 2
    finally:
        await gateway.async_stop()


async def test_messages_queued_while_the_gateway_was_down_are_delivered(tmp_path, mosquitto) -> None:
    # given a gateway with a persistent session, stopped
    from linli.gateway.runtime import Gateway

    gateway = Gateway(gateway_config(tmp_path / "data", mosquitto.port))
    await gateway.async_start()
    topics = await add_home(gateway)
    await gateway.async_stop()
    # when a device reports while the gateway is down
    await publish(mosquitto.port, [(topics["h1-door"], {"contact": False})])
    # then the report is processed once the gateway is back
    again = Gateway(gateway_config(tmp_path / "data", mosquitto.port))
    await again.async_start()
    try:
        await settle(lambda: "door" in again.registry.device("h1-door").states)
        assert again.registry.device("h1-door").states["door"].value is True
    finally:
        await again.async_stop()


async def test_refused_credentials_stop_the_start_with_a_clear_message(tmp_path) -> None:
    require_mosquitto()  # for password authentication
    import subprocess

    passwords = tmp_path / "passwd"
    passwords.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), "linli", "right-secret"], check=True)
    secured = MosquittoProcess(tmp_path, extra=f"password_file {passwords}\nallow_anonymous false\n")
    secured.start()
    try:
        from linli.gateway.runtime import Gateway

        config = gateway_config(
            tmp_path / "data", secured.port, mqtt={"username": "linli", "password": "wrong-secret"}
        )
        gateway = Gateway(config)
        with pytest.raises(GatewayStartError) as raised:
            await gateway.async_start()
        message = str(raised.value)
        assert "refused the credentials" in message and "linli" in message
        assert "wrong-secret" not in message
    finally:
        secured.stop()


@pytest.mark.slow
async def test_unreachable_broker_does_not_stop_the_gateway(tmp_path) -> None:
    from linli.gateway.runtime import Gateway
    from tests.brokers import free_port

    gateway = Gateway(gateway_config(tmp_path / "data", free_port(), mqtt={"connect_timeout_s": 0.5}))
    await gateway.async_start()
    try:
        assert gateway.ready.is_set() and not gateway.mqtt.connected
    finally:
        await gateway.async_stop()
