"""Discovery: how fast announced devices are in the inbox, against bare clients in the same run.

    python bench/discovery.py [--quick] [--devices 1000] [--runs R]

Four measurements, each against a baseline measured in the same run:

1. retained: 1,000 devices' MQTT discovery configs (the shapes Zigbee2MQTT,
   Tasmota, ESPHome and native Linli devices publish: ~2.6 configs per device)
   are retained on Mosquitto before the gateway starts; clock from the
   gateway's MQTT connection to all 1,000 devices, complete, in the inbox
   (target < 1 s). Baseline: a bare aiomqtt client that subscribes to the same
   filters and `orjson.loads` every retained config.
2. live: the same announcements published by a separate process while the
   gateway runs; clock from the publisher's last PUBACK to all in the inbox
   (target < 1 s). Baseline: a bare aiomqtt subscriber's lag behind the same publisher.
3. zeroconf: a `_linli._tcp` service registered on loopback by python-zeroconf;
   clock from the registration call to the item in the inbox (target < 2 s).
   Baseline: a bare python-zeroconf browser in the same process seeing the
   service added (probing takes most of the time, for both).
4. ssdp: N UPnP devices on loopback that only answer M-SEARCH; clock from the
   gateway's M-SEARCH to all N in the inbox, descriptions fetched (target:
   within the first round, MX = 1 s + the description fetch). Baseline: a bare
   async-upnp-client search listener receiving the N answers.

The headline is the retained ratio: bare client's time / gateway's time.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
from common import BenchBroker, median

from linli.gateway.config import load_config
from linli.gateway.runtime import Gateway
from linli.sim import discovery_payloads as payloads
from linli.sim.upnp_box import SimUpnpDevice

DISCOVERY = [
    "linli.gateway.discovery:Discovery",
    "linli.adapters.discovery.sources:MqttDiscoverySource",
    "linli.adapters.discovery.sources:ZeroconfSource",
    "linli.adapters.discovery.sources:SsdpSource",
]
FILTERS = ["homeassistant/#", "linli/v1/discovery/+/config"]


def announcements(devices: int, salt: str) -> tuple[list[tuple[str, bytes]], list[str]]:
    """Configs for `devices` devices in a mix of real shapes; also each device's identity key."""
    messages: list[tuple[str, Any]] = []
    keys: list[str] = []
    for i in range(devices):
        tag = f"{salt}{i:06x}"
        kind = i % 5
        if kind == 0:
            ieee = f"0x00158d{int(tag, 16) & 0xFFFFFFFFFF:010x}"
            messages += payloads.zigbee2mqtt_contact_sensor(ieee, f"door_{tag}")
            keys.append(f"ieee:{ieee[2:]}")
        elif kind == 1:
            ieee = f"0x00124b{int(tag, 16) & 0xFFFFFFFFFF:010x}"
            messages += payloads.zigbee2mqtt_motion_sensor(ieee, f"motion_{tag}")
            keys.append(f"ieee:{ieee[2:]}")
        elif kind == 2:
            mac = f"3c71bf{int(tag, 16) & 0xFFFFFF:06x}"
            messages += payloads.tasmota_plug(mac, f"tasmota_{tag}", f"Plug {tag}")
            keys.append(f"mac:{mac}")
        elif kind == 3:
            mac = f"a4cf12{int(tag, 16) & 0xFFFFFF:06x}"
            messages += payloads.esphome_climate(f"climate-{tag}", mac)
            keys.append(f"mac:{mac}")
        else:
            messages += payloads.linli_native(f"radar-{tag}", "FR-60", firmware="2.0.3")
            keys.append(f"linli:radar-{tag}")
    return [(topic, orjson.dumps(payload)) for topic, payload in messages], keys


