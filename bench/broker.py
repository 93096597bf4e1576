"""The embedded broker's candidates side by side: amqtt, rumqttd (iotcore), Mosquitto.

    python bench/broker.py [--quick] [--messages N] [--rounds N]

Same publisher, same subscriber, one run. Each broker runs in a process of its own on
127.0.0.1 (amqtt too: inside the gateway it also cost the gateway's event loop, which
this bench does not even charge it for). Per round and broker, a paho subscriber
(QoS 1, `bench/#`) waits for N messages that a paho publisher sends at QoS 1 as fast
as the broker takes them (the same 120-byte telemetry JSON each time).

Reported per broker (medians over the rounds): messages per second end to end, the
broker's own CPU time per message (utime + stime from /proc, so a broker that is
fast only because it burns both cores shows it), messages lost, and two retained-
message checks from MQTT 3.1.1 §3.3.1.3: a subscription to an unrelated filter must
receive no retained message, and a QoS 0 retained publish from a client that
disconnects at once must be kept. The Mosquitto here is the managed one, with its
password and ACL files: the cost of access control is included.

Headline: the embedded broker's (rumqttd) end-to-end rate against Mosquitto's.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import free_port, wait_listening

from linli.gateway.mqtt.broker import GATEWAY_USER, EmbeddedBroker, MosquittoBroker

PAYLOAD = b'{"temperature": 21.5, "humidity": 48.2, "battery": 87, "linkquality": 120, "voltage": 2975}'
PAYLOAD = PAYLOAD + b" " * (120 - len(PAYLOAD))

_AMQTT = """
import asyncio, logging, sys
from amqtt.broker import Broker
for name in ("amqtt", "transitions"):
    logging.getLogger(name).setLevel(logging.ERROR)
async def main():
    anonymous = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
    listeners = {"default": {"type": "tcp", "bind": "127.0.0.1:" + sys.argv[1]}}
    broker = Broker({"listeners": listeners, "plugins": anonymous})
    await broker.start()
    await asyncio.Event().wait()
