"""A broker in a process of its own that outlives the gateway, and is found again.

The broker runs outside the gateway's event loop and, deliberately, outside its
lifetime: a gateway killed with SIGKILL leaves the broker running, still holding
the gateway's persistent session and every QoS 1 message acknowledged to a device
since. The next gateway finds it through a pidfile and re-attaches, so those
messages are delivered to it instead of lost. A leftover broker whose listener
settings differ is replaced cleanly (SIGTERM: Mosquitto saves its state first).
A port held by anything else is an error that says so.

Start-up order in `async_start`:
1. the pidfile names a live process whose command line holds our config path and
   the same settings hash → re-attach;
2. it names one of ours with other settings → terminate it, then spawn;
3. otherwise spawn, in its own session (a Ctrl-C for the gateway is not one for
   the broker), with its output in a log file (no pipe to break when we die).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from linli.common.backoff import backoff_delay

_LOGGER = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The broker could not be started; the message says why and what to do."""


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise BrokerError(
                    f"MQTT port {host}:{port} is already in use by a process that is not this "
                    "gateway's broker (another broker or gateway?): stop it, or choose another "
                    "port with --mqtt-port / mqtt.port"
                ) from None
            raise BrokerError(f"cannot bind MQTT port {host}:{port}: {exc.strerror}") from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _alive(pid: int) -> bool:
    """True for a running process (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat_file:
            state = stat_file.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return [part.decode(errors="replace") for part in cmdline.read().split(b"\0") if part]
    except OSError:
        return []


class BrokerProcess:
    """Spawns, finds again, supervises and stops one broker process."""

    def __init__(
        self,
        *,
        name: str,
        folder: Path,
        command: Sequence[str],
        identity: str,
        settings_hash: str,
        host: str,
        port: int,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.folder = folder
        self.command = list(command)
        self.identity = identity  # a string only our broker's command line holds: its config path
        self.settings_hash = settings_hash
        self.host = host
        self.port = port
        self.pidfile = folder / "broker.pid"
        self.logfile = folder / "broker.log"
        self.pid: int | None = None
        self.reattached = False
        self.restarts = 0
        self._child: subprocess.Popen[bytes] | None = None
        self._task: asyncio.Task[None] | None = None
        self._on_restart = on_restart

    # -- start -------------------------------------------------------------------

    async def async_start(self) -> None:
        leftover = await asyncio.to_thread(self._leftover)
        if leftover is not None:
            pid, same = leftover
            if same:
                self.pid, self.reattached = pid, True
                _LOGGER.warning(
                    "%s: re-attached to the broker a previous gateway left running (pid %d); "
                    "the messages it kept for this gateway are delivered now",
                    self.name,
                    pid,
                )
            else:
                _LOGGER.warning(
                    "%s: replacing the broker a previous gateway left running (pid %d) "
                    "because its listener settings changed",
                    self.name,
                    pid,
                )
                await asyncio.to_thread(self._terminate, pid)
        if self.pid is None:
            check_port_free(self.host, self.port)
            await asyncio.to_thread(self._spawn)
        await self._wait_listening()
        self._task = asyncio.create_task(self._supervise(), name=f"linli-{self.name}")

    def _leftover(self) -> tuple[int, bool] | None:
        """(pid, same settings) of a broker an earlier gateway left running, if any."""
        try:
            record = json.loads(self.pidfile.read_text(encoding="utf-8"))
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not _alive(pid) or self.identity not in _cmdline(pid):
            return None  # gone, or the pid now belongs to some other program: never signal it
        return pid, record.get("settings") == self.settings_hash

    def _spawn(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.logfile, "ab") as log:
            os.chmod(self.logfile, 0o600)
            self._child = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # not in the gateway's process group: survives its Ctrl-C and death
                close_fds=True,
            )
        self.pid = self._child.pid
        self.reattached = False
        tmp = self.pidfile.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": self.pid, "settings": self.settings_hash}), encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(self.pidfile)

    async def _wait_listening(self, timeout: float = 15.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if not self.alive():
                raise BrokerError(
                    f"{self.name} exited at start: {self.log_tail() or 'no output'} (log: {self.logfile})"
                )
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise BrokerError(f"{self.name} did not listen on {self.host}:{self.port} within {timeout}s")

    def log_tail(self, nbytes: int = 600) -> str:
        try:
            with open(self.logfile, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - nbytes))
                return log.read().decode(errors="replace").strip()
        except OSError:
            return ""

    # -- running -----------------------------------------------------------------

    def alive(self) -> bool:
        if self._child is not None:
            return self._child.poll() is None
        return self.pid is not None and _alive(self.pid)

    def signal(self, signum: int) -> None:
        if self.pid is not None and self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    async def _supervise(self) -> None:
        attempt = 0
        while True:
            await asyncio.sleep(0.5)
            if self.alive():
                continue
            self.restarts += 1
            _LOGGER.error(
                "%s (pid %s) exited: %s; restarting (%d)",
                self.name,
                self.pid,
                self.log_tail(300) or "no output",
                self.restarts,
            )
            await asyncio.sleep(backoff_delay(attempt, base=0.5, cap=30.0, jitter=False))
            attempt += 1
            self.pid, self._child = None, None
            try:
                check_port_free(self.host, self.port)
                await asyncio.to_thread(self._spawn)
                await self._wait_listening()
            except (BrokerError, OSError) as exc:
                _LOGGER.error("%s could not be restarted: %s", self.name, exc)
                continue
            attempt = 0
            if self._on_restart is not None:
                self._on_restart()

    # -- stop --------------------------------------------------------------------

    async def async_stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.pid is not None:
            await asyncio.to_thread(self._terminate, self.pid)
        with contextlib.suppress(OSError):
            self.pidfile.unlink()
        self.pid, self._child = None, None

    def _terminate(self, pid: int, grace_s: float = 10.0) -> None:
        """SIGTERM, wait for it to save and exit, SIGKILL after `grace_s`. Blocking."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if self._child is not None and self._child.pid == pid:
                if self._child.poll() is not None:
                    return
            elif not _alive(pid):
                return
            time.sleep(0.02)
        _LOGGER.error("%s (pid %d) ignored SIGTERM for %.0fs; killing it", self.name, pid, grace_s)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if self._child is not None and self._child.pid == pid:
            self._child.wait()