def _publish_worker(port: int, messages: list[tuple[str, bytes]], ready: Any, go: Any, done: Any) -> None:
    """Publish every config retained, QoS 1; report the system-wide monotonic time of the last PUBACK."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-announcer-{uuid.uuid4().hex[:6]}"
    )
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    ready.set()
    go.wait()
    infos = [client.publish(topic, payload, qos=1, retain=True) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(60)
    done.put(time.monotonic())
    client.loop_stop()
    client.disconnect()


class RetainedPublisher:
    """A separate process (the bridges), so the gateway's event loop measures only itself."""

    def __init__(self, port: int, messages: list[tuple[str, bytes]]) -> None:
        ctx = mp.get_context("spawn")
        self.ready, self.go, self.done = ctx.Event(), ctx.Event(), ctx.Queue()
        self.process = ctx.Process(
            target=_publish_worker, args=(port, messages, self.ready, self.go, self.done), daemon=True
        )
        self.process.start()
        if not self.ready.wait(30):
            raise RuntimeError("publisher process did not connect")

    async def run(self) -> float:
        """Publish; returns the (system-wide) monotonic time of the last PUBACK."""
        self.go.set()
        last: float = await asyncio.to_thread(self.done.get, True, 120)
        return last

    async def join(self) -> None:
        await asyncio.to_thread(self.process.join, 30)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def gateway_config(folder: Path, port: int, sources: list[str], ssdp_port: int) -> dict[str, Any]:
    return load_config(
        None,
        environ={},
        overrides={
            "data_dir": str(folder),
            "gateway_id": "bench-discovery",
            "mqtt": {
                "broker": "external",
                "host": "127.0.0.1",
                "port": port,
                "client_id": "linli-bench-disc",
            },
            "portal": {"enabled": False},
            "components": [*DISCOVERY],
            "discovery": {
                "sources": sources,
                "interfaces": ["127.0.0.1"],
                "max_items": 100_000,
                "ssdp": {"port": ssdp_port, "mx": 1, "search_interval_s": 600, "description_timeout_s": 5},
            },
        },
    )


async def wait_for(predicate, timeout: float) -> float:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish in time")
        await asyncio.sleep(0.001)
    return time.monotonic()


def complete(gateway: Gateway, keys: list[str], configs: int) -> bool:
    discovery = gateway.components["discovery"]
    listener = discovery.sources.get("mqtt")
    if discovery.inbox is None or listener is None or listener.received < configs:
        return False
    return all(discovery.inbox.find(k) is not None for k in keys)


async def clear_retained(port: int, messages: list[tuple[str, bytes]]) -> None:
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-clear") as client:
        for topic, _ in messages:
            await client.publish(topic, b"", qos=1, retain=True)


async def publish_inline(port: int, messages: list[tuple[str, bytes]]) -> None:
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-seed") as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1, retain=True)


# -- 1. retained before start -----------------------------------------------------------


async def bare_retained(port: int, total: int) -> float:
    state = {"count": 0}
    loads = orjson.loads

    class Counting(asyncio.Queue):  # type: ignore[type-arg]
        def put_nowait(self, item: aiomqtt.Message) -> None:
            if item.payload:
                loads(item.payload)
            state["count"] += 1

    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-bare-disc", queue_type=Counting) as client:
        connected = time.monotonic()
        await client.subscribe([(f, 1) for f in FILTERS])
        end = await wait_for(lambda: state["count"] >= total, 60)
    return end - connected


async def linli_retained(port: int, keys: list[str], configs: int, ssdp_port: int) -> tuple[float, float]:
    folder = Path(tempfile.mkdtemp(prefix="linli-bench-disc-"))
    gateway = Gateway(gateway_config(folder, port, ["mqtt"], ssdp_port))
    # Clock from the moment the gateway starts connecting (TCP + CONNACK included: slightly
    # against us). Its MqttConnectionChanged event comes only after it has subscribed, when
    # the retained configs are already arriving, so it would flatter the figure.
    connect = gateway.mqtt.async_connect
    connecting: dict[str, float] = {}

    async def timed_connect() -> None:
        connecting["t"] = time.monotonic()
        await connect()

    gateway.mqtt.async_connect = timed_connect  # type: ignore[method-assign]
    try:
        start = asyncio.create_task(gateway.async_start())
        await wait_for(lambda: "t" in connecting, 30)
        end = await wait_for(
            lambda: "discovery" in gateway.components and complete(gateway, keys, configs), 60
        )
        await start
        inbox = gateway.components["discovery"].inbox
        assert inbox is not None
        await inbox.async_flush()
        durable = time.monotonic()
        assert len(inbox.items) == len(keys), f"{len(inbox.items)} items for {len(keys)} devices"
    finally:
        await gateway.async_stop()
        shutil.rmtree(folder, ignore_errors=True)
    return end - connecting["t"], durable - connecting["t"]