asyncio.run(main())
"""


@dataclass
class Candidate:
    name: str
    port: int
    pid: int
    login: tuple[str, str] | None
    rates: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    leaked_retained: int = -1
    kept_qos0_retained: bool | None = None


def _client(name: str, port: int, login: tuple[str, str] | None):  # type: ignore[no-untyped-def]
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
    if login:
        client.username_pw_set(*login)
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port, keepalive=60)
    return client


def _subscriber(port: int, login: tuple[str, str] | None, count: int, ready, result) -> None:  # type: ignore[no-untyped-def]
    received = 0
    first = last = 0.0
    client = _client(f"bench-sub-{os.getpid()}", port, login)

    def on_message(_c, _u, _m) -> None:  # type: ignore[no-untyped-def]
        nonlocal received, first, last
        received += 1
        last = time.perf_counter()
        if received == 1:
            first = last

    client.on_message = on_message
    client.subscribe("bench/#", qos=1)
    client.loop_start()
    time.sleep(0.3)
    ready.set()
    deadline = time.monotonic() + 120
    idle_since = time.monotonic()
    seen = 0
    while received < count and time.monotonic() < deadline:
        time.sleep(0.05)
        if received != seen:
            seen, idle_since = received, time.monotonic()
        elif received and time.monotonic() - idle_since > 5:
            break  # the rest is not coming
    client.loop_stop()
    client.disconnect()
    result.put((received, first, last))


def _publisher(port: int, login: tuple[str, str] | None, count: int, go) -> None:  # type: ignore[no-untyped-def]
    client = _client(f"bench-pub-{os.getpid()}", port, login)
    client.loop_start()
    go.wait()
    infos = []
    for index in range(count):
        infos.append(client.publish(f"bench/h{index % 100}/d{index % 15}", PAYLOAD, qos=1))
        if len(infos) >= 20_000:
            infos.pop(0).wait_for_publish(60)
    for info in infos:
        info.wait_for_publish(60)
    client.loop_stop()
    client.disconnect()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_round(candidate: Candidate, count: int) -> None:
    ctx = mp.get_context("spawn")
    ready, go, result = ctx.Event(), ctx.Event(), ctx.Queue()
    sub = ctx.Process(target=_subscriber, args=(candidate.port, candidate.login, count, ready, result))
    sub.start()
    if not ready.wait(30):
        raise RuntimeError(f"{candidate.name}: subscriber did not connect")
    pub = ctx.Process(target=_publisher, args=(candidate.port, candidate.login, count, go))
    pub.start()
    time.sleep(0.5)
    cpu_before = cpu_seconds(candidate.pid)
    go.set()
    received, first, last = result.get(timeout=180)
    cpu_after = cpu_seconds(candidate.pid)
    pub.join(30)
    sub.join(30)
    for process in (pub, sub):
        if process.is_alive():
            process.kill()
    candidate.lost.append(count - received)
    candidate.rates.append(received / (last - first) if last > first else 0.0)
    candidate.cpu_us.append((cpu_after - cpu_before) / max(1, received) * 1e6)


def check_retained(candidate: Candidate) -> None:
    """MQTT-3.3.1-6 (retained only to matching subscriptions) and a QoS 0 retained kept."""
    import paho.mqtt.client as mqtt

    publisher = _client("bench-retain-pub", candidate.port, candidate.login)
    publisher.loop_start()
    publisher.publish("bench-retained/q1", b"kept", qos=1, retain=True).wait_for_publish(10)
    publisher.loop_stop()
    publisher.disconnect()
    # QoS 0 from a client that is gone right after, as `mosquitto_pub -r` does
    short = _client("bench-retain-q0", candidate.port, candidate.login)
    short.publish("bench-retained/q0", b"kept", qos=0, retain=True)
    short.loop(0.1)
    short.disconnect()
    time.sleep(0.3)

    def received(topic_filter: str) -> set[str]:
        got: set[str] = set()
        client = _client(f"bench-retain-{len(topic_filter)}", candidate.port, candidate.login)

        def on_message(_c, _u, message: mqtt.MQTTMessage) -> None:
            got.add(message.topic)

        client.on_message = on_message
        client.subscribe(topic_filter, qos=1)
        client.loop_start()
        time.sleep(1.0)
        client.loop_stop()
        client.disconnect()
        return got

    candidate.leaked_retained = len(received("nothing/here"))
    candidate.kept_qos0_retained = "bench-retained/q0" in received("bench-retained/#")


async def start_all(folder: Path) -> tuple[list[Candidate], list[object]]:
    candidates: list[Candidate] = []
    handles: list[object] = []
    port = free_port()
    amqtt = subprocess.Popen([sys.executable, "-c", _AMQTT, str(port)], stderr=subprocess.DEVNULL)
    wait_listening(port)
    candidates.append(Candidate("amqtt", port, amqtt.pid, None))
    handles.append(amqtt)
    embedded = EmbeddedBroker("127.0.0.1", free_port(), folder / "rumqttd")
    await embedded.async_start()
    assert embedded.process is not None and embedded.process.pid is not None
    candidates.append(Candidate("rumqttd (iotcore)", embedded.port, embedded.process.pid, None))
    handles.append(embedded)
    if shutil.which("mosquitto"):
        mosquitto = MosquittoBroker("127.0.0.1", free_port(), folder / "mosquitto")
        await mosquitto.async_start()
        assert mosquitto.process is not None and mosquitto.process.pid is not None
        login = (GATEWAY_USER, mosquitto.gateway_password or "")
        candidates.append(Candidate("mosquitto (managed, ACL)", mosquitto.port, mosquitto.process.pid, login))
        handles.append(mosquitto)
    return candidates, handles


async def stop_all(handles: list[object]) -> None:
    for handle in handles:
        if isinstance(handle, subprocess.Popen):
            handle.terminate()
            handle.wait(10)
        else:
            await handle.async_stop()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round (under a minute)")
    parser.add_argument("--messages", type=int)
    parser.add_argument("--rounds", type=int)
    args = parser.parse_args()
    count = args.messages or (10_000 if args.quick else 50_000)
    rounds = args.rounds or (1 if args.quick else 3)
    folder = Path(tempfile.mkdtemp(prefix="linli-bench-brokers-"))
    candidates, handles = asyncio.run(start_all(folder))
    try:
        for candidate in candidates:
            check_retained(candidate)
        for index in range(rounds):
            # each round visits the brokers in a different order: the machine's noise is shared
            order = candidates[index % len(candidates) :] + candidates[: index % len(candidates)]
            for candidate in order:
                run_round(candidate, count)
                print(
                    f"round {index + 1} {candidate.name:26} {candidate.rates[-1]:9.0f} msg/s  "
                    f"{candidate.cpu_us[-1]:6.1f} µs CPU/msg  lost {candidate.lost[-1]}",
                    flush=True,
                )
    finally:
        asyncio.run(stop_all(handles))
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\n{count} QoS 1 messages x {rounds} round(s), one publisher, one subscriber (paho), loopback")
    print(
        f"{'broker':26} {'msg/s':>9} {'µs CPU/msg':>11} {'lost':>5} {'retained leak':>14} {'QoS0 kept':>10}"
    )
    by_name = {}
    for c in candidates:
        rate, cpu = statistics.median(c.rates), statistics.median(c.cpu_us)
        by_name[c.name.split()[0]] = (rate, cpu)
        print(
            f"{c.name:26} {rate:9.0f} {cpu:11.1f} {max(c.lost):5d} {c.leaked_retained:14d} "
            f"{c.kept_qos0_retained!s:>10}"
        )
    rumqttd, amqtt = by_name["rumqttd"], by_name["amqtt"]
    print(f"amqtt_cpu_per_msg_vs_embedded={amqtt[1] / rumqttd[1]:.1f}")
    if "mosquitto" in by_name:
        mosquitto = by_name["mosquitto"]
        print(f"embedded_cpu_per_msg_vs_mosquitto={rumqttd[1] / mosquitto[1]:.2f}")
        print(f"embedded_msgs_per_s_vs_mosquitto={rumqttd[0] / mosquitto[0]:.2f}")
    else:
        print(f"embedded_msgs_per_s_vs_amqtt={rumqttd[0] / amqtt[0]:.2f}")


if __name__ == "__main__":
    main()
