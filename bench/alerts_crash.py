"""Alarms through crashes: 10,000 SOS alarms while the gateway is SIGKILLed three times.

    python bench/alerts_crash.py [--quick] [--alerts 10000] [--broker default|embedded|mosquitto|external]

`--broker`: `default` (the gateway's own default mode: its managed broker, Mosquitto where
installed, else the embedded rumqttd), `embedded`, `mosquitto`, or `external` (a Mosquitto
this script runs, which outlives every kill: the earlier baseline). With a managed broker the
broker is the gateway's own child and survives its SIGKILL; the restarted gateway re-attaches.
The publisher stands for thousands of pendants in one process: on the managed Mosquitto it
signs in as the gateway's own MQTT user, the one credential allowed to publish for every home.

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
from common import BenchBroker, Publisher, free_port, wait_listening

from linli.gateway.config import load_config
from linli.gateway.mqtt.broker import GATEWAY_USER
from linli.gateway.runtime import Gateway

PENDANTS_PER_HOME = 5
SECRET = "bench-webhook-secret-0123456789"


async def prepare(folder: Path, port: int, alerts: int, mode: str) -> list[str]:
    config = load_config(
        None,
        environ={},
        overrides={
            "data_dir": str(folder),
            "gateway_id": "bench-crash",
            "mqtt": {"broker": mode, "port": port},
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


def write_config(folder: Path, broker: int, hook: int, mode: str) -> Path:
    path = folder / "linli.toml"
    path.write_text(
        f'gateway_id = "bench-crash"\ndata_dir = "{folder}"\nlog_level = "WARNING"\n'
        'components = ["linli.adapters.mqtt_device:MqttDeviceAdapter", "linli.services.alerts:AlertEngine", '
        '"linli.services.eldercare:ElderCare"]\n'
        f'[mqtt]\nbroker = "{mode}"\nport = {broker}\nclient_id = "bench-crash"\n'
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
        [sys.executable, "-m", "linli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def phase(port: int, mode: str, alerts: int, rate: float, kills: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="linli-bench-crash-"))
    topics = await prepare(folder, port, alerts, mode)
    hook = Hook()
    runner = await hook.start()
    config = write_config(folder, port, hook.port, mode)
    process = spawn(config)
    await asyncio.sleep(2.0)  # imports, migrations, subscriptions
    wait_listening(port)
    login = None
    if (folder / "mosquitto").exists():
        login = (GATEWAY_USER, (folder / "secrets" / "mqtt-gateway").read_bytes().hex())
    messages = [(t, b'{"sos": "pressed", "battery": 80}') for t in topics]
    publisher = Publisher(port, messages, rate=rate, login=login)
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
    parser.add_argument(
        "--broker", choices=["default", "embedded", "mosquitto", "external"], default="default"
    )
    args = parser.parse_args()
    alerts = args.alerts or (1000 if args.quick else 10_000)
    rate = 300.0 if args.quick else 500.0
    mode = args.broker
    if mode == "default":
        mode = load_config(None, environ={})["mqtt"]["broker"]  # what `linli run` would choose here
    external = BenchBroker() if mode == "external" else None
    try:
        print(f"{alerts} SOS alarms at {rate:.0f}/s; broker mode {mode}")
        port = external.port if external else free_port()
        base = await phase(port, mode, alerts, rate, kills=0)
        print(f"baseline (no kills): {base}")
        port = external.port if external else free_port()
        crash = await phase(port, mode, alerts, rate, kills=3)
        print(f"with 3 × SIGKILL:    {crash}")
    finally:
        if external:
            external.stop()
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
