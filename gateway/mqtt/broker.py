"""The broker the gateway connects to, in one of three modes (chosen by measurement: docs/broker.md).

* `embedded` (default when Mosquitto is not installed): rumqttd, the Rust broker the
  `iotcore` wheel compiles, in a process of its own — zero install, MQTT 3.1.1 (and 5 on
  `mqtt.mqtt5_port`), correct retained messages, persistent sessions, wills. It has no
  per-client ACL, so it listens on loopback only and the config refuses anything else.
* `mosquitto` (default when installed): a managed Mosquitto whose per-device rules come
  from the gateway's database (gateway/mqtt/acl.py), enforced and counted by Linli's plugin
  (gateway/mqtt/guard) or, where it cannot be built, by password and ACL files; reloaded on
  every credential change without dropping anyone; the mode for homes on a network.
* `external`: nothing to run; the link connects to `mqtt.url`.

Both managed brokers outlive a gateway that dies and are re-attached by the next one
(gateway/mqtt/broker_process.py), so what they acknowledged to a device is not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import hashlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from linli.gateway.keyfile import load_or_create
from linli.gateway.mqtt import guard
from linli.gateway.mqtt.acl import Principal, acl_file, guard_file, hash_password, password_file
from linli.gateway.mqtt.broker_process import BrokerError, BrokerProcess, check_port_free, is_loopback
from linli.gateway.mqtt.credentials import MqttCredentials
from linli.gateway.mqtt.guard import GuardStats, parse_stats
from linli.gateway.mqtt.tls import BrokerTls, ensure_certificates

__all__ = ["Broker", "BrokerError", "EmbeddedBroker", "MosquittoBroker", "check_port_free", "is_loopback"]

_LOGGER = logging.getLogger(__name__)

GATEWAY_USER: Final = "linli-gateway"
# The broker refuses packets far beyond the gateway's own payload limit (protecting its
# memory), but lets moderately oversized ones through so the gateway can quarantine them.
_PACKET_FLOOR: Final = 262_144
_MAX_TRACKED_CLIENTS: Final = 1000
# An anomaly (ETSI EN 303 645 5.10): this many refusals for one client or address within a minute
ANOMALY_BURST: Final = 5
ANOMALY_WINDOW_S: Final = 60.0
ANOMALY_KEEP: Final = 100


class Broker(Protocol):
    host: str
    port: int

    async def async_start(self) -> None: ...
    async def async_stop(self) -> None: ...
    def stats(self) -> dict[str, object]: ...


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_private(path: Path, text: str) -> None:
    """Write a file only the gateway's user can read, atomically (a reload never sees half)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