# -- 5. approving them -----------------------------------------------------------------------


async def approval_round(port: int, keys: list[str], configs: int, ssdp_port: int, *, bulk: bool) -> float:
    """Every retained device in the inbox approved into one household: one bulk call, or one
    call per item (the baseline: how a manager approved 1,000 devices before). Clock around
    the approvals only; each is durable (devices and decisions committed) when it returns."""
    folder = Path(tempfile.mkdtemp(prefix="linli-bench-approve-"))
    gateway = Gateway(gateway_config(folder, port, ["mqtt"], ssdp_port))
    try:
        await gateway.async_start()
        await wait_for(lambda: complete(gateway, keys, configs), 60)
        inbox = gateway.components["discovery"].inbox
        assert inbox is not None
        registry = gateway.registry
        await registry.async_add_building("b1", "1号楼")
        await registry.async_add_unit("u1", "b1", "101")
        await registry.async_add_household("h1", "u1", "李家")
        ids = list(inbox.items)  # all of them: what cannot be approved is counted as refused
        started = time.monotonic()
        if bulk:
            devices, refused = await inbox.async_approve_many(ids, household_id="h1", by="bench", room="客厅")
        else:
            devices, refused = [], []
            for item_id in ids:
                try:
                    devices.append(
                        await inbox.async_approve(item_id, household_id="h1", by="bench", room="客厅")
                    )
                except Exception as exc:  # counted below, as the bulk call counts its refusals
                    refused.append((item_id, exc))
        elapsed = time.monotonic() - started
        assert len(devices) == len(registry.household_devices("h1")), (
            "approved devices are not all registered"
        )
        print(
            f"  {'bulk' if bulk else 'one by one'}: {len(devices)} approved, {len(refused)} refused "
            f"({', '.join(sorted({getattr(e, 'code', type(e).__name__) for _, e in refused})) or 'none'}) "
            f"in {elapsed:.3f} s",
            flush=True,
        )
    finally:
        await gateway.async_stop()
        shutil.rmtree(folder, ignore_errors=True)
    return elapsed


# -- 2. announced while running -------------------------------------------------------------


async def live_bare(port: int, devices: int) -> float:
    """The bare subscriber's lag behind the same publisher (its own pass: no gateway on its loop)."""
    messages, _ = announcements(devices, "b")
    state = {"count": 0, "last": 0.0}

    class Counting(asyncio.Queue):  # type: ignore[type-arg]
        def put_nowait(self, item: aiomqtt.Message) -> None:
            orjson.loads(item.payload)
            state["count"] += 1
            state["last"] = time.monotonic()

    try:
        async with aiomqtt.Client(
            "127.0.0.1", port, identifier="bench-bare-live", queue_type=Counting
        ) as bare:
            await bare.subscribe([(f, 1) for f in FILTERS])
            publisher = RetainedPublisher(port, messages)
            last_puback = await publisher.run()
            await wait_for(lambda: state["count"] >= len(messages), 60)
            await publisher.join()
    finally:
        await clear_retained(port, messages)
    return max(0.0, state["last"] - last_puback)


async def live_linli(port: int, devices: int, ssdp_port: int) -> float:
    messages, keys = announcements(devices, "b")
    folder = Path(tempfile.mkdtemp(prefix="linli-bench-disc-"))
    gateway = Gateway(gateway_config(folder, port, ["mqtt"], ssdp_port))
    try:
        await gateway.async_start()
        publisher = RetainedPublisher(port, messages)
        last_puback = await publisher.run()
        end = await wait_for(lambda: complete(gateway, keys, len(messages)), 60)
        await publisher.join()
    finally:
        await gateway.async_stop()
        shutil.rmtree(folder, ignore_errors=True)
        await clear_retained(port, messages)
    return max(0.0, end - last_puback)


