"""Only a home's own devices speak for it (issue: the device plane).

A gateway with its managed Mosquitto, tried from outside: anonymous clients, a household's
device and bridge credentials, another household's, wrong passwords, a revoked device,
and a gateway killed while its broker holds what a pendant was promised.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from linli.gateway.discovery import InboxError
from linli.gateway.mqtt import guard
from linli.gateway.mqtt.broker import MosquittoBroker
from linli.gateway.mqtt.credentials import CredentialError
from linli.gateway.runtime import Gateway
from linli.sim.discovery_payloads import zigbee2mqtt_contact_sensor
from tests.brokers import free_port, settle
from tests.conftest import gateway_config
from tests.discovering import COMPONENTS, discovery_config, inbox_of, item_for, portal_client
from tests.homes import add_home, publish
from tests.infrastructure import require

# Per-device access control is Mosquitto's (skipped without it locally, a failure under CI);
# every test starts the gateway's own managed Mosquitto, with its plugin: slow.
pytestmark = [pytest.mark.usefixtures("mosquitto_installed"), pytest.mark.slow]


def plane_config(data_dir: Path, port: int, broker: str = "mosquitto") -> dict:
    return gateway_config(
        data_dir, port, mqtt={"broker": broker}, components=COMPONENTS, discovery=discovery_config("mqtt")
    )


@pytest.fixture(params=["guard", "files"])
async def plane(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch) -> AsyncIterator[Gateway]:  # type: ignore[no-untyped-def]
    """The managed Mosquitto with Linli's plugin (linli_guard), and with plain password and ACL
    files, as on a machine that cannot build the plugin: the same rules must hold in both."""
    if request.param == "files":

        def unavailable(folder: Path) -> Path:
            raise guard.GuardUnavailable("no compiler here (test)")

        monkeypatch.setattr(guard, "build", unavailable)
    gateway = Gateway(plane_config(tmp_path / "data", free_port()))
    await gateway.async_start()
    await add_home(gateway, "h1")
    await add_home(gateway, "h2")
    yield gateway
    await gateway.async_stop()


def login(issued) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"username": issued.principal.username, "password": issued.password}


async def reloaded(gateway: Gateway) -> None:
    """Let the broker take the access files just written (a reload is batched for 0.1 s)."""
    broker = gateway.broker
    assert isinstance(broker, MosquittoBroker)
    before = broker.reloads
    await settle(lambda: broker.reloads > before, timeout=5)
    await asyncio.sleep(0.2)


async def test_an_anonymous_client_reads_nothing_and_spoofs_nothing(plane: Gateway) -> None:
    port = plane.mqtt.settings.port
    hub = await plane.mqtt_credentials.async_issue_bridge("h1", "linli/v1/h1")
    await reloaded(plane)
    sos = plane.registry.device("h1-sos")
    async with aiomqtt.Client("127.0.0.1", port, identifier="eavesdropper") as spy:
        await spy.subscribe("#")
        await publish(port, [("linli/v1/h1/h1-door", {"contact": True})], **login(hub))
        # the spy's own spoofs: an SOS for every household, a smoke detector marked offline
        for household in ("h1", "h2"):
            await spy.publish(f"linli/v1/{household}/{household}-sos", b'{"sos": "pressed"}', qos=1)
        await spy.publish("linli/v1/h1/h1-door/availability", b"offline", qos=1, retain=True)
        heard: list[str] = []

        async def listen() -> None:
            async for message in spy.messages:
                heard.append(message.topic.value)

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(listen(), 1.5)
    await settle(lambda: "door" in plane.registry.device("h1-door").states)  # the real one got through
    assert heard == []
    assert sos is not None and "sos" not in sos.states
    assert plane.registry.device("h2-sos").states == {}


async def test_a_retained_qos0_announcement_from_mosquitto_pub_lands_in_the_inbox(plane: Gateway) -> None:
    tool = shutil.which("mosquitto_pub")
    topic, config = zigbee2mqtt_contact_sensor("0x00158d0000000abc", "hall-door")[0]
    import orjson

    body = orjson.dumps(config).decode()
    port = str(plane.mqtt.settings.port)
    if tool:
        args = [tool, "-h", "127.0.0.1", "-p", port, "-q", "0", "-r", "-t", topic, "-m", body]
        subprocess.run(args, check=True, timeout=10)
    else:
        async with aiomqtt.Client("127.0.0.1", int(port)) as anonymous:
            await anonymous.publish(topic, body, qos=0, retain=True)
    item = await item_for(inbox_of(plane), "ieee:00158d0000000abc")
    assert item.model == "MCCGQ11LM"


async def test_one_households_credential_cannot_publish_into_another(plane: Gateway) -> None:
    port = plane.mqtt.settings.port
    h1 = await plane.mqtt_credentials.async_issue_bridge("h1", "linli/v1/h1")
    h2 = await plane.mqtt_credentials.async_issue_bridge("h2", "linli/v1/h2")
    await reloaded(plane)
    await publish(port, [("linli/v1/h2/h2-sos", {"sos": "pressed"})], client_id="h1-hub", **login(h1))
    await publish(port, [("linli/v1/h2/h2-door", {"contact": False})], client_id="h2-hub", **login(h2))
    await settle(lambda: "door" in plane.registry.device("h2-door").states)
    assert "sos" not in plane.registry.device("h2-sos").states


async def test_a_device_credential_publishes_only_its_own_topics(plane: Gateway) -> None:
    port = plane.mqtt.settings.port
    door = plane.registry.device("h1-door")
    assert door is not None
    issued = await plane.mqtt_credentials.async_issue_device(door)
    await reloaded(plane)
    assert issued.provisioning("127.0.0.1", port)["publish"][0] == door.topic
    await publish(port, [("linli/v1/h1/h1-sos", {"sos": "pressed"})], client_id="door", **login(issued))
    await publish(port, [(door.topic, {"contact": True})], client_id="door", **login(issued))
    await settle(lambda: "door" in plane.registry.device("h1-door").states)
    assert "sos" not in plane.registry.device("h1-sos").states


async def test_revoking_a_credential_closes_its_connection_at_once(plane: Gateway) -> None:
    port = plane.mqtt.settings.port
    door = plane.registry.device("h1-door")
    assert door is not None
    issued = await plane.mqtt_credentials.async_issue_device(door)
    await reloaded(plane)
    async with aiomqtt.Client("127.0.0.1", port, identifier="door", **login(issued)) as client:
        await client.subscribe(f"{door.topic}/set")
        await plane.registry.async_remove_device("h1-door")  # removing the device revokes it
        with pytest.raises(aiomqtt.MqttError):
            await asyncio.wait_for(anext(aiter(client.messages)), 5)
    assert plane.mqtt_credentials.get(issued.principal.username) is None


async def test_removing_a_household_revokes_its_bridges_and_closes_them(plane: Gateway) -> None:
    port = plane.mqtt.settings.port
    await plane.registry.async_add_unit("u-h3", "b1", "103")
    await plane.registry.async_add_household("h3", "u-h3", "h3 home")
    hub = await plane.mqtt_credentials.async_issue_bridge("h3", "zigbee2mqtt-h3")
    await reloaded(plane)
    async with aiomqtt.Client("127.0.0.1", port, identifier="h3-hub", **login(hub)) as client:
        await client.subscribe("zigbee2mqtt-h3/#")
        await plane.registry.async_remove_household("h3")  # the empty home is taken out of the tree
        with pytest.raises(aiomqtt.MqttError):
            await asyncio.wait_for(anext(aiter(client.messages)), 5)
    assert plane.mqtt_credentials.listing("h3") == []
    with pytest.raises(aiomqtt.MqttError):  # and its password is worth nothing now
        async with aiomqtt.Client("127.0.0.1", port, identifier="h3-hub", **login(hub)):
            pass


async def test_wrong_passwords_are_refused_and_counted_per_client(plane: Gateway) -> None:
    port = plane.mqtt.settings.port
    hub = await plane.mqtt_credentials.async_issue_bridge("h1", "linli/v1/h1")
    await reloaded(plane)
    for _ in range(3):
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(
                "127.0.0.1", port, identifier="guesser", username=hub.principal.username, password="nope"
            ):
                pass
    broker = plane.broker
    assert isinstance(broker, MosquittoBroker)
    # Mosquitto names a client only once it has signed in: a refused one is known by its address
    await settle(lambda: broker.stats()["refused_logins"].get("127.0.0.1", 0) >= 3, timeout=5)
    async with portal_client(plane) as client:
        answer = await (await client.get("/api/v1/mqtt/broker")).json()
    assert answer["refused_logins"]["127.0.0.1"] >= 3 and answer["access_control"] == "per-device ACL"


async def test_a_bridge_is_bound_to_one_household(plane: Gateway) -> None:
    with pytest.raises(CredentialError, match="another household"):
        await plane.mqtt_credentials.async_issue_bridge("h2", "linli/v1/h1")
    with pytest.raises(CredentialError, match="no bridge may own"):
        await plane.mqtt_credentials.async_issue_bridge("h1", "homeassistant")
    await plane.mqtt_credentials.async_issue_bridge("h1", "zigbee2mqtt")
    with pytest.raises(CredentialError, match="belongs to another household"):
        await plane.mqtt_credentials.async_issue_bridge("h2", "zigbee2mqtt")
    # what the h1 bridge reports (its state topic under zigbee2mqtt/) joins h1 or nothing
    async with aiomqtt.Client("127.0.0.1", plane.mqtt.settings.port) as anonymous:
        for topic, config in zigbee2mqtt_contact_sensor("0x00158d0000000def", "balcony"):
            import orjson

            await anonymous.publish(topic, orjson.dumps(config), qos=1, retain=True)
    inbox = inbox_of(plane)
    item = await item_for(inbox, "ieee:00158d0000000def")
    with pytest.raises(InboxError, match="can only be adopted into 'h1'"):
        await inbox.async_approve(item.id, household_id="h2", by="installer")
    device = await inbox.async_approve(item.id, household_id="h1", by="installer")
    assert device.household_id == "h1"


async def test_adopting_a_device_shows_its_credential_once(plane: Gateway) -> None:
    async with aiomqtt.Client("127.0.0.1", plane.mqtt.settings.port) as anonymous:
        for topic, config in zigbee2mqtt_contact_sensor("0x00158d0000000fed", "study-door", base="z2m-h2"):
            import orjson

            await anonymous.publish(topic, orjson.dumps(config), qos=1, retain=True)
    item = await item_for(inbox_of(plane), "ieee:00158d0000000fed")
    async with portal_client(plane) as client:
        answer = await client.post(f"/api/v1/inbox/{item.id}/approve", json={"household_id": "h2"})
        assert answer.status == 200, await answer.text()
        body = await answer.json()
        listed = await (await client.get("/api/v1/households/h2/mqtt-clients")).json()
    mqtt = body["mqtt"]
    assert mqtt["publish"][0] == "z2m-h2/study-door" and mqtt["password"]
    assert [i["username"] for i in listed["items"]] == [mqtt["username"]]
    assert "password" not in str(listed)
    await reloaded(plane)
    await publish(plane.mqtt.settings.port, [("z2m-h2/study-door", {"contact": True})], **{
        "username": mqtt["username"], "password": mqtt["password"]})  # fmt: skip
    await settle(lambda: plane.registry.device(body["device"]["id"]).states.get("door") is not None)


async def test_the_database_and_its_folder_are_private(plane: Gateway) -> None:
    data = plane.data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("linli.db", "linli.db-wal", "linli.db-shm"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    broker = plane.broker
    assert isinstance(broker, MosquittoBroker)
    access = ["access"] if broker.guard is not None else ["passwd", "acl"]
    for name in ("mosquitto.conf", *access):
        assert stat.S_IMODE((data / "mosquitto" / name).stat().st_mode) == 0o600, name


_RUN = """
import asyncio, sys
from linli.gateway.config import load_config
from linli.gateway.runtime import Gateway
import orjson
config = load_config(None, environ={}, overrides=orjson.loads(sys.argv[1]))
async def main():
    gateway = Gateway(config)
    await gateway.async_start()
    print("ready", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


@pytest.mark.parametrize("mode", ["embedded", "mosquitto"])
async def test_a_press_acknowledged_while_the_gateway_is_dead_is_not_lost(tmp_path: Path, mode: str) -> None:
    import orjson

    port = free_port()
    config = plane_config(tmp_path / "data", port, broker=mode)
    first = Gateway(config)
    await first.async_start()
    await add_home(first, "h1")
    login_ = {}
    if mode == "mosquitto":
        issued = await first.mqtt_credentials.async_issue_bridge("h1", "linli/v1/h1")
        login_ = login(issued)
    await first.async_stop()
    # the same gateway again, as its own process, killed with SIGKILL: its broker stays
    child = subprocess.Popen([sys.executable, "-c", _RUN, orjson.dumps(config)], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    # the pendant is still answered by the broker, which keeps the press for the gateway
    await publish(port, [("linli/v1/h1/h1-sos", {"sos": "pressed"})], qos=1, **login_)
    second = Gateway(config)
    await second.async_start()  # no "port already in use": it finds its broker again
    try:
        assert second.broker is not None and second.broker.process.reattached  # type: ignore[attr-defined]
        await settle(lambda: "sos" in second.registry.device("h1-sos").states, timeout=10)
    finally:
        await second.async_stop()


async def test_devices_on_the_network_connect_over_tls_to_a_ca_the_gateway_made(tmp_path: Path) -> None:
    port, tls_port = free_port(), free_port()
    config = plane_config(tmp_path / "data", port)
    config["mqtt"]["tls"] = {"enabled": True, "host": "127.0.0.1", "port": tls_port, "names": ["127.0.0.1"]}
    gateway = Gateway(config)
    await gateway.async_start()
    try:
        await add_home(gateway, "h1")
        door = gateway.registry.device("h1-door")
        assert door is not None
        provisioning = await gateway.mqtt_credentials.async_provision(door)
        assert provisioning is not None and provisioning["tls"]["port"] == tls_port
        ca = tmp_path / "gateway-ca.pem"
        ca.write_text(provisioning["tls"]["ca_pem"])
        await reloaded(gateway)
        tls = aiomqtt.TLSParameters(ca_certs=str(ca))
        async with aiomqtt.Client(
            "127.0.0.1",
            tls_port,
            identifier="door-over-tls",
            username=provisioning["username"],
            password=provisioning["password"],
            tls_params=tls,
        ) as device:
            await device.publish(door.topic, b'{"contact": false}', qos=1)
        await settle(lambda: "door" in gateway.registry.device("h1-door").states)
        with pytest.raises(aiomqtt.MqttError):  # plaintext on the TLS port is no connection
            async with aiomqtt.Client("127.0.0.1", tls_port, identifier="plain", timeout=2):
                pass
        assert stat.S_IMODE((gateway.data_dir / "mosquitto" / "tls" / "ca.key").stat().st_mode) == 0o600
    finally:
        await gateway.async_stop()


def needs_guard(gateway: Gateway) -> MosquittoBroker:
    broker = gateway.broker
    assert isinstance(broker, MosquittoBroker)
    # compiled on first use from gateway/mqtt/guard: needs a C compiler and Mosquitto's headers
    require(
        "the linli_guard Mosquitto plugin",
        broker.guard,
        f"{broker.guard_problem} (apt-get install gcc mosquitto-dev libmosquitto-dev libssl-dev)",
    )
    return broker


@pytest.mark.parametrize("plane", ["guard"], indirect=True)  # counting is the plugin's; files have none
async def test_refused_publishes_are_counted_per_client_and_a_burst_is_an_anomaly(plane: Gateway) -> None:
    broker = needs_guard(plane)
    port = plane.mqtt.settings.port
    hub = await plane.mqtt_credentials.async_issue_bridge("h1", "linli/v1/h1")
    await reloaded(plane)
    # a household's own hub tries another home's pendant; an anonymous client tries every SOS
    spoofs = [("linli/v1/h2/h2-sos", {"sos": "pressed"})] * 6
    await publish(port, spoofs, client_id="h1-hub", **login(hub))
    await publish(port, [(f"linli/v1/h{n % 2 + 1}/h{n % 2 + 1}-sos", {"sos": "pressed"}) for n in range(8)],
                  client_id="spoofer")  # fmt: skip
    await settle(lambda: {"h1-hub", "spoofer"} <= {a["client"] for a in broker.anomalies}, timeout=8)
    async with portal_client(plane) as client:
        answer = await (await client.get("/api/v1/mqtt/broker")).json()
    assert answer["refused_publishes"]["h1-hub"] == {"user": hub.principal.username, "count": 6}
    assert answer["refused_publishes"]["spoofer"] == {"user": None, "count": 8}
    kinds = {(a["client"], a["kind"]) for a in answer["anomalies"]}
    assert {("h1-hub", "refused_publishes"), ("spoofer", "refused_publishes")} <= kinds
    assert "sos" not in plane.registry.device("h2-sos").states  # and none of it raised anything


@pytest.mark.parametrize("plane", ["guard"], indirect=True)  # the lockout is the plugin's
async def test_ten_wrong_passwords_lock_the_address_out_for_a_while(plane: Gateway) -> None:
    broker = needs_guard(plane)
    port = plane.mqtt.settings.port
    hub = await plane.mqtt_credentials.async_issue_bridge("h1", "linli/v1/h1")
    await reloaded(plane)
    for _ in range(10):
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client("127.0.0.1", port, username=hub.principal.username, password="guess"):
                pass
    # now even the right password is refused for that user from this address
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", port, identifier="h1-hub", **login(hub)):
            pass
    await settle(lambda: broker.guard_stats.refused_logins.get("127.0.0.1", 0) >= 11, timeout=5)
    assert any(a["kind"] == "refused_logins" and a["client"] == "127.0.0.1" for a in broker.anomalies)
    # while everyone else behind the same address (here: the gateway itself, a neighbour's hub) is not
    h2 = await plane.mqtt_credentials.async_issue_bridge("h2", "linli/v1/h2")
    await reloaded(plane)
    connects = plane.mqtt.connects
    async with aiomqtt.Client("127.0.0.1", port, identifier="h2-hub", **login(h2)):
        pass
    assert plane.mqtt.connected and plane.mqtt.connects == connects  # never dropped by the reloads


async def test_an_installer_sees_anomalies_and_issues_a_bridge_credential_in_manage(tmp_path: Path) -> None:
    import orjson

    from tests.portal_accounts import PORTAL_SERVICES, add_account
    from tests.test_portal_browser import browser_page, sign_in

    portal = free_port()
    config = plane_config(tmp_path / "data", free_port())
    config["components"] = [*dict.fromkeys([*COMPONENTS, *PORTAL_SERVICES]), "linli.portal.app:Portal"]
    config["portal"] = {**config["portal"], "enabled": True, "port": portal}
    gateway = Gateway(config)
    await gateway.async_start()
    try:
        broker = needs_guard(gateway)
        await add_home(gateway, "h1")
        port = gateway.mqtt.settings.port
        password = await add_account(gateway, "li.installer", "installer")
        # someone on the network tries to press every pendant
        await publish(port, [("linli/v1/h1/h1-sos", {"sos": "pressed"})] * 6, client_id="spoofer")
        await settle(lambda: any(a["client"] == "spoofer" for a in broker.anomalies), timeout=8)
        async with browser_page(tmp_path, {"width": 1366, "height": 900}) as page:
            await sign_in(page, f"http://127.0.0.1:{portal}", "li.installer", password, "/manage")
            await page.click("#sections button[data-section=access]")
            anomaly = page.locator("tr[data-anomaly=refused_publishes]")
            await anomaly.wait_for()
            assert "spoofer" in await anomaly.inner_text() and "越权发布" in await anomaly.inner_text()
            # the installer sets up the home's Zigbee2MQTT bridge
            await page.select_option("#access-household", "h1")
            await page.fill("#access-base", "zigbee2mqtt-h1")
            await page.click("#access-clients ~ form button[type=submit]")
            provisioning = orjson.loads(await page.locator("pre.provisioning").inner_text())
            await page.locator('tr[data-mqtt-client^="bridge-h1"]').wait_for()
        assert provisioning["base_topic"] == "zigbee2mqtt-h1" and provisioning["password"]
        await settle(lambda: broker.reloads >= 1, timeout=5)  # the credential's reload (already done)
        await asyncio.sleep(0.2)
        async with aiomqtt.Client(
            "127.0.0.1",
            port,
            identifier="z2m",
            username=provisioning["username"],
            password=provisioning["password"],
        ) as bridge:
            await bridge.publish("zigbee2mqtt-h1/bridge/state", b'{"state":"online"}', qos=1)
        actions = await gateway.store.async_read(
            lambda c: [row[0] for row in c.execute("SELECT action FROM audit")]
        )
        assert "mqtt_client.issue" in actions
    finally:
        await gateway.async_stop()
