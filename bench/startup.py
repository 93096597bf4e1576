"""Start-up time and memory of a community-sized gateway.

    python bench/startup.py [--quick] [--households 1000]

A data directory is prepared with 1,000 households × 15 devices. Then the real
`linli run` process is started against Mosquitto on loopback, and we measure:

* ready: from spawning the process to the gateway answering on its portal
  (imports, migrations, registry load, routes, MQTT connect) — target < 3 s;
* the gateway's own start-up (`startup_s`, from its status endpoint);
* resident memory (VmRSS) of the gateway process, sampled while a separate
  process publishes telemetry for all 15,000 devices — target < 250 MB.

Baseline in the same run: the same gateway with an empty registry.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson
from common import BenchBroker, Publisher, free_port, median, rss_mb

from linli.gateway.config import load_config
from linli.gateway.runtime import Gateway
from linli.sim.layout import layout
from linli.sim.telemetry import DeviceSim, payload_for


async def prepare(folder: Path, port: int, households: int) -> list[dict]:
    config = load_config(
        None,
        environ={},
        overrides={
            "data_dir": str(folder),
            "gateway_id": "bench-startup",
            "mqtt": {"broker": "external", "port": port},
            "portal": {"enabled": False},
            "components": [],
        },
    )
    gateway = Gateway(config)
    await gateway.async_start()
    data = layout(households)
    await gateway.registry.async_import(**data)
    await gateway.async_stop()
    return data["devices"]


def write_config(folder: Path, broker_port: int, portal_port: int) -> Path:
    path = folder / "linli.toml"
    path.write_text(
        f'gateway_id = "bench-startup"\ndata_dir = "{folder}"\nlog_level = "WARNING"\n'
        f'[mqtt]\nbroker = "external"\nport = {broker_port}\nclient_id = "bench-startup"\n'
        # the status the bench polls, readable from this machine without an account
        f"[portal]\nport = {portal_port}\nopen_local_views = true\n"
    )
    return path


def start_gateway(config: Path, portal_port: int) -> tuple[subprocess.Popen[bytes], float, dict]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "linli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{portal_port}/api/v1/status"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                status = json.loads(response.read())
            if status["mqtt"]["connected"]:
                return process, time.perf_counter() - started, status
        except OSError:
            pass
        if time.perf_counter() - started > 60:
            process.kill()
            raise TimeoutError("gateway did not become ready in 60 s")
        time.sleep(0.01)


def stop_gateway(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(30)


def status(portal_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{portal_port}/api/v1/status", timeout=5) as response:
        return json.loads(response.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--households", type=int, default=1000)
    args = parser.parse_args()
    runs = 3 if args.quick else 5
    load_messages = 30_000 if args.quick else 100_000
    broker = BenchBroker()
    folder = Path(tempfile.mkdtemp(prefix="linli-bench-startup-"))
    empty = Path(tempfile.mkdtemp(prefix="linli-bench-empty-"))
    try:
        devices = asyncio.run(prepare(folder, broker.port, args.households))
        print(f"{args.households} households, {len(devices)} devices; broker {broker.version}")
        ready_full, ready_empty, own_full = [], [], []
        for _ in range(runs):
            port = free_port()
            process, seconds, state = start_gateway(write_config(empty, broker.port, port), port)
            stop_gateway(process)
            ready_empty.append(seconds)
            port = free_port()
            process, seconds, state = start_gateway(write_config(folder, broker.port, port), port)
            assert state["devices"] == len(devices), state
            ready_full.append(seconds)
            own_full.append(state["startup_s"])
            stop_gateway(process)
        # memory while ingesting
        port = free_port()
        process, _, _ = start_gateway(write_config(folder, broker.port, port), port)
        idle_rss = rss_mb(process.pid)
        sims = {d["id"]: DeviceSim(d["profile_id"], random.Random(d["id"])) for d in devices}
        messages = [
            (d["topic"], orjson.dumps(payload_for(sims[d["id"]], 9.0)))
            for i in range(load_messages)
            for d in [devices[i % len(devices)]]
        ]
        publisher = Publisher(broker.port, messages)
        publisher.start()
        peak = idle_rss
        while publisher.process.is_alive():
            peak = max(peak, rss_mb(process.pid))
            time.sleep(0.1)
        deadline = time.perf_counter() + 60
        while status(port)["ingest"]["accepted"] < load_messages and time.perf_counter() < deadline:
            peak = max(peak, rss_mb(process.pid))
            time.sleep(0.1)
        accepted = status(port)["ingest"]["accepted"]
        stop_gateway(process)
        port = free_port()
        process, _, _ = start_gateway(write_config(empty, broker.port, port), port)
        empty_rss = rss_mb(process.pid)
        stop_gateway(process)
    finally:
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(empty, ignore_errors=True)
    print(
        f"ready (spawn → serving, connected), {len(devices)} devices: median {median(ready_full):.2f} s "
        f"(runs {', '.join(f'{x:.2f}' for x in ready_full)})"
    )
    print(
        f"ready, empty registry (baseline): median {median(ready_empty):.2f} s; "
        f"ratio {median(ready_full) / median(ready_empty):.2f}"
    )
    print(f"gateway's own start-up (after imports): median {median(own_full):.2f} s")
    print(
        f"RSS: empty gateway {empty_rss:.0f} MB; {len(devices)} devices idle {idle_rss:.0f} MB; "
        f"peak while ingesting {accepted} messages {peak:.0f} MB (ratio to empty {peak / empty_rss:.2f})"
    )
    print(f"peak_rss_mb={peak:.0f}")
    print(f"startup_ready_s={median(ready_full):.2f}")


if __name__ == "__main__":
    main()
