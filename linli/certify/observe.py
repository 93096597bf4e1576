"""Seeing what the box did, without asking the adapter under test.

A check proves something only if it looks at the box, not at what the adapter
says the box did. Two observers, one shape (the contract's kinds):

* `SimObserver`, for a simulated box: reads the box's own state from the box
  (`GET /_sim/state`, served by the box next to its protocol endpoints), and,
  while the box is dark, its power flag in-process (a box in deep standby
  answers nothing, which is the point);
* `DriverObserver`, for a live box: a fresh read from the box through the
  adapter's driver (its state is not the one the adapter remembers, but it is
  the adapter's own reading — the report says so).

And the resources a process holds, to prove that `stop` leaves nothing behind:
its asyncio tasks, its open file descriptors, its TCP connections to a port.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from linli.gateway.stb.driver import READ_KINDS


class Observer(Protocol):
    #: True when the observer reads the box without the adapter under test.
    independent: bool
    #: Can it see the keys the box received (not only their effect)?
    sees_keys: bool

    async def async_read(self) -> dict[str, Any]:
        """The box's state now: kind → the contract's shape (`keys`: the keys it received)."""
        ...

    async def async_close(self) -> None: ...


def _view(screen: dict[str, Any]) -> dict[str, Any]:
    overlay = screen.get("overlay") or {}
    return {
        "power": {"on": bool(screen.get("power"))},
        "keys": list(screen.get("keys") or []),
        "channel": screen.get("channel"),
        "app": {"running": screen.get("app"), "url": screen.get("app_url")},
        "media": {"state": screen.get("media_state"), "url": screen.get("media_url")},
        "volume": {"level": screen.get("volume"), "muted": screen.get("muted")},
        "notify": {"text": overlay.get("text") or None},
        "portal": {"open": screen.get("portal_url") is not None, "url": screen.get("portal_url")},
        "identity": {"mac": screen.get("mac"), "udn": screen.get("udn")},
    }


class SimObserver:
    """A simulated box seen from outside the adapter: its own account of its screen."""

    independent = True
    sees_keys = True

    def __init__(self, box: Any) -> None:
        self.box = box
        self._session: aiohttp.ClientSession | None = None

    @property
    def requests(self) -> int:
        """How many protocol requests the box has answered (to prove a refusal never reached it)."""
        return int(getattr(self.box, "requests", 0))

    async def async_read(self) -> dict[str, Any]:
        if self._session is None:
            # No keep-alive: the kit's own connections must not count as the adapter's after stop.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True), timeout=aiohttp.ClientTimeout(total=2)
            )
        try:
            async with self._session.get(f"{self.box.base_url}/_sim/state") as response:
                screen = await response.json()
        except (aiohttp.ClientError, TimeoutError, OSError):
            # Dark (deep standby) or unplugged: nothing answers; the box's own power flag tells.
            screen = {**self.box.screen.as_dict(), "power": self.box.powered}
        return _view(screen)

    async def async_close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class DriverObserver:
    """A live box read afresh through the adapter's driver (not from its remembered state)."""

    independent = False
    sees_keys = False

    def __init__(self, adapter: Any, device_id: str, provides: frozenset[str]) -> None:
        self._adapter = adapter
        self._device_id = device_id
        self._kinds = READ_KINDS & provides

    @property
    def requests(self) -> None:
        return None

    async def async_read(self) -> dict[str, Any]:
        fleet = getattr(self._adapter, "fleet", None)
        box = fleet.boxes.get(self._device_id) if fleet is not None else None
        if box is None:
            return {}
        try:
            return dict(await box.driver.async_read(self._kinds))
        except Exception:
            return {"power": {"on": False}}

    async def async_close(self) -> None:
        return None


# -- what a process holds ---------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Holdings:
    tasks: frozenset[str] = field(default_factory=frozenset)  # "name (coroutine#id)"
    #: What each open descriptor is ("/dev/null", "socket:[123]"), counted: a descriptor closed and
    #: its number reused for the same kind of file is not mistaken for the old one.
    fds: Counter[str] = field(default_factory=Counter)

    def minus(self, before: Holdings) -> Holdings:
        return Holdings(tasks=self.tasks - before.tasks, fds=self.fds - before.fds)

    def __bool__(self) -> bool:
        return bool(self.tasks or self.fds)

    def describe(self) -> str:
        parts = []
        if self.tasks:
            parts.append(f"{len(self.tasks)} task(s): {', '.join(sorted(self.tasks)[:3])}")
        if self.fds:
            files = [f"{what} ×{n}" if n > 1 else what for what, n in sorted(self.fds.items())[:3]]
            parts.append(f"{self.fds.total()} open file(s)/socket(s): {', '.join(files)}")
        return "; ".join(parts)


def _task_label(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
    where = getattr(code, "co_qualname", None) or getattr(coro, "__qualname__", type(coro).__name__)
    return f"{task.get_name()} ({where}#{id(task):x})"


def _fds() -> Counter[str]:
    folder = Path("/proc/self/fd")
    found: Counter[str] = Counter()
    if not folder.is_dir():
        return found
    for entry in os.listdir(folder):
        try:
            found[os.readlink(folder / entry)] += 1
        except OSError:
            continue  # closed while listing (the listing's own descriptor, for one)
    return found


def holdings() -> Holdings:
    current = asyncio.current_task()
    tasks = frozenset(_task_label(t) for t in asyncio.all_tasks() if t is not current and not t.done())
    return Holdings(tasks=tasks, fds=_fds())


def connections_to(port: int) -> int | None:
    """This process's TCP connections to `port` on any address (None where /proc cannot tell)."""
    fd_folder = Path("/proc/self/fd")
    if not fd_folder.is_dir():
        return None
    inodes = set()
    for entry in os.listdir(fd_folder):
        try:
            target = os.readlink(fd_folder / entry)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            # remote address is hex "IP:PORT"; state 0A is LISTEN (not a connection)
            if len(cols) > 9 and cols[3] != "0A" and int(cols[2].rsplit(":", 1)[1], 16) == port:
                if cols[9] in inodes:
                    count += 1
    return count
