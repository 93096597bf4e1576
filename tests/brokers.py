"""Real MQTT brokers for tests: Mosquitto when installed, the embedded broker (rumqttd) otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import ssl
import subprocess
import time
from pathlib import Path

from tests.infrastructure import MOSQUITTO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_block(width: int, low: int = 20000, high: int = 60000) -> int:
    """A base port with `width` free ports after it on 127.0.0.1 (clusters give node i base+i)."""
    for _ in range(500):
        base = random.randrange(low, high - width)
        try:
            for port in range(base, base + width):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no block of {width} free loopback ports between {low} and {high}")


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.002)  # a broker listens ~10 ms after it starts: every test starts one
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class MosquittoProcess:
    """A Mosquitto on a free loopback port that a test can kill and restart."""

    kind = "mosquitto"

    def __init__(self, folder: Path, *, port: int | None = None, extra: str = "") -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.folder = folder
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            + ("allow_anonymous true\n" if "password_file" not in extra else "")
            + "max_queued_messages 1000000\nmax_inflight_messages 0\n"
            + "log_dest none\n"
            # As root, Mosquitto drops to the 'mosquitto' user, which cannot read pytest's
            # private tmp folders (the password file); stay root for the test broker.
            + ("user root\n" if os.geteuid() == 0 else "")
            + extra
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert MOSQUITTO is not None
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_listening(self.port)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            if self.process.stderr:
                self.process.stderr.close()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self.process.stderr:
                self.process.stderr.close()
            self.process = None


class EmbeddedBrokerProcess:
    """The gateway's embedded broker, rumqttd in its own process (when Mosquitto is not installed)."""

    kind = "embedded"

    def __init__(self, folder: Path) -> None:
        from linli.gateway.mqtt.broker import EmbeddedBroker

        self.host = "127.0.0.1"
        self.port = free_port()
        self._broker = EmbeddedBroker(self.host, self.port, folder)

    async def async_start(self) -> None:
        await self._broker.async_start()

    async def async_stop(self) -> None:
        await self._broker.async_stop()


async def settle(predicate, timeout: float = 5.0, interval: float = 0.01) -> None:  # type: ignore[no-untyped-def]
    """Wait until `predicate()` is true; fail with a clear message if it never is."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate}")
        await asyncio.sleep(interval)


async def refused_at_tls(port: int, ca: str, certificate: tuple[str, str] | None = None) -> bool:
    """Whether the MQTT listener ends a TLS session (with `certificate` = (cert, key), or none) at once.

    Checked on a bare TLS socket, not with aiomqtt: under TLS 1.3 the server's refusal of a client
    certificate arrives after the client's side of the handshake has finished, and paho-mqtt (under
    aiomqtt) sometimes trips over its own closed socket there (AttributeError: 'NoneType' object has
    no attribute 'fileno') instead of reporting the refusal. A refused session ends with the server's
    alert within milliseconds; an accepted one stays open, waiting for the client's CONNECT.
    """
    context = ssl.create_default_context(cafile=ca)
    if certificate:
        context.load_cert_chain(*certificate)
    writer = None
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        async with asyncio.timeout(1):
            return await reader.read(1) == b""
    except TimeoutError:
        return False  # still open a second on: the server took the certificate
    except (ssl.SSLError, ConnectionError):
        return True
    finally:
        if writer is not None:
            writer.close()
