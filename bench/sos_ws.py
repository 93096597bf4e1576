"""SOS press → alert durable → on a resident's phone (the portal WebSocket), under telemetry load.

    python bench/sos_ws.py [--quick] [--presses N] [--rate MSG_S] [--runs R]

The gateway runs in this process as `linli run` would (MQTT devices, the alert
engine, elder care, the portal) on Mosquitto on loopback, with a 5,000-device
community. A separate process publishes background telemetry for those devices
at `--rate` (default 5,000 msg/s, QoS 1, paced). A probe process plays the
residents: it holds a WebSocket open per home (bearer tokens of resident
accounts), presses each home's SOS pendant in turn (an MQTT publish, QoS 1),
and times from just before the publish to the WebSocket message that delivers
the alert: `{"type": "alert"}`, the one message a press is on the phone (the
engine's first escalation step through the `ws` channel, started in the raise's
own commit; before one road from alarm to screen it was the first of that and an
`alert_changed` fired from the bus). It then resolves the alert
over the REST API, like the resident would, so the next press makes a new one.

Baseline, same broker, same run, same load: the bare MQTT round trip — the
probe publishes to a topic it subscribes to and times the receive.
Latencies: p50 and p99 per run, medians over the runs. Headline: the SOS p99.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from common import BenchBroker, Publisher, free_port, median, start_portal_gateway, wait_listening

from linli.gateway import users
from linli.gateway.events import AlertChanged, TelemetryReceived
from linli.sim.telemetry import DeviceSim, payload_for

HOMES_PROBED = 20
QUIET_PROFILES = ("linli/sos-pendant", "linli/fall-radar")  # the probe presses these itself


class NoDelayBroker(BenchBroker):
    """The bench broker with `set_tcp_nodelay true`: small PUBLISH packets are not held by Nagle."""

    def __init__(self) -> None:
        super().__init__()
        self.process.terminate()
        self.process.wait(5)
        config = self.folder / "mosquitto.conf"
        config.write_text(config.read_text() + "set_tcp_nodelay true\n")
        self.process = subprocess.Popen([shutil.which("mosquitto") or "mosquitto", "-c", str(config)])
        wait_listening(self.port)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def telemetry(devices: list[dict[str, Any]], count: int) -> list[tuple[str, bytes]]:
    busy = [d for d in devices if d["profile_id"] not in QUIET_PROFILES]
    sims = {d["id"]: DeviceSim(d["profile_id"], random.Random(d["id"])) for d in busy}
    return [
        (d["topic"], orjson.dumps(payload_for(sims[d["id"]], 9.0)))
        for d in (busy[i % len(busy)] for i in range(count))
    ]


def _probe(port: int, portal: str, homes: list[dict[str, str]], presses: int, out: Any) -> None:
    asyncio.run(_probe_main(port, portal, homes, presses, out))


async def _probe_main(port: int, portal: str, homes: list[dict[str, str]], presses: int, out: Any) -> None:
    import aiohttp
    import aiomqtt

    sos: list[float] = []
    step: list[float] = []
    bare: list[float] = []
    pressed_wall: list[float] = []
    inbox: dict[str, asyncio.Queue[dict[str, Any]]] = {h["household"]: asyncio.Queue() for h in homes}
    pong: asyncio.Queue[float] = asyncio.Queue()
    async with (
        aiohttp.ClientSession() as http,
        aiomqtt.Client("127.0.0.1", port, identifier="bench-probe") as mqtt,
    ):
        sockets = []
        for home in homes:
            ws = await http.ws_connect(
                f"{portal}api/v1/ws", headers={"Authorization": f"Bearer {home['token']}"}
            )
            sockets.append((home["household"], ws))

        async def read(household: str, ws: aiohttp.ClientWebSocketResponse) -> None:
            async for message in ws:
                data = orjson.loads(message.data)
                if data["type"] == "alert" or (
                    data["type"] == "alert_changed" and data["transition"] == "raised"
                ):
                    data["_at"] = time.perf_counter()
                    inbox[household].put_nowait(data)

        async def read_mqtt() -> None:
            async for _ in mqtt.messages:
                pong.put_nowait(time.perf_counter())

        # Like a pendant, which sends one packet and nothing before it: without TCP_NODELAY
        # the press would wait (Nagle) for the broker to ACK the PUBACK this probe just
        # sent for its own ping — up to 40 ms of delayed ACK that no real device pays.
        mqtt._client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await mqtt.subscribe("bench/ping", qos=1)
        readers = [asyncio.create_task(read(h, ws)) for h, ws in sockets]
        readers.append(asyncio.create_task(read_mqtt()))
        for home in homes:
            await mqtt.publish(home["sos_topic"], b'{"sos": "idle"}', qos=1)
        await asyncio.sleep(1.0)
        for i in range(presses):
            home = homes[i % len(homes)]
            # the baseline: a bare MQTT round trip on the same broker, under the same load
            started = time.perf_counter()
            await mqtt.publish("bench/ping", b"{}", qos=1)
            bare.append((await asyncio.wait_for(pong.get(), 10) - started) * 1000)
            # the SOS press
            started = time.perf_counter()
            pressed_wall.append(time.time())
            await mqtt.publish(home["sos_topic"], b'{"sos": "pressed"}', qos=1)
            # the phone has it when its one message arrives: the `ws` channel's delivery of the
            # household's escalation step, started in the raise's own commit
            alert = await asyncio.wait_for(inbox[home["household"]].get(), 10)
            sos.append((alert["_at"] - started) * 1000)
            step.append((alert["_at"] - started) * 1000)
            async with http.post(
                f"{portal}api/v1/alerts/{alert['alert']['id']}/resolve",
                json={"note": "bench: resident is fine"},
                headers={"Authorization": f"Bearer {home['token']}"},
            ) as response:
                assert response.status == 200, await response.text()
            await mqtt.publish(home["sos_topic"], b'{"sos": "idle"}', qos=1)
            await asyncio.sleep(0.05 + random.random() * 0.05)
        for task in readers:
            task.cancel()
        for _, ws in sockets:
            await ws.close()
    out.put({"sos": sos, "step": step, "bare": bare, "pressed": pressed_wall})


async def run_once(broker: BenchBroker, presses: int, rate: float, duration: float) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="linli-bench-sos-"))
    portal_port = free_port()
    # A client id of its own per run: a backlog the previous run's gateway left in its broker
    # session would otherwise be this run's first seconds (and its tail).
    client_id = f"linli-bench-{portal_port}"
    gateway, data = await start_portal_gateway(
        folder, broker.port, portal_port, 334, client_id
    )  # 5,010 devices
    homes = []
    digest = users.hash_password(users.new_password())
    for household in sorted(gateway.registry.households)[:HOMES_PROBED]:

        def add(db: Any, household: str = household) -> str:
            user = users.add_user(
                db.conn,
                f"{household}.resident",
                "resident",
                password_hash=digest,
                household_id=household,
                by="bench",
            )
            return users.create_token(
                db.conn, kind=users.TokenKind.API, user_id=user.id, name="bench", ttl_s=3600
            )[1]

        token = await gateway.store.async_write(add)
        pendant = next(
            d for d in gateway.registry.household_devices(household) if d.profile.id == "linli/sos-pendant"
        )
        homes.append({"household": household, "token": token, "sos_topic": pendant.topic})
    await asyncio.sleep(0.5)  # subscriptions for the imported devices land
    gateway.settle_heap()  # as `linli run` does once it is ready (the community is loaded by now)
    background = Publisher(broker.port, telemetry(data["devices"], int(rate * duration)), rate=rate)
    adapter = gateway.components["mqtt_device"]
    stages: dict[str, list[float]] = {"state": [], "raised": []}
    pendants = {h["sos_topic"] for h in homes}
    pendant_ids = {d.id for d in gateway.registry.devices.values() if d.topic in pendants}
    # TelemetryReceived fires before StateChanged, whose listeners commit the alarm.
    gateway.bus.listen(
        TelemetryReceived,
        lambda e: (
            stages["state"].append(time.time())
            if e.device_id in pendant_ids and e.values.get("sos") is True
            else None
        ),
    )
    gateway.bus.listen(
        AlertChanged, lambda e: stages["raised"].append(time.time()) if e.transition == "raised" else None
    )
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    probe = ctx.Process(
        target=_probe,
        args=(broker.port, f"http://127.0.0.1:{portal_port}/", homes, presses, out),
        daemon=True,
    )
    background.start()
    await asyncio.sleep(2.0)  # the load is on before the first press
    accepted_before, load_started = adapter.accepted, time.perf_counter()
    probe.start()
    while probe.is_alive():
        await asyncio.sleep(0.2)
    load_s = time.perf_counter() - load_started
    load_rate = (adapter.accepted - accepted_before) / load_s
    result = out.get(timeout=5)
    background.join(duration + 60)
    writer = gateway.store.stats()
    await gateway.async_stop()
    with sqlite3.connect(folder / "linli.db") as conn:
        stored = conn.execute("SELECT count(*) FROM alerts WHERE kind = 'sos'").fetchone()[0]
    pressed = result["pressed"]
    if len(stages["state"]) == len(stages["raised"]) == len(pressed):
        result["to_state"] = [(a - b) * 1000 for a, b in zip(stages["state"], pressed, strict=True)]
        result["to_raised"] = [(a - b) * 1000 for a, b in zip(stages["raised"], stages["state"], strict=True)]
    return {**result, "load_rate": load_rate, "stored": stored, "writer": writer}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--presses", type=int)
    parser.add_argument("--rate", type=float, default=5000.0, help="background telemetry, msg/s")
    parser.add_argument("--runs", type=int)
    parser.add_argument(
        "--nodelay", action="store_true", help="Mosquitto with set_tcp_nodelay (an experiment; default off)"
    )
    args = parser.parse_args()
    presses = args.presses or (60 if args.quick else 300)
    runs = args.runs or (1 if args.quick else 3)
    duration = presses * 0.2 + 20
    broker = NoDelayBroker() if args.nodelay else BenchBroker()
    print(
        f"broker: {broker.version} on 127.0.0.1:{broker.port}; 5,010 devices, background telemetry "
        f"{args.rate:,.0f} msg/s; Nagle {'off (set_tcp_nodelay)' if args.nodelay else 'on'}; "
        f"{presses} SOS presses over {HOMES_PROBED} homes per run, {runs} run(s)"
    )
    p50s, p99s, bare50s, bare99s, lost = [], [], [], [], 0
    try:
        for run in range(runs):
            r = await run_once(broker, presses, args.rate, duration)
            sos, bare = r["sos"], r["bare"]
            p50s.append(statistics.median(sos))
            p99s.append(percentile(sos, 99))
            bare50s.append(statistics.median(bare))
            bare99s.append(percentile(bare, 99))
            lost += presses - r["stored"]
            print(
                f"run {run + 1}: ingest under load {r['load_rate']:,.0f} msg/s; "
                f"SOS→WebSocket p50 {p50s[-1]:.1f} ms p99 {p99s[-1]:.1f} ms max {max(sos):.1f} ms "
                f"(escalation-step delivery p50 {statistics.median(r['step']):.1f} "
                f"p99 {percentile(r['step'], 99):.1f}); "
                f"bare MQTT round trip p50 {bare50s[-1]:.1f} ms p99 {bare99s[-1]:.1f} ms; "
                f"alerts stored {r['stored']}/{presses}"
                + (
                    f"; stages p50: press→payload in the gateway (MQTT and the ingest queue) "
                    f"{statistics.median(r['to_state']):.1f} ms, "
                    f"payload→durable alert (journal) {statistics.median(r['to_raised']):.1f} ms "
                    f"(p99 {percentile(r['to_raised'], 99):.1f})"
                    if "to_state" in r
                    else ""
                )
                + (
                    f"; writer jobs {r['writer']['writes']:,}, over 25 ms {r['writer']['slow_writes']}, "
                    f"longest {r['writer']['max_write_ms']} ms; checkpoints {r['writer']['checkpoints']}, "
                    f"longest {r['writer']['max_checkpoint_ms']} ms (between telemetry commits)"
                ),
                flush=True,
            )
    finally:
        broker.stop()
    print(
        f"median SOS→WebSocket: p50 {median(p50s):.1f} ms, p99 {median(p99s):.1f} ms "
        "(target p99 ≤ 20 ms, max ≤ 50 ms)"
    )
    print(f"median bare MQTT round trip: p50 {median(bare50s):.1f} ms, p99 {median(bare99s):.1f} ms")
    print(f"ratio p99 SOS / bare: {median(p99s) / median(bare99s):.1f}; alerts lost: {lost}")
    print(f"sos_ws_p99_ms={median(p99s):.1f}")
    sys.exit(1 if lost else 0)


if __name__ == "__main__":
    asyncio.run(main())
