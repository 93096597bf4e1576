"""Component `adapters`: finds the installed adapters, starts each in isolation, and says how each is.

Every adapter found (catalog.py) ends up in one state, with a reason a person
can act on:

    running     started; its devices take commands
    failed      its async_start raised or timed out; stopped again, nothing of it left behind
    crashed     a background job of it raised while running; stopped, nothing left behind
    disabled    bad manifest, import error, bad settings, or turned off in the configuration
    not_allowed its manifest is not in adapters.allowed (allowlist.py): found, never imported
    component   run by the gateway itself as a configured component (config "components")
    stopped     stopped on request (restart, conformance kit)

A broken adapter never stops the gateway or the other adapters. One that failed
or crashed is started again by itself, with exponential backoff (linli/common/backoff.py,
from RESTART_BASE_S up to RESTART_CAP_S): its state stays `failed` / `crashed`
with the reason, and `retry_at` says when the next attempt is — "not ready yet"
is retried, not a final verdict (Home Assistant's config entries do the same).
An adapter that had run for RESTART_STABLE_S starts its backoff afresh. Stopping
or starting an adapter by hand cancels the pending attempt. The states are what
`linli adapters`, GET /api/v1/adapters and /manage show.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from linli.common.backoff import backoff_delay
from linli.gateway.plugins.allowlist import SHIPPED, parse_allowed, refusal
from linli.gateway.plugins.api import AdapterApi
from linli.gateway.plugins.catalog import AdapterEntry, discover
from linli.gateway.plugins.manifest import ManifestError, settings_for

if TYPE_CHECKING:
    from linli.gateway.component import ComponentApi

_LOGGER = logging.getLogger(__name__)
START_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 10.0
RESTART_BASE_S = 5.0  # the first automatic restart after a failure or crash (tests shorten it)
RESTART_CAP_S = 300.0
RESTART_STABLE_S = 600.0  # running this long, a crash counts as the first one again


class AdapterState(StrEnum):
    RUNNING = "running"
    FAILED = "failed"
    CRASHED = "crashed"
    DISABLED = "disabled"
    NOT_ALLOWED = "not_allowed"
    COMPONENT = "component"
    STOPPED = "stopped"


@dataclass(slots=True, kw_only=True)
class AdapterSlot:
    """One adapter as the host knows it."""

    entry: AdapterEntry
    state: AdapterState = AdapterState.STOPPED
    reason: str | None = None
    since: float = field(default_factory=time.time)
    instance: Any = None
    api: AdapterApi | None = None
    starts: int = 0
    restarts: int = 0  # automatic restarts in a row (the backoff's attempt)
    retry_at: float | None = None  # time.time() of the next automatic restart
    retry: asyncio.Task[None] | None = None
    started_at: float | None = None  # time.monotonic() of the last successful start

    @property
    def reason_is_config(self) -> bool:
        """Off because the configuration says so (not broken)."""
        return (self.reason or "").startswith(("disabled in the configuration", "not in adapters.only"))

    def as_dict(self) -> dict[str, Any]:
        manifest = self.entry.manifest
        return {
            "id": self.entry.id,
            "name": manifest.name if manifest else None,
            "version": manifest.version if manifest else None,
            "kind": manifest.kind if manifest else None,
            "provides": list(manifest.provides) if manifest else [],
            "permissions": sorted(manifest.permissions) if manifest else [],
            "module": self.entry.module,
            "sources": self.entry.sources,
            "manifest_sha256": self.entry.manifest_sha256,
            "state": self.state.value,
            "reason": self.reason,
            "since": self.since,
            "starts": self.starts,
            "restarts": self.restarts,
            "retry_at": self.retry_at,
        }


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_adapter_class(spec: str) -> Any:
    """`module:Class` → the class; raises ImportError/AttributeError/TypeError with a clear message."""
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    try:
        factory = getattr(module, attr)
    except AttributeError:
        raise AttributeError(f"module {module_name!r} has no {attr!r} (manifest 'entry')") from None
    for method in ("async_start", "async_stop"):
        if not inspect.iscoroutinefunction(getattr(factory, method, None)):
            raise TypeError(f"{spec} has no coroutine method {method}() (the adapter contract)")
    return factory


class AdapterHost:
    """The `adapters` component."""

    name = "adapters"
    requires: tuple[str, ...] = ("registry",)

    def __init__(self, discover_entries: Callable[[], list[AdapterEntry]] | None = None) -> None:
        self._discover = discover_entries
        self._api: ComponentApi | None = None
        self.slots: dict[str, AdapterSlot] = {}
        self._order: list[str] = []
        self._extra: list[AdapterEntry] = []
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[Any]] = set()

    # -- lifecycle of the host ---------------------------------------------------

    def add_entry(self, entry: AdapterEntry) -> None:
        """An adapter not found by discovery (the conformance kit's test doubles)."""
        self._extra.append(entry)

    async def async_start(self, api: ComponentApi) -> None:
        self._api = api
        gateway = api
        settings = gateway.config.get("adapters", {})
        only = settings.get("only")
        disabled = set(settings.get("disabled", []))
        package = settings.get("builtin_package")
        allowed = parse_allowed(settings.get("allowed", SHIPPED), shipped_package=package)
        components = set(gateway.config.get("components", []))
        find = self._discover or functools.partial(discover, builtin_package=package)
        entries = await asyncio.to_thread(find)
        for entry in [*entries, *self._extra]:
            slot = AdapterSlot(entry=entry)
            if entry.id in self.slots:
                continue
            self.slots[entry.id] = slot
            self._order.append(entry.id)
            manifest = entry.manifest
            if entry.problem or manifest is None:
                self._set(slot, AdapterState.DISABLED, entry.problem or "no manifest")
            elif manifest.entry in components:
                self._set(slot, AdapterState.COMPONENT, "run by the gateway as a configured component")
            elif (refused := refusal(entry, allowed)) is not None:
                self._set(slot, AdapterState.NOT_ALLOWED, refused)
                _LOGGER.warning("adapter %s (%s) not loaded: %s", entry.id, entry.module, refused)
            elif entry.id in disabled:
                self._set(slot, AdapterState.DISABLED, "disabled in the configuration (adapters.disabled)")
            elif only is not None and entry.id not in only:
                self._set(slot, AdapterState.DISABLED, "not in adapters.only")
        for adapter_id in self._order:
            slot = self.slots[adapter_id]
            if slot.state is AdapterState.STOPPED:
                await self._start(slot)
        running = [s.entry.id for s in self.slots.values() if s.state is AdapterState.RUNNING]
        broken = [
            s
            for s in self.slots.values()
            if s.state in (AdapterState.FAILED, AdapterState.DISABLED) and not s.reason_is_config
        ]
        _LOGGER.info(
            "adapters: %d running (%s)%s",
            len(running),
            ", ".join(running) or "none",
            f", {len(broken)} not running: " + "; ".join(f"{s.entry.id}: {s.reason}" for s in broken)
            if broken
            else "",
        )

    async def async_stop(self) -> None:
        for task in list(self._pending):
            task.cancel()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        for adapter_id in reversed(self._order):
            slot = self.slots[adapter_id]
            if slot.state is AdapterState.RUNNING:
                await self._stop(slot, AdapterState.STOPPED, "gateway stopping")

    # -- one adapter -------------------------------------------------------------

    def _set(self, slot: AdapterSlot, state: AdapterState, reason: str | None) -> None:
        slot.state = state
        slot.reason = reason
        slot.since = time.time()

    async def _start(self, slot: AdapterSlot) -> None:
        gateway = self._api
        assert gateway is not None
        manifest = slot.entry.manifest
        assert manifest is not None
        try:
            settings = settings_for(
                manifest, gateway.config.get("adapters", {}).get("settings", {}).get(manifest.id)
            )
        except ManifestError as exc:
            self._set(slot, AdapterState.DISABLED, f"bad settings: {exc}")
            _LOGGER.error("adapter %s disabled: bad settings: %s", manifest.id, exc)
            return
        try:
            factory = await asyncio.to_thread(load_adapter_class, manifest.entry)
            instance = factory()
        except Exception as exc:
            self._set(slot, AdapterState.DISABLED, f"cannot load {manifest.entry}: {_describe(exc)}")
            _LOGGER.error("adapter %s disabled: %s", manifest.id, slot.reason)
            _LOGGER.debug("adapter %s load failure", manifest.id, exc_info=True)
            return
        api = AdapterApi(gateway, manifest, settings, self._on_crash)
        slot.starts += 1
        try:
            await asyncio.wait_for(instance.async_start(api), START_TIMEOUT_S)
        except asyncio.CancelledError:
            await self._teardown(instance, api, manifest.id)  # the gateway stopping mid-start
            self._set(slot, AdapterState.STOPPED, "gateway stopping")
            raise
        except Exception as exc:
            reason = (
                f"start timed out after {START_TIMEOUT_S:g} s"
                if isinstance(exc, TimeoutError)
                else f"exception in start: {_describe(exc)}"
            )
            _LOGGER.error("adapter %s failed to start and is disabled: %s", manifest.id, reason)
            _LOGGER.debug("adapter %s start failure", manifest.id, exc_info=True)
            await self._teardown(instance, api, manifest.id)
            self._set(slot, AdapterState.FAILED, reason)
            self._schedule_restart(slot)
            return
        slot.instance, slot.api = instance, api
        slot.started_at = time.monotonic()
        self._set(slot, AdapterState.RUNNING, None)
        _LOGGER.debug("adapter %s %s started", manifest.id, manifest.version)

    async def _teardown(self, instance: Any, api: AdapterApi, adapter_id: str) -> str | None:
        problem = None
        try:
            await asyncio.wait_for(instance.async_stop(), STOP_TIMEOUT_S)
        except Exception as exc:
            problem = f"stop failed: {_describe(exc)}"
            _LOGGER.warning("adapter %s did not stop cleanly: %s", adapter_id, problem)
        await api.async_release()
        return problem

    async def _stop(self, slot: AdapterSlot, state: AdapterState, reason: str | None) -> None:
        instance, api = slot.instance, slot.api
        slot.instance, slot.api = None, None
        if instance is not None and api is not None:
            problem = await self._teardown(instance, api, slot.entry.id)
            if problem and reason:
                reason = f"{reason}; {problem}"
        self._set(slot, state, reason)

    def _on_crash(self, adapter_id: str, exc: BaseException) -> None:
        slot = self.slots.get(adapter_id)
        if slot is None or slot.state is not AdapterState.RUNNING:
            return
        reason = f"crashed: {_describe(exc)}"
        _LOGGER.error(
            "adapter %s %s; it is stopped (restarted with backoff), the gateway carries on",
            adapter_id,
            reason,
        )
        # Mark at once (no more commands reach it), then take it down outside the failed task.
        slot.state = AdapterState.CRASHED
        slot.reason = reason
        if slot.started_at is not None and time.monotonic() - slot.started_at >= RESTART_STABLE_S:
            slot.restarts = 0  # it had been running well: back off from the start again

        async def take_down() -> None:
            await self._stop(slot, AdapterState.CRASHED, reason)
            if slot.state is AdapterState.CRASHED:
                self._schedule_restart(slot)

        task = asyncio.get_running_loop().create_task(
            take_down(), name=f"linli-adapter-{adapter_id}-teardown"
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # -- restarts with backoff ----------------------------------------------------------

    def _schedule_restart(self, slot: AdapterSlot) -> None:
        """Start a failed or crashed adapter again after the next backoff delay."""
        self._cancel_restart(slot)
        delay = backoff_delay(slot.restarts, base=RESTART_BASE_S, cap=RESTART_CAP_S)
        slot.restarts += 1
        slot.retry_at = time.time() + delay
        _LOGGER.info(
            "adapter %s: restart %d in %.1f s (%s)", slot.entry.id, slot.restarts, delay, slot.reason
        )

        async def restart() -> None:
            await asyncio.sleep(delay)
            async with self._lock:
                if slot.retry is not asyncio.current_task():
                    return  # started or stopped by hand meanwhile
                slot.retry, slot.retry_at = None, None
                if slot.state in (AdapterState.FAILED, AdapterState.CRASHED):
                    await self._start(slot)

        task = asyncio.get_running_loop().create_task(
            restart(), name=f"linli-adapter-{slot.entry.id}-restart"
        )
        slot.retry = task
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _cancel_restart(self, slot: AdapterSlot) -> None:
        if slot.retry is not None and slot.retry is not asyncio.current_task():
            slot.retry.cancel()
        slot.retry, slot.retry_at = None, None

    # -- what others call ------------------------------------------------------------

    def adapter(self, adapter_id: str) -> Any:
        """The running instance of an adapter, or None."""
        slot = self.slots.get(adapter_id)
        return slot.instance if slot is not None and slot.state is AdapterState.RUNNING else None

    def status(self) -> list[dict[str, Any]]:
        return [self.slots[adapter_id].as_dict() for adapter_id in self._order]

    async def async_stop_adapter(self, adapter_id: str) -> None:
        async with self._lock:
            slot = self._require(adapter_id)
            self._cancel_restart(slot)
            slot.restarts = 0
            if slot.state is AdapterState.RUNNING:
                await self._stop(slot, AdapterState.STOPPED, "stopped on request")

    async def async_start_adapter(self, adapter_id: str) -> AdapterState:
        """(Re)start a stopped, failed or crashed adapter; returns its new state."""
        async with self._lock:
            slot = self._require(adapter_id)
            if slot.state is AdapterState.RUNNING:
                return slot.state
            if (
                slot.state in (AdapterState.COMPONENT, AdapterState.NOT_ALLOWED)
                or slot.entry.manifest is None
            ):
                raise ValueError(f"adapter {adapter_id!r} cannot be started here: {slot.reason}")
            self._cancel_restart(slot)
            await self._start(slot)
            return slot.state

    async def async_restart(self, adapter_id: str) -> AdapterState:
        await self.async_stop_adapter(adapter_id)
        return await self.async_start_adapter(adapter_id)

    def _require(self, adapter_id: str) -> AdapterSlot:
        slot = self.slots.get(adapter_id)
        if slot is None:
            raise KeyError(f"no adapter {adapter_id!r}; installed: {', '.join(self._order) or 'none'}")
        return slot