# -- 3. zeroconf -------------------------------------------------------------------------------


async def zeroconf_round(port: int, ssdp_port: int, registrations: int) -> tuple[list[float], list[float]]:
    import socket as sock

    from zeroconf import IPVersion, ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    folder = Path(tempfile.mkdtemp(prefix="linli-bench-disc-"))
    gateway = Gateway(gateway_config(folder, port, ["zeroconf"], ssdp_port))
    await gateway.async_start()
    inbox = gateway.components["discovery"].inbox
    assert inbox is not None
    device = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    bare = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    seen: dict[str, float] = {}

    def on_change(zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Added:
            seen.setdefault(name, time.monotonic())

    browser = AsyncServiceBrowser(bare.zeroconf, ["_linli._tcp.local."], handlers=[on_change])
    linli_s, bare_s = [], []
    try:
        for _ in range(registrations):
            device_id = f"bench-{uuid.uuid4().hex[:8]}"
            name = f"Pendant {device_id}._linli._tcp.local."
            info = AsyncServiceInfo(
                "_linli._tcp.local.",
                name,
                addresses=[sock.inet_aton("127.0.0.1")],
                port=8883,
                properties={"id": device_id, "model": "SOS-P1", "fw": "1.4.0"},
                server=f"{device_id}.local.",
            )
            started = time.monotonic()
            await device.async_register_service(info)
            end = await wait_for(lambda d=device_id: inbox.find(f"linli:{d}") is not None, 10)
            await wait_for(lambda n=name: n in seen, 10)
            linli_s.append(end - started)
            bare_s.append(seen[name] - started)
            await device.async_unregister_service(info)
    finally:
        await browser.async_cancel()
        await bare.async_close()
        await device.async_close()
        await gateway.async_stop()
        shutil.rmtree(folder, ignore_errors=True)
    return linli_s, bare_s


# -- 4. ssdp ----------------------------------------------------------------------------------


async def ssdp_round(port: int, boxes: int) -> tuple[float, float]:
    from async_upnp_client.search import SsdpSearchListener

    ssdp_port = free_udp_port()
    folder = Path(tempfile.mkdtemp(prefix="linli-bench-disc-"))
    devices = [
        SimUpnpDevice(
            udn=f"uuid:{uuid.uuid4()}",
            device_type="urn:schemas-upnp-org:device:MediaRenderer:1",
            friendly_name=f"TV {i}",
            manufacturer="Bench",
            model_name="TV",
            dial=True,
            ssdp_port=ssdp_port,
            announce=False,  # they answer M-SEARCH only: the search round is what is measured
        )
        for i in range(boxes)
    ]
    keys = ["uuid:" + d.udn.removeprefix("uuid:").replace("-", "") for d in devices]
    gateway = Gateway(gateway_config(folder, port, ["ssdp"], ssdp_port))
    answered: dict[str, float] = {}

    def on_response(headers: Any) -> None:
        answered.setdefault(headers.get_lower("usn", "").partition("::")[0], time.monotonic())

    try:
        await gateway.async_start()
        discovery = gateway.components["discovery"]
        inbox = discovery.inbox
        assert inbox is not None
        await asyncio.sleep(2.5)  # the gateway's own start-up searches (0 s and MX + 1 s) are over
        for device in devices:
            await device.async_start()
        # baseline: a bare search listener, same group and port, same devices
        listener = SsdpSearchListener(
            callback=on_response, source=("127.0.0.1", 0), target=("239.255.255.250", ssdp_port), timeout=1
        )
        await listener.async_start()
        started = time.monotonic()
        listener.async_search()
        await wait_for(lambda: len(answered) >= boxes, 10)
        bare = max(answered.values()) - started
        listener.async_stop()
        # the gateway's first round that can find them
        started = time.monotonic()
        discovery.async_scan()
        end = await wait_for(lambda: all(inbox.find(k) is not None for k in keys), 10)
    finally:
        await gateway.async_stop()
        for device in devices:
            await device.async_stop()
        shutil.rmtree(folder, ignore_errors=True)
    return end - started, bare


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--runs", type=int)
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 7)
    registrations = 3 if args.quick else 10
    boxes = 20 if args.quick else 50
    broker = BenchBroker()
    messages, keys = announcements(args.devices, "a")
    print(
        f"broker: {broker.version} on 127.0.0.1:{broker.port}; {args.devices} devices = "
        f"{len(messages)} retained configs ({sum(len(p) for _, p in messages) / 1024:.0f} KiB); {runs} runs",
        flush=True,
    )
    retained_linli, retained_durable, retained_bare, live_linli_s, live_bare_s = [], [], [], [], []
    approve_single: list[float] = []
    approve_bulk: list[float] = []
    try:
        await publish_inline(broker.port, messages)
        for run in range(runs):
            bare = await bare_retained(broker.port, len(messages))
            linli, durable = await linli_retained(broker.port, keys, len(messages), free_udp_port())
            retained_bare.append(bare)
            retained_linli.append(linli)
            retained_durable.append(durable)
            print(
                f"retained run {run + 1}: bare {bare:.3f} s   linli in inbox {linli:.3f} s "
                f"(on disk {durable:.3f} s)   ratio {bare / linli:.2f}",
                flush=True,
            )
        for run in range(runs):
            one_by_one = await approval_round(broker.port, keys, len(messages), free_udp_port(), bulk=False)
            bulk = await approval_round(broker.port, keys, len(messages), free_udp_port(), bulk=True)
            approve_single.append(one_by_one)
            approve_bulk.append(bulk)
            print(f"approval run {run + 1}: one by one {one_by_one:.3f} s   bulk {bulk:.3f} s", flush=True)
        await clear_retained(broker.port, messages)
        for run in range(runs):
            bare = await live_bare(broker.port, args.devices)
            linli = await live_linli(broker.port, args.devices, free_udp_port())
            live_linli_s.append(linli)
            live_bare_s.append(bare)
            print(
                f"live run {run + 1}: after the last PUBACK: bare {bare:.3f} s   linli {linli:.3f} s",
                flush=True,
            )
        zc_linli, zc_bare = await zeroconf_round(broker.port, free_udp_port(), registrations)
        print(
            "zeroconf: registration → inbox "
            + " ".join(f"{t:.2f}" for t in zc_linli)
            + " s; bare browser 'added' "
            + " ".join(f"{t:.2f}" for t in zc_bare)
            + " s",
            flush=True,
        )
        ssdp_linli, ssdp_bare = await ssdp_round(broker.port, boxes)
        print(
            f"ssdp: {boxes} devices, M-SEARCH (MX 1 s) → all in the inbox {ssdp_linli:.2f} s; "
            f"bare listener, all answers {ssdp_bare:.2f} s",
            flush=True,
        )
    finally:
        broker.stop()
    r_linli, r_bare = median(retained_linli), median(retained_bare)
    print(
        f"median retained → inbox: {r_linli:.3f} s (target < 1 s); on disk {median(retained_durable):.3f} s"
    )
    print(f"median bare client, same retained configs: {r_bare:.3f} s")
    print(
        f"median live, last PUBACK → inbox: {median(live_linli_s):.3f} s (target < 1 s); "
        f"bare {median(live_bare_s):.3f} s"
    )
    print(
        f"median zeroconf registration → inbox: {statistics.median(zc_linli):.2f} s (target < 2 s); "
        f"bare browser {statistics.median(zc_bare):.2f} s"
    )
    print(
        f"ssdp M-SEARCH → {boxes} devices in the inbox: {ssdp_linli:.2f} s (MX 1 s); "
        f"bare answers {ssdp_bare:.2f} s"
    )
    print(
        f"median approval of {args.devices} devices: one bulk call {median(approve_bulk):.3f} s "
        f"(target ≤ 1 s); one call each {median(approve_single):.3f} s "
        f"(ratio {median(approve_single) / median(approve_bulk):.1f})"
    )
    ok = (
        median(approve_bulk) <= 1
        and r_linli < 1
        and median(live_linli_s) < 1
        and statistics.median(zc_linli) < 2
        and ssdp_linli < 1 + 1
    )
    print(f"discovery_retained_ratio={r_bare / r_linli:.2f}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    asyncio.run(main())
