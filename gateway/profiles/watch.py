"""Profiles follow their folders: a file added, changed or removed is loaded without a restart.

The folders are polled (file names, sizes and modification times) rather than watched
through inotify: profile folders are few and small, polling works the same on every
platform and file system (a bind mount, an SD card), and a burst of copies settles
into one reload. Each change replaces the set in place and fires `ProfilesChanged`;
the discovery inbox re-matches its waiting items on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from linli.firmware_profiles import PROFILE_DIR
from linli.gateway.bus import EventBus
from linli.gateway.context import Context
from linli.gateway.events import ProfilesChanged
from linli.gateway.profiles.loader import ProfilesDelta, ProfileSet, load_profiles, profile_files

_LOGGER = logging.getLogger(__name__)
DEFAULT_INTERVAL_S: Final = 2.0

Signature = tuple[tuple[str, int, int], ...]


def folder_signature(paths: Iterable[Path]) -> Signature:
    """What the profile files look like on disk now (name, size, mtime); blocking I/O."""
    entries = []
    for path in profile_files(paths):
        with contextlib.suppress(OSError):  # removed between listing and stat: next poll sees it
            stat = path.stat()
            entries.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


class ProfileWatcher:
    """Reloads `profiles` from the shipped folder and `extra_paths` whenever their files change."""

    def __init__(
        self,
        profiles: ProfileSet,
        bus: EventBus,
        extra_paths: Iterable[Path] = (),
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self._profiles = profiles
        self._bus = bus
        self._extra = [Path(p) for p in extra_paths]
        self.interval_s = interval_s
        self._signature: Signature | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.reloads = 0

    @property
    def _paths(self) -> list[Path]:
        return [PROFILE_DIR, *self._extra]

    async def async_load(self) -> ProfilesDelta:
        """Load (or reload) now; fires ProfilesChanged when anything changed."""
        async with self._lock:
            signature = await asyncio.to_thread(folder_signature, self._paths)
            loaded = await asyncio.to_thread(load_profiles, self._extra)
            self._signature = signature
            delta = self._profiles.replace_with(loaded)
            if delta:
                self.reloads += 1
                self._bus.fire(
                    ProfilesChanged(
                        added=list(delta.added),
                        changed=list(delta.changed),
                        removed=list(delta.removed),
                        errors=len(loaded.errors),
                        context=Context(origin="profiles"),
                    )
                )
            return delta

    async def async_start(self) -> None:
        """Load the profiles, then keep following their folders."""
        delta = await self.async_load()
        _LOGGER.debug("profiles: %d loaded (%d added)", len(self._profiles), len(delta.added))
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._poll(), name="linli-profile-watch")

    async def async_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                signature = await asyncio.to_thread(folder_signature, self._paths)
                if signature == self._signature:
                    continue
                delta = await self.async_load()
            except Exception:  # a bad disk must not end following the folders
                _LOGGER.exception("profiles: reading the profile folders failed; retrying")
                continue
            if delta:
                _LOGGER.info(
                    "profiles reloaded: %d added, %d changed, %d removed, %d refused (%d in all)",
                    len(delta.added),
                    len(delta.changed),
                    len(delta.removed),
                    len(self._profiles.errors),
                    len(self._profiles),
                )
