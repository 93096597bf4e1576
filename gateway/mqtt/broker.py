"""The broker the gateway connects to, in one of three modes.

* `embedded` (default): amqtt inside this process on 127.0.0.1 — zero install,
  for the demo and small sites. amqtt speaks MQTT 3.1.1 only and has no
  offline queueing, so availability is also tracked by silence (see registry).
* `mosquitto`: the gateway writes a config into its data directory and runs
  and supervises a Mosquitto process — the recommended production mode.
* `external`: nothing to run; the link connects to `mqtt.url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import shutil
import socket
from pathlib import Path
from typing import Protocol

_LOGGER = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The broker could not be started; the message says why and what to do."""


class Broker(Protocol):
    host: str
    port: int

    async def async_start(self) -> None: ...
    async def async_stop(self) -> None: ...


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise BrokerError(
                    f"MQTT port {host}:{port} is already in use (another broker or gateway?): "
                    "stop it, or choose another port with --mqtt-port / mqtt.port"
                ) from None
            raise BrokerError(f"cannot bind MQTT port {host}:{port}: {exc.strerror}") from None


class EmbeddedBroker:
    """amqtt running in the gateway's own event loop."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._broker: object | None = None

    async def async_start(self) -> None:
        check_port_free(self.host, self.port)
        from amqtt.broker import Broker as AmqttBroker  # imported late: it is heavy

        # amqtt and its state machine log every transition at INFO; keep our log readable.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        broker = AmqttBroker(config)
        try:
            await broker.start()
        except Exception as exc:
            raise BrokerError(
                f"embedded MQTT broker failed to start on {self.host}:{self.port}: {exc}"
            ) from exc
        self._broker = broker
        _LOGGER.info("embedded MQTT broker (amqtt) listening on %s:%d", self.host, self.port)

    async def async_stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            with contextlib.suppress(Exception):
                await broker.shutdown()  # type: ignore[attr-defined]


class MosquittoBroker:
    """A Mosquitto child process, restarted if it dies."""

    def __init__(self, host: str, port: int, data_dir: Path, binary: str = "mosquitto") -> None:
        self.host = host
        self.port = port
        self.data_dir = data_dir
        self.binary = binary
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self.restarts = 0

    def write_config(self) -> Path:
        folder = self.data_dir / "mosquitto"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "mosquitto.conf"
        path.write_text(
            "# written by Linli on every start; edit linli's config instead\n"
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "max_queued_messages 100000\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\n",
            encoding="utf-8",
        )
        return path

    async def async_start(self) -> None:
        path = shutil.which(self.binary)
        if path is None:
            raise BrokerError(
                f"mqtt.broker is 'mosquitto' but {self.binary!r} is not installed: "
                "install it (Debian: apt-get install mosquitto) or use mqtt.broker = 'embedded'"
            )
        check_port_free(self.host, self.port)
        self.binary = path
        config = self.write_config()
        await self._spawn(config)
        await self._wait_listening()
        self._task = asyncio.create_task(self._supervise(config), name="linli-mosquitto")
        _LOGGER.info("Mosquitto (%s) listening on %s:%d", path, self.host, self.port)

    async def _spawn(self, config: Path) -> None:
        self._process = await asyncio.create_subprocess_exec(
            self.binary,
            "-c",
            str(config),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )

    async def _wait_listening(self, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._process is not None and self._process.returncode is not None:
                err = b""
                if self._process.stderr is not None:
                    err = await self._process.stderr.read()
                raise BrokerError(f"Mosquitto exited at start: {err.decode(errors='replace').strip()}")
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
                writer.close()
                await writer.wait_closed()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise BrokerError(f"Mosquitto did not listen on {self.host}:{self.port} within {timeout}s")

    async def _supervise(self, config: Path) -> None:
        while True:
            assert self._process is not None
            code = await self._process.wait()
            self.restarts += 1
            _LOGGER.error("Mosquitto exited with %s; restarting (%d)", code, self.restarts)
            await asyncio.sleep(min(30.0, 0.5 * 2 ** min(self.restarts, 6)))
            await self._spawn(config)

    async def async_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
