"""Shared pieces of the benchmarks: a broker on loopback, a publisher process, medians."""

from __future__ import annotations

import collections
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


class BenchBroker:
    """Mosquitto on a free loopback port (the production broker), in a temp folder."""

    def __init__(self) -> None:
        binary = shutil.which("mosquitto")
        if binary is None:
            raise SystemExit("bench needs Mosquitto on this machine: apt-get install mosquitto")
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="linli-bench-broker-"))
        config = self.folder / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            "max_queued_messages 0\nmax_inflight_messages 0\nlog_dest none\n"
        )
        self.process = subprocess.Popen([binary, "-c", str(config)])
        wait_listening(self.port)
        self.version = subprocess.run(
            [binary, "-h"], capture_output=True, text=True, check=False
        ).stdout.splitlines()[0]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(5)
        shutil.rmtree(self.folder, ignore_errors=True)


def _publish_worker(
    port: int,
    messages: list[tuple[str, bytes]],
    qos: int,
    ready: mp.Event,
    go: mp.Event,
    rate: float | None = None,
    login: tuple[str, str] | None = None,
) -> None:
    """Publish every message as fast as paho can, QoS 1, then wait for all PUBACKs."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    if login:
        client.username_pw_set(*login)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    ready.set()
    go.wait()
    # paho's message ids wrap at 65,535: keep fewer than that outstanding.
    window: collections.deque[mqtt.MQTTMessageInfo] = collections.deque()
    started = time.perf_counter()
    for index, (topic, payload) in enumerate(messages):
        if rate and index % 50 == 0:
            lag = started + index / rate - time.perf_counter()
            if lag > 0:
                time.sleep(lag)
        window.append(client.publish(topic, payload, qos=qos))
        if len(window) >= 30_000:
            window.popleft().wait_for_publish(60)
    for info in window:
        info.wait_for_publish(60)
    client.loop_stop()
    client.disconnect()


class Publisher:
    """A separate process that publishes a prepared list of messages when told to."""

    def __init__(
        self,
        port: int,
        messages: list[tuple[str, bytes]],
        qos: int = 1,
        rate: float | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        ctx = mp.get_context("spawn")
        self.ready, self.go = ctx.Event(), ctx.Event()
        self.process = ctx.Process(
            target=_publish_worker, args=(port, messages, qos, self.ready, self.go, rate, login), daemon=True
        )
        self.process.start()
        if not self.ready.wait(30):
            raise RuntimeError("publisher process did not connect")

    def start(self) -> None:
        self.go.set()

    def join(self, timeout: float = 120) -> None:
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()


def median(values: list[float]) -> float:
    return statistics.median(values)


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of a process in MB (Linux /proc)."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


PORTAL_COMPONENTS = [
    "linli.adapters.mqtt_device:MqttDeviceAdapter",
    "linli.services.alerts:AlertEngine",
    "linli.services.eldercare:ElderCare",
    "linli.portal.app:Portal",
]


async def start_portal_gateway(
    folder: Path, mqtt_port: int, portal_port: int, households: int, client_id: str = "linli-bench"
) -> tuple:
    """The gateway as `linli run` would be for the portal benches: devices, alerts, elder care and
    the portal, on an external broker, with the demo layout of `households` homes imported.
    Returns (gateway, layout)."""
    from linli.gateway.config import load_config
    from linli.gateway.runtime import Gateway
    from linli.sim.layout import layout

    config = load_config(
        None,
        environ={},
        overrides={
            "data_dir": str(folder),
            "gateway_id": "bench",
            "mqtt": {
                "broker": "external",
                "host": "127.0.0.1",
                "port": mqtt_port,
                "client_id": client_id,
            },
            "portal": {"enabled": True, "port": portal_port},
            "discovery": {"enabled": False},
            "components": PORTAL_COMPONENTS,
        },
    )
    gateway = Gateway(config)
    await gateway.async_start()
    data = layout(households)
    await gateway.registry.async_import(**data)
    return gateway, data