class EmbeddedBroker:
    """rumqttd (from the iotcore wheel) in a child process, on loopback only."""

    def __init__(
        self, host: str, port: int, data_dir: Path, *, max_payload_bytes: int = 65536, mqtt5_port: int = 0
    ) -> None:
        if not is_loopback(host):
            raise BrokerError(
                f"the embedded broker has no per-device access control, so it listens on loopback "
                f"only, not {host!r}: set mqtt.broker = 'mosquitto' for homes on a network"
            )
        self.host = host
        self.port = port
        self.mqtt5_port = mqtt5_port
        self.folder = data_dir / "broker"
        self.max_packet = max(_PACKET_FLOOR, max_payload_bytes * 4)
        self.process: BrokerProcess | None = None

    def config_text(self) -> str:
        listeners = [("v4", 1, self.port)] + ([("v5", 1, self.mqtt5_port)] if self.mqtt5_port else [])
        text = [
            "# written by Linli on every start; edit linli's config instead",
            "id = 0",
            "[router]",
            "id = 0",
            "max_connections = 10010",
            "max_outgoing_packet_count = 200",
            "max_segment_size = 4194304",
            "max_segment_count = 10",
        ]
        for version, index, port in listeners:
            text += [
                f"[{version}.{index}]",
                f'name = "{version}-{index}"',
                f'listen = "{self.host}:{port}"',
                "next_connection_delay_ms = 1",
                f"[{version}.{index}.connections]",
                "connection_timeout_ms = 60000",
                f"max_payload_size = {self.max_packet}",
                "max_inflight_count = 100",
                "dynamic_filters = true",
            ]
        return "\n".join(text) + "\n"

    async def async_start(self) -> None:
        try:
            import iotcore  # noqa: F401  (only to say clearly when it is missing)
        except ImportError:
            raise BrokerError(
                "the embedded broker needs the 'iotcore' package: pip install iotcore "
                "(or reinstall Linli), or set mqtt.broker = 'mosquitto'"
            ) from None
        config = self.folder / "rumqttd.toml"
        text = self.config_text()
        await asyncio.to_thread(self.folder.mkdir, mode=0o700, parents=True, exist_ok=True)
        await asyncio.to_thread(_write_private, config, text)
        self.process = BrokerProcess(
            name="embedded MQTT broker (rumqttd)",
            folder=self.folder,
            command=[sys.executable, "-m", "linli.gateway.mqtt.rumqttd_child", str(config)],
            identity=str(config),
            settings_hash=_digest(text),
            host=self.host,
            port=self.port,
        )
        await self.process.async_start()
        _LOGGER.info(
            "embedded MQTT broker (rumqttd, pid %d) on %s:%d%s; loopback only, no per-device ACL",
            self.process.pid,
            self.host,
            self.port,
            f", MQTT 5 on {self.mqtt5_port}" if self.mqtt5_port else "",
        )

    async def async_stop(self) -> None:
        if self.process is not None:
            await self.process.async_stop()

    def stats(self) -> dict[str, object]:
        process = self.process
        return {
            "kind": "embedded",
            "engine": "rumqttd",
            "pid": process.pid if process else None,
            "reattached": bool(process and process.reattached),
            "restarts": process.restarts if process else 0,
            "access_control": "none (loopback only)",
        }


def _read_if_changed(path: Path, seen: float) -> tuple[str | None, float]:
    try:
        mtime = path.stat().st_mtime
        if mtime == seen:
            return None, seen
        return path.read_text(encoding="utf-8", errors="replace")[:1_000_000], mtime
    except OSError:
        return None, seen


def _read_new(path: Path, position: int) -> tuple[bytes, int]:
    """What the log gained since `position` (at most 1 MiB); the file is kept under 8 MiB."""
    try:
        size = path.stat().st_size
        if size < position:
            position = 0
        if size == position:
            return b"", position
        with open(path, "rb") as log:
            log.seek(position)
            chunk = log.read(min(size - position, 1 << 20))
        position += len(chunk)
        if size > 8 << 20:  # Mosquitto writes with O_APPEND, so truncating is safe
            os.truncate(path, 0)
            position = 0
        return chunk, position
    except OSError:
        return b"", position


_REFUSED = re.compile(rb"Client (\S+) disconnected, not authori[sz]ed")
_CONNECTION = re.compile(rb"New connection from (\S+?)(?::\d+)? on port")


@dataclass(slots=True)
class _Window:
    start: float
    base: int
    last_total: int
    reported: bool = False


