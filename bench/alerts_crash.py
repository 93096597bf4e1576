"""Alarms through crashes: 10,000 SOS alarms while the gateway is SIGKILLed three times.

    python bench/alerts_crash.py [--quick] [--alerts 10000]

10,000 SOS pendants (2,000 homes × 5) each press once; a separate process
publishes the presses at a steady rate, QoS 1, to Mosquitto on loopback. The
gateway is the real `linli run` process with the alert engine and elder care;
its delivery channel is a provider webhook served by this script on 127.0.0.1,
so deliveries are observed outside the process that is being killed.

Two phases in the same run:

* baseline: no kills;
* crash: the gateway is killed with SIGKILL three times while alarms arrive,
  and started again after half a second each time.

Checked afterwards, from the gateway's database and the webhook's log: every
alarm is present (one alert per pendant), and every alert was delivered at
least once. Reported: alarms per second end to end in both phases and their
ratio, duplicates delivered (at-least-once means a step interrupted by a crash
may be delivered again), and lost alarms — the headline, which must be 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from aiohttp import web
from common import BenchBroker, Publisher, free_port

from gateway.config import load_config
from gateway.runtime import Gateway

PENDANTS_PER_HOME = 5
SECRET = "bench-webhook-secret-0123456789"


async def prepare(folder: Path, port: int, alerts: int) -> list[str]:
    config = load_config(
        None,
        environ={},
        overrides={
            "data_dir": str(folder),
            "gateway_id": "bench-crash",
            "mqtt": {"broker": "external", "port": port},
            "portal": {"enabled": False},
            "components": [],
        },
    )
    gateway = Gateway(config)
    await gateway.async_start()
    homes = -(-alerts // PENDANTS_PER_HOME)
    devices, topics = [], []
    for h in range(homes):
        hid = f"h{h:05d}"
        for p in range(PENDANTS_PER_HOME):
            if len(devices) == alerts:
                break
            did = f"{hid}-sos{p}"
            topic = f"linli/v1/{hid}/{did}"
            devices.append(
                {
                    "id": did,
                    "household_id": hid,
                    "name": f"SOS {p}",
                    "profile_id": "linli/sos-pendant",
                    "topic": topic,
                }
            )
            topics.append(topic)
    await gateway.registry.async_import(
        buildings=[{"id": "b1", "name": "1"}],
        units=[{"id": f"u{h:05d}", "building_id": "b1", "name": str(h)} for h in range(homes)],
        households=[{"id": f"h{h:05d}", "unit_id": f"u{h:05d}", "name": str(h)} for h in range(homes)],
        devices=devices,
    )
    await gateway.async_stop()
    return topics


def write_config(folder: Path, broker: int, hook: int) -> Path:
    path = folder / "linli.toml"
    path.write_text(
        f'gateway_id = "bench-crash"\ndata_dir = "{folder}"\nlog_level = "WARNING"\n'
        'components = ["adapters.mqtt_device:MqttDeviceAdapter", "services.alerts:AlertEngine", '
        '"services.eldercare:ElderCare"]\n'
        f'[mqtt]\nbroker = "external"\nport = {broker}\nclient_id = "bench-crash"\n'
        "[portal]\nenabled = false\n"
        f'[[alerts.webhooks]]\nid = "bench"\nurl = "http://127.0.0.1:{hook}/hook"\nsecret = "{SECRET}"\n'
        'audiences = ["household"]\n'
    )
    return path


class Hook:
    """The provider's endpoint: records each delivery of each alert."""

    def __init__(self) -> None:
        self.port = free_port()
        self.deliveries: Counter[str] = Counter()

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.deliveries[request.headers["X-Linli-Alert-Id"]] += 1
        return web.Response(status=204)

    async def start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner


def spawn(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def phase(broker: BenchBroker, alerts: int, rate: float, kills: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="linli-bench-crash-"))
    topics = await prepare(folder, broker.port, alerts)
    hook = Hook()
    runner = await hook.start()
    config = write_config(folder, broker.port, hook.port)
    process = spawn(config)
    await asyncio.sleep(2.0)  # imports, migrations, subscriptions
    publisher = Publisher(broker.port, [(t, b'{"sos": "pressed", "battery": 80}') for t in topics], rate=rate)
    started = time.perf_counter()
    publisher.start()
    duration = alerts / rate
    killed = 0
    for k in range(kills):
        await asyncio.sleep(duration / (kills + 1) - (0.5 if k else 0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed += 1
        await asyncio.sleep(0.5)
        process = spawn(config)
    while publisher.process.is_alive():
        await asyncio.sleep(0.05)
    deadline = time.perf_counter() + 180
    while len(hook.deliveries) < alerts and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    await runner.cleanup()
    with sqlite3.connect(folder / "linli.db") as conn:
        stored = conn.execute(
            "SELECT count(*), count(DISTINCT dedup_key) FROM alerts WHERE kind = 'sos'"
        ).fetchone()
        ids = {str(i) for (i,) in conn.execute("SELECT id FROM alerts WHERE kind = 'sos'")}
    delivered = ids & set(hook.deliveries)
    return {
        "kills": killed,
        "alerts_stored": stored[0],
        "distinct_pendants": stored[1],
        "delivered_at_least_once": len(delivered),
        "duplicate_deliveries": sum(hook.deliveries.values()) - len(hook.deliveries),
        "lost": alerts - len(delivered),
        "alerts_per_s": alerts / elapsed,
        "stderr_tail": err.decode(errors="replace").strip().splitlines()[-3:],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--alerts", type=int)
    args = parser.parse_args()
    alerts = args.alerts or (2000 if args.quick else 10_000)
    rate = 400.0 if args.quick else 500.0
    broker = BenchBroker()
    try:
        print(f"{alerts} SOS alarms at {rate:.0f}/s; broker {broker.version}")
        base = await phase(broker, alerts, rate, kills=0)
        print(f"baseline (no kills): {base}")
        crash = await phase(broker, alerts, rate, kills=3)
        print(f"with 3 × SIGKILL:    {crash}")
    finally:
        broker.stop()
    print(
        f"alarms/s end to end: baseline {base['alerts_per_s']:.0f}, with crashes {crash['alerts_per_s']:.0f} "
        f"(ratio {crash['alerts_per_s'] / base['alerts_per_s']:.2f})"
    )
    print(
        f"every alarm stored: {crash['alerts_stored'] == alerts}; "
        f"delivered at least once: {crash['delivered_at_least_once']}/{alerts}; "
        f"duplicates: {crash['duplicate_deliveries']}"
    )
    print(f"alerts_lost={crash['lost'] + base['lost']}")


if __name__ == "__main__":
    asyncio.run(main())
