"""Ingest throughput: the full gateway pipeline against a bare aiomqtt receiver, same broker, same run.

    python bench/ingest.py [--quick] [--devices 5000] [--messages N] [--runs R]

A separate process publishes telemetry for 5,000 devices (the demo community's
device mix, in each family's real payload shape) as fast as it can, QoS 1, to
Mosquitto on loopback. Two receivers take turns, each fed the same messages:

* bare: an aiomqtt client that parses each payload with orjson and counts it,
  through the fastest public path aiomqtt offers (`queue_type`, no task per message);
* linli: the real gateway — parse, map and validate against the firmware profile,
  update the registry state, fire the bus event, and persist to SQLite. Its clock
  stops only when every row is committed.

Rates are messages per second from the first message received to the last one
done; medians over the runs; the headline is linli/bare.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt
import orjson
from common import BenchBroker, Publisher, median

from linli.gateway.config import load_config
from linli.gateway.runtime import Gateway
from linli.sim.layout import layout
from linli.sim.telemetry import DeviceSim, payload_for


def make_messages(devices: list[dict], count: int) -> tuple[list[tuple[str, bytes]], int]:
    """`count` payloads round-robin over the devices; also the number of values they carry."""
    sims = {d["id"]: DeviceSim(d["profile_id"], random.Random(d["id"])) for d in devices}
    messages, values = [], 0
    from linli.gateway.profiles import load_profiles

    profiles = load_profiles()
    for i in range(count):
        device = devices[i % len(devices)]
        payload = payload_for(sims[device["id"]], 9.0)
        values += len(profiles.get(device["profile_id"]).map_payload(payload))
        messages.append((device["topic"], orjson.dumps(payload)))
    return messages, values


async def wait_for(predicate, timeout: float) -> float:  # type: ignore[no-untyped-def]
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("benchmark run did not finish in time")
        await asyncio.sleep(0.001)
    return time.perf_counter()


def gateway_config(folder: Path, port: int) -> dict:
    return load_config(
        None,
        environ={},
        overrides={
            "data_dir": str(folder),
            "gateway_id": "bench",
            "mqtt": {"broker": "external", "host": "127.0.0.1", "port": port, "client_id": "linli-bench"},
            "portal": {"enabled": False},
            "components": ["linli.adapters.mqtt_device:MqttDeviceAdapter"],
        },
    )


def counting_queue(state: dict) -> type:
    loads = orjson.loads

    class CountingQueue(asyncio.Queue):  # type: ignore[type-arg]
        """The bare receiver: parse and count, straight from aiomqtt's receive callback."""

        def put_nowait(self, item: aiomqtt.Message) -> None:
            loads(item.payload)
            if state["count"] == 0:
                state["first"] = time.perf_counter()
            state["count"] += 1

    return CountingQueue


async def prepare(port: int, folder: Path, devices_layout: dict) -> None:
    """Create both receivers' persistent sessions (subscribed, then offline)."""
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-bare", clean_session=False) as client:
        await client.subscribe([("linli/v1/#", 1), ("zigbee2mqtt/#", 1)])
    gateway = Gateway(gateway_config(folder, port))
    await gateway.async_start()
    await gateway.registry.async_import(**devices_layout)
    await asyncio.sleep(0.5)  # the foreign-topic subscriptions land
    await gateway.async_stop()


async def run_bare(port: int, total: int) -> float:
    state = {"count": 0, "first": 0.0}
    async with aiomqtt.Client(
        "127.0.0.1", port, identifier="bench-bare", clean_session=False, queue_type=counting_queue(state)
    ):
        end = await wait_for(lambda: state["count"] >= total, 300)
    return (total - 1) / (end - state["first"])


async def run_linli(port: int, folder: Path, total: int, values: int) -> tuple[float, dict]:
    gateway = Gateway(gateway_config(folder, port))
    first = {"t": 0.0}
    started = asyncio.get_running_loop().create_future()

    async def start() -> None:
        await gateway.async_start()
        started.set_result(None)

    task = asyncio.create_task(start())
    await wait_for(
        lambda: (
            "mqtt_device" in gateway.components and hasattr(gateway.components["mqtt_device"], "accepted")
        ),
        30,
    )
    adapter = gateway.components["mqtt_device"]
    store = gateway.store

    def processed() -> bool:
        now = time.perf_counter()
        if not first["t"] and adapter.accepted:
            first["t"] = now
        if not first.get("ingested") and adapter.accepted + adapter.rejected >= total:
            first["ingested"] = now
        return adapter.accepted + adapter.rejected >= total and store.rows_written >= values

    end = await wait_for(processed, 300)
    await task
    stats = {
        "ingest_only_msg_s": round((total - 1) / (first["ingested"] - first["t"])),
        "accepted": adapter.accepted,
        "rejected": adapter.rejected,
        "rows_written": store.rows_written,
    }
    await gateway.async_stop()
    rows = sqlite3.connect(folder / "linli.db").execute("SELECT count(*) FROM telemetry").fetchone()[0]
    stats.update(rows_on_disk=rows, expected_rows=values)
    return (total - 1) / (end - first["t"]), stats


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--messages", type=int)
    parser.add_argument("--runs", type=int)
    args = parser.parse_args()
    count = args.messages or (40_000 if args.quick else 150_000)
    runs = args.runs or (3 if args.quick else 5)
    households = -(-args.devices // 15)
    data = layout(households)
    data["devices"] = data["devices"][: args.devices]
    messages, values = make_messages(data["devices"], count)
    broker = BenchBroker()
    print(
        f"broker: {broker.version} on 127.0.0.1:{broker.port}; {args.devices} devices, "
        f"{count} messages ({values} values) per run, {runs} runs each"
    )
    bare_rates, linli_rates = [], []
    lost = 0
    try:
        for run in range(runs):
            folder = Path(tempfile.mkdtemp(prefix="linli-bench-"))
            await prepare(broker.port, folder, data)
            publisher = Publisher(broker.port, messages)
            started = time.perf_counter()
            publisher.start()
            publisher.join()
            publish_rate = count / (time.perf_counter() - started)
            bare = await run_bare(broker.port, count)
            rate, stats = await run_linli(broker.port, folder, count, values)
            shutil.rmtree(folder, ignore_errors=True)
            bare_rates.append(bare)
            linli_rates.append(rate)
            lost += (count - stats["accepted"]) + (stats["expected_rows"] - stats["rows_on_disk"])
            print(
                f"run {run + 1}: (published at {publish_rate:,.0f} msg/s) "
                f"bare {bare:,.0f} msg/s   linli {rate:,.0f} msg/s   "
                f"ratio {rate / bare:.2f}   {stats}",
                flush=True,
            )
    finally:
        broker.stop()
    bare_m, linli_m = median(bare_rates), median(linli_rates)
    print(f"median bare receiver: {bare_m:,.0f} msg/s")
    print(f"median linli ingest (parsed, validated, state, event, persisted): {linli_m:,.0f} msg/s")
    print(f"messages lost: {lost}")
    print(f"ingest_ratio={linli_m / bare_m:.2f}")
    sys.exit(1 if lost else 0)


if __name__ == "__main__":
    asyncio.run(main())