class MosquittoBroker:
    """A managed Mosquitto: its access rules from the database (through the linli_guard plugin,
    or password and ACL files where the plugin cannot be built), reloaded on every change."""

    def __init__(
        self,
        host: str,
        port: int,
        data_dir: Path,
        binary: str = "mosquitto",
        *,
        credentials: MqttCredentials | None = None,
        discovery_prefix: str = "homeassistant",
        max_payload_bytes: int = 65536,
        tls: dict[str, Any] | None = None,
        community: str = "community",
    ) -> None:
        self.host = host
        self.tls_settings = tls if tls and tls.get("enabled") else None
        self.tls: BrokerTls | None = None
        self.community = community
        self.guard: Path | None = None
        self.guard_problem: str | None = "not started"
        self.guard_stats = GuardStats()
        self.anomalies: deque[dict[str, Any]] = deque(maxlen=ANOMALY_KEEP)
        self._windows: dict[str, _Window] = {}
        self.port = port
        self.data_dir = data_dir
        self.binary = binary
        self.folder = data_dir / "mosquitto"
        self.credentials = credentials
        self.prefix = discovery_prefix
        self.max_packet = max(_PACKET_FLOOR, max_payload_bytes * 4)
        self.process: BrokerProcess | None = None
        self.gateway_password: str | None = None
        self._gateway_hash: str | None = None
        self.reloads = 0
        self.refused: Counter[str] = Counter()  # refused logins per client id or address (bounded)
        self._last_address: str | None = None
        self._reload: asyncio.TimerHandle | None = None
        self._watch: asyncio.Task[None] | None = None
        self._unlisten: Callable[[], object] | None = None

    @property
    def restarts(self) -> int:
        return self.process.restarts if self.process else 0

    def config_text(self) -> str:
        folder = self.folder
        # Mosquitto started as root drops to the 'mosquitto' user, which could not write the
        # gateway's private folder: its persistence would vanish silently. It runs as the
        # gateway's own user instead (run the gateway as an unprivileged user).
        user = getpass.getuser()
        return (
            "# written by Linli on every start; edit linli's config instead\n"
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"  # anonymous clients: discovery configs only
            + self._access_config()
            + f"user {user}\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "autosave_interval 60\n"
            "persistent_client_expiration 14d\n"
            "max_queued_messages 100000\n"
            f"max_packet_size {self.max_packet}\n"
            "log_dest stderr\n"
            "log_timestamp true\n"
            "log_type error\nlog_type warning\nlog_type notice\n" + self._tls_listener()
        )

    def _access_config(self) -> str:
        folder = self.folder
        if self.guard is not None:
            return (
                f"plugin {self.guard}\n"
                f"plugin_opt_access_file {folder}/access\n"
                f"plugin_opt_stats_file {folder}/guard-stats\n"
            )
        return f"password_file {folder}/passwd\nacl_file {folder}/acl\n"

    def _tls_listener(self) -> str:
        if self.tls is None or self.tls_settings is None:
            return ""
        return (
            f"listener {self.tls_settings['port']} {self.tls_settings['host']}\n"
            f"cafile {self.tls.ca_file}\ncertfile {self.tls.cert_file}\nkeyfile {self.tls.key_file}\n"
            "tls_version tlsv1.2\n"
        )

    async def _prepare_tls(self) -> None:
        settings = self.tls_settings
        if settings is None:
            return
        if "cert_file" in settings:
            self.tls = BrokerTls(
                Path(settings["ca_file"]), Path(settings["cert_file"]), Path(settings["key_file"])
            )
            return
        names = list(settings.get("names") or []) or [socket.gethostname(), "127.0.0.1"]
        self.tls = await asyncio.to_thread(ensure_certificates, self.folder / "tls", names, self.community)

    def principals(self) -> list[Principal]:
        assert self.gateway_password is not None
        if self._gateway_hash is None:
            # The same hash on every start: a reload disconnects every user whose hash changed,
            # and a new salt would change it. The salt comes from the secret itself, which is
            # 256 random bits: a salt protects guessable passwords, and this one is not.
            salt = hashlib.sha256(b"linli-gateway-salt:" + self.gateway_password.encode()).digest()[:12]
            self._gateway_hash = hash_password(self.gateway_password, salt=salt)
        gateway = Principal(
            username=GATEWAY_USER,
            kind="gateway",
            household_id=None,
            publish=("#",),
            subscribe=("#",),
            password_hash=self._gateway_hash,
        )
        devices = self.credentials.principals() if self.credentials is not None else []
        return [gateway, *devices]

    def _write_access_files(self) -> None:
        principals = self.principals()
        if self.guard is not None:
            _write_private(self.folder / "access", guard_file(principals, self.prefix))
        else:
            _write_private(self.folder / "passwd", password_file(principals))
            _write_private(self.folder / "acl", acl_file(principals, self.prefix))

    async def _prepare_guard(self) -> None:
        try:
            self.guard = await asyncio.to_thread(guard.build, self.folder)
            self.guard_problem = None
        except (guard.GuardUnavailable, OSError, subprocess.SubprocessError) as exc:
            self.guard, self.guard_problem = None, str(exc)
            _LOGGER.warning(
                "Mosquitto's access control from password and ACL files: refused publishes will not "
                "be counted per client, nor wrong passwords rate-limited, because the linli_guard "
                "plugin cannot be built here: %s",
                exc,
            )

    async def async_start(self) -> None:
        path = shutil.which(self.binary)
        if path is None:
            raise BrokerError(
                f"mqtt.broker is 'mosquitto' but {self.binary!r} is not installed: "
                "install it (Debian: apt-get install mosquitto) or use mqtt.broker = 'embedded'"
            )
        self.binary = path
        secret, _ = await asyncio.to_thread(load_or_create, self.data_dir / "secrets" / "mqtt-gateway")
        self.gateway_password = secret.hex()
        await asyncio.to_thread(self.folder.mkdir, mode=0o700, parents=True, exist_ok=True)
        await self._prepare_tls()
        await self._prepare_guard()
        config = self.folder / "mosquitto.conf"
        text = self.config_text()
        await asyncio.to_thread(_write_private, config, text)
        await asyncio.to_thread(self._write_access_files)
        if not os.access(self.folder, os.W_OK):
            _LOGGER.error(
                "Mosquitto cannot write its persistence folder %s: retained messages "
                "and queued sessions will not survive a restart",
                self.folder,
            )
        self.process = BrokerProcess(
            name="Mosquitto",
            folder=self.folder,
            command=[path, "-c", str(config)],
            identity=str(config),
            settings_hash=_digest(text),
            host=self.host,
            port=self.port,
        )
        await self.process.async_start()
        if self.process.reattached:
            self.process.signal(signal.SIGHUP)  # the access files were just rewritten
        if self.credentials is not None:
            self._unlisten = self.credentials.on_change(self.schedule_reload)
            if self.tls is not None and self.tls_settings is not None:
                self.credentials.tls = {"port": self.tls_settings["port"], "ca_pem": self.tls.ca_pem()}
        self._watch = asyncio.create_task(self._watch_log(), name="linli-mosquitto-log")
        _LOGGER.info("Mosquitto (%s, pid %d) on %s:%d", path, self.process.pid, self.host, self.port)

    def schedule_reload(self) -> None:
        """Rewrite the access files and reload them soon (a burst of changes is one reload)."""
        if self._reload is None:
            self._reload = asyncio.get_running_loop().call_later(0.1, self._start_reload)

    def _start_reload(self) -> None:
        self._reload = None
        asyncio.get_running_loop().create_task(self.async_reload(), name="linli-mosquitto-reload")

    async def async_reload(self) -> None:
        """New password and ACL files, then SIGHUP: Mosquitto keeps every connection whose
        credentials still hold and disconnects the ones that no longer do."""
        if self.process is None:
            return
        await asyncio.to_thread(self._write_access_files)
        self.process.signal(signal.SIGHUP)
        self.reloads += 1

    async def _watch_log(self) -> None:
        """Errors to our log; refused logins counted per client (ETSI EN 303 645 5.10)."""
        assert self.process is not None
        path = self.process.logfile
        position = path.stat().st_size if path.exists() else 0
        stats_path, stats_seen = self.folder / "guard-stats", 0.0
        while True:
            await asyncio.sleep(1.0)
            chunk, position = await asyncio.to_thread(_read_new, path, position)
            for line in chunk.splitlines():
                self._take_log_line(line)
            if self.guard is not None:
                text, stats_seen = await asyncio.to_thread(_read_if_changed, stats_path, stats_seen)
                if text is not None:
                    self.take_guard_stats(parse_stats(text))

    def take_guard_stats(self, stats: GuardStats, now: float | None = None) -> None:
        """New totals from the plugin: bursts of refusals become anomalies, with the client."""
        now = time.time() if now is None else now
        self.guard_stats = stats
        for client, (user, total) in stats.denied_publishes.items():
            self._watch_burst("refused_publishes", client, user, total, now)
        for client, (user, total) in stats.denied_subscriptions.items():
            self._watch_burst("refused_subscriptions", client, user, total, now)
        for address, total in stats.refused_logins.items():
            self._watch_burst("refused_logins", address, None, total, now)
        if len(self._windows) > 4 * _MAX_TRACKED_CLIENTS:
            self._windows.clear()

    def _watch_burst(self, kind: str, who: str, user: str | None, total: int, now: float) -> None:
        key = f"{kind} {who}"
        window = self._windows.get(key)
        if window is None or now - window.start > ANOMALY_WINDOW_S or total < window.last_total:
            # a new minute, counted from the total at its start (a restarted broker counts from 0)
            base = 0 if window is None or total < window.last_total else window.last_total
            window = _Window(start=now, base=base, last_total=total)
            self._windows[key] = window
        window.last_total = total
        if window.reported or total - window.base < ANOMALY_BURST:
            return
        window.reported = True
        anomaly = {
            "ts": now,
            "kind": kind,
            "client": who,
            "user": None if user in (None, "-") else user,
            "count": total - window.base,
            "total": total,
        }
        self.anomalies.append(anomaly)
        _LOGGER.warning(
            "MQTT anomaly: %s from %s%s: %d within a minute (%d in all)",
            kind.replace("_", " "),
            who,
            f" (user {anomaly['user']})" if anomaly["user"] else "",
            anomaly["count"],
            total,
        )

    def _take_log_line(self, line: bytes) -> None:
        if match := _CONNECTION.search(line):
            self._last_address = match.group(1).decode(errors="replace")[:64]
            return
        if match := _REFUSED.search(line):
            # Mosquitto names the client only once it is authenticated; a refused CONNECT
            # is "<unknown>", so it is known by the address that just connected.
            client = match.group(1).decode(errors="replace")[:64]
            if client == "<unknown>":
                client = self._last_address or client
            if client in self.refused or len(self.refused) < _MAX_TRACKED_CLIENTS:
                self.refused[client] += 1
                if self.guard is None:  # the plugin counts them itself, better
                    self._watch_burst("refused_logins", client, None, self.refused[client], time.time())
            return
        if b"Error" in line or b"error" in line:
            _LOGGER.error("Mosquitto: %s", line.decode(errors="replace")[:300])

    async def async_stop(self) -> None:
        if self._reload is not None:
            self._reload.cancel()
            self._reload = None
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        if self.process is not None:
            await self.process.async_stop()

    def stats(self) -> dict[str, object]:
        process = self.process
        return {
            "kind": "mosquitto",
            "engine": "mosquitto",
            "pid": process.pid if process else None,
            "reattached": bool(process and process.reattached),
            "restarts": self.restarts,
            "reloads": self.reloads,
            "access_control": "per-device ACL",
            "guard": self.guard is not None,
            "guard_problem": self.guard_problem,
            "refused_logins": dict(
                sorted(self.guard_stats.refused_logins.items(), key=lambda kv: -kv[1])[:20]
                if self.guard is not None
                else self.refused.most_common(20)
            ),
            "refused_publishes": {
                client: {"user": None if user == "-" else user, "count": n}
                for client, (user, n) in sorted(
                    self.guard_stats.denied_publishes.items(), key=lambda kv: -kv[1][1]
                )[:20]
            },
            "anomalies": list(self.anomalies)[-20:],
            "tls_port": self.tls_settings["port"] if self.tls and self.tls_settings else None,
        }
