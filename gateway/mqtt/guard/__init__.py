"""linli_guard, Linli's access-control plugin for Mosquitto: built here, read back here.

Mosquitto's own password and ACL files refuse quietly; the plugin (linli_guard.c, plugin
API v5) makes the same decisions from one rules file, counts every refusal per client,
refuses a user name's logins from an address after 10 wrong passwords within a minute
(for 5 minutes; other users behind the same address are not locked out),
and writes its counts to a stats file. It is compiled on first use into the broker's
folder (a C compiler, Mosquitto's headers and OpenSSL's: Debian `gcc mosquitto-dev
libmosquitto-dev libssl-dev`). Without them the gateway falls back to the password and
ACL files, which enforce the same rules but cannot count refusals, and says so.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

_LOGGER = logging.getLogger(__name__)
SOURCE: Final = Path(__file__).with_name("linli_guard.c")
HEADERS: Final = ("mosquitto_broker.h", "mosquitto_plugin.h", "mosquitto.h", "openssl/evp.h")


class GuardUnavailable(RuntimeError):
    """The plugin cannot be built here; the message says what is missing."""


def build(folder: Path) -> Path:
    """The compiled plugin in `folder` (built once per source version). Blocking."""
    code = SOURCE.read_bytes()
    target = folder / f"linli_guard-{hashlib.sha256(code).hexdigest()[:12]}.so"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise GuardUnavailable("no C compiler (Debian: apt-get install gcc)")
    for header in HEADERS:
        if not any((Path(base) / header).exists() for base in ("/usr/include", "/usr/local/include")):
            raise GuardUnavailable(
                f"{header} is missing (Debian: apt-get install mosquitto-dev libmosquitto-dev libssl-dev)"
            )
    tmp = target.with_suffix(".tmp.so")
    result = subprocess.run(
        [compiler, "-O2", "-fPIC", "-shared", "-o", str(tmp), str(SOURCE), "-lcrypto"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise GuardUnavailable(f"compiling {SOURCE.name} failed: {result.stderr.strip()[:500]}")
    tmp.replace(target)
    for old in folder.glob("linli_guard-*.so"):
        if old != target:
            old.unlink(missing_ok=True)
    return target


@dataclass(slots=True)
class GuardStats:
    """What the plugin refused, per client (publishes, subscriptions) and per address (logins)."""

    denied_publishes: dict[str, tuple[str, int]] = field(default_factory=dict)  # client → (user, n)
    denied_subscriptions: dict[str, tuple[str, int]] = field(default_factory=dict)
    refused_logins: dict[str, int] = field(default_factory=dict)  # address → n


def parse_stats(text: str) -> GuardStats:
    stats = GuardStats()
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        try:
            if kind in ("denied-pub", "denied-sub"):
                # a client id may hold spaces; the user name (ours) and the count do not
                client, user, count = rest.rsplit(" ", 2)
                table = stats.denied_publishes if kind == "denied-pub" else stats.denied_subscriptions
                table[client] = (user, int(count))
            elif kind == "refused":
                address, count = rest.rsplit(" ", 1)
                stats.refused_logins[address] = int(count)
        except ValueError:
            continue
    return stats
