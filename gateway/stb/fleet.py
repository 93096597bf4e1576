"""The boxes of one operator adapter, driven through one contract.

Both operator adapters are a `BoxFleet` around their own `BoxDriver`, so that
everything a resident or a service can observe is the same code for both:

* a command is checked against the contract (`not_supported` for a kind the
  adapter does not declare, a verb the contract does not have or the box's
  protocol cannot express; `invalid_command` for bad parameters), carried out,
  and confirmed by reading the state back from the box;
* a box that does not answer is `unavailable`, with when it was last seen; the
  registry marks it offline; `power on` still works where the box can be woken
  (Wake-on-LAN, to the MAC the box or its DIAL server announced);
* state is refreshed by polling (and by the box's own events where its protocol
  has them), reported to the registry only when it changed.

A box's endpoint (address, MAC, wake target) lives in the adapter's storage
namespace under `box:<device id>`; the device itself is an ordinary registry
device with the adapter's firmware profile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from jsonschema import Draft202012Validator

from linli.common.backoff import backoff_delay
from linli.common.ratelog import RateLimitedLog
from linli.gateway.capabilities import STB_KINDS
from linli.gateway.commands import Command, CommandError, NotSupportedError, UnavailableError
from linli.gateway.events import DeviceAdded, DeviceRemoved
from linli.gateway.mqtt.topics import device_topic
from linli.gateway.stb import wake
from linli.gateway.stb.channels import Lineup, LineupError
from linli.gateway.stb.confirm import expected, now_playing
from linli.gateway.stb.driver import (
    READ_KINDS,
    BoxDriver,
    BoxEndpoint,
    BoxFacts,
    DriverContext,
    DriverFactory,
)
from linli.gateway.stb.errors import BoxAnswerError, BoxUnreachableError, InvalidCommandError
from linli.gateway.stb.http import Limits
from linli.gateway.stb.schemas import STB_COMMAND_SCHEMAS

if TYPE_CHECKING:
    from linli.gateway.plugins.api import AdapterApi
    from linli.gateway.registry import Device

_LOGGER = logging.getLogger(__name__)
_STORAGE_PREFIX: Final = "box:"
_REPORT_EVERY_S: Final = 600.0
_CONFIRM_POLL_S: Final = 0.02
_POLL_CONCURRENCY: Final = 16
#: Kinds one command can change together (one video at a time): confirmed and reported together.
_TOGETHER: Final[dict[str, frozenset[str]]] = {
    "channel": frozenset({"channel", "media"}),
    "media": frozenset({"channel", "media"}),
}

#: Settings every set-top box adapter takes (merge into the manifest's config_schema).
FLEET_SETTINGS_SCHEMA: Final[dict[str, Any]] = {
    "poll_s": {"type": "number", "minimum": 1, "default": 30},
    "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 60, "default": 3},
    "confirm_timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 60, "default": 3},
    "wake_timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 300, "default": 30},
    "max_answer_bytes": {"type": "integer", "minimum": 1024, "maximum": 16777216, "default": 262144},
    "wake_address": {"type": "string", "default": "255.255.255.255"},
    "wake_port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 9},
}


class AdoptError(ValueError):
    """A box that cannot join a household; the message says why and what to do."""


def degraded_kinds(adapter: Any, device_id: str) -> dict[str, str]:
    """The kinds that work only partly on this adopted box, each with why: kind → reason.

    For the conformance kit (linli/certify): a kind listed here is reported as
    degraded — e.g. "degraded: needs the operator's Linli app" for a cable box
    without the operator's DIAL app (docs/operators.md) — never as passed. Any
    set-top box adapter built on `BoxFleet` answers; others have no degraded kinds.
    """
    status = getattr(adapter, "status", None)
    if not callable(status):
        return {}
    for box in status():
        if box.get("device_id") == device_id:
            return dict(box.get("degraded") or {})
    return {}


def _when(ts: float | None) -> str:
    if ts is None:
        return "never seen"
    return "last seen " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


@dataclass(slots=True, kw_only=True)
class Box:
    device_id: str
    household_id: str
    endpoint: BoxEndpoint
    driver: BoxDriver
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    connected: bool = False
    facts: BoxFacts | None = None
    states: dict[str, Any] = field(default_factory=dict)
    last_error: str | None = None
    # A box that keeps failing is reported once every _REPORT_EVERY_S, not at every poll.
    problems: RateLimitedLog = field(default_factory=lambda: RateLimitedLog(_LOGGER, _REPORT_EVERY_S))
    refresh: set[str] = field(default_factory=set)
    refreshing: bool = False
    quiet_until: float = 0.0  # the box's echoes of our own commands are not news
    titles: dict[str, str] = field(default_factory=dict)  # media URL → the title it was played with

    def as_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "household_id": self.household_id,
            "url": self.endpoint.url,
            "connected": self.connected,
            "last_error": self.last_error,
            "protocols": list(self.driver.protocols),
            # Kinds that work only partly on this box, and why (a cable box without the operator's
            # app); what certification reports as degraded. A driver without the notion has none.
            "degraded": dict(getattr(self.driver, "degraded", dict)()),
        }


class BoxFleet:
    """Every box of one set-top box adapter."""

    def __init__(self, api: AdapterApi, *, driver_factory: DriverFactory, profile_id: str) -> None:
        self.api = api
        self.profile_id = profile_id
        self.provides = frozenset(api.manifest.provides) & frozenset(STB_KINDS)
        self._factory = driver_factory
        cfg = api.config
        self.poll_s = float(cfg.get("poll_s", 30))
        self.confirm_timeout_s = float(cfg.get("confirm_timeout_s", 3))
        self.wake_timeout_s = float(cfg.get("wake_timeout_s", 30))
        self.wake_address = str(cfg.get("wake_address", "255.255.255.255"))
        self.wake_port = int(cfg.get("wake_port", 9))
        self.limits = Limits(
            timeout_s=float(cfg.get("timeout_s", 3)), max_bytes=int(cfg.get("max_answer_bytes", 262144))
        )
        try:
            self.lineup = Lineup(cfg.get("lineup", []), source=f"adapters.settings.{api.id}.lineup")
        except LineupError as exc:
            raise ValueError(str(exc)) from None
        self.boxes: dict[str, Box] = {}
        self._session: aiohttp.ClientSession | None = None
        self._validators = {
            kind: {action: Draft202012Validator(schema) for action, schema in actions.items()}
            for kind, actions in STB_COMMAND_SCHEMAS.items()
        }

    # -- lifecycle ---------------------------------------------------------------

    async def async_start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, limit_per_host=4, force_close=False),
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=False,
        )
        endpoints = await self.api.storage.async_items(_STORAGE_PREFIX)
        for device in self.api.registry.iter_devices():
            if device.profile.id != self.profile_id:
                continue
            data = endpoints.get(_STORAGE_PREFIX + device.id)
            if data is None:
                _LOGGER.warning(
                    "%s: device %s has no box address in storage; remove it and adopt the box again",
                    self.api.id,
                    device.id,
                )
                continue
            self._attach(device, BoxEndpoint.from_dict(data))
        self.api.bus.listen(DeviceAdded, self._on_device_added)
        self.api.bus.listen(DeviceRemoved, self._on_device_removed)
        self.api.spawn(self._poll_loop(), "poll")

    async def async_stop(self) -> None:
        for box in list(self.boxes.values()):
            with contextlib.suppress(Exception):
                await box.driver.async_close()
        self.boxes.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- boxes joining and leaving ----------------------------------------------------

    def _context(self, device_id: str | None) -> DriverContext:
        assert self._session is not None, "fleet not started"
        on_change = (
            (lambda kinds: self._schedule_refresh(device_id, kinds)) if device_id else (lambda k: None)
        )
        return DriverContext(
            session=self._session,
            limits=self.limits,
            lineup=self.lineup,
            portal_url=self.api.portal_url,
            log=self.api.log,
            on_change=on_change,
            watch=device_id is not None,
        )

    def _attach(self, device: Device, endpoint: BoxEndpoint) -> Box:
        box = Box(
            device_id=device.id,
            household_id=device.household_id,
            endpoint=endpoint,
            driver=self._factory(endpoint, self._context(device.id)),
        )
        self.boxes[device.id] = box
        self._register(device.id)
        # Whoever else routes commands for every device (mqtt_device) must not keep this one.
        asyncio.get_running_loop().call_soon(self._register, device.id)
        return box

    def _register(self, device_id: str) -> None:
        if device_id in self.boxes:
            self.api.commands.register(device_id, self.async_command)

    def _on_device_added(self, event: DeviceAdded) -> None:
        device = self.api.registry.device(event.device_id)
        if device is not None and device.profile.id == self.profile_id and device.id in self.boxes:
            asyncio.get_running_loop().call_soon(self._register, device.id)

    def _on_device_removed(self, event: DeviceRemoved) -> None:
        box = self.boxes.pop(event.device_id, None)
        if box is not None:
            self.api.commands.unregister(event.device_id)
            self.api.spawn(self._forget(box), f"forget-{box.device_id}")

    async def _forget(self, box: Box) -> None:
        with contextlib.suppress(Exception):
            await box.driver.async_close()
        await self.api.storage.async_delete(_STORAGE_PREFIX + box.device_id)

    async def async_adopt(
        self,
        household_id: str,
        target: str,
        *,
        name: str | None = None,
        device_id: str | None = None,
        room: str | None = None,
        mac: str | None = None,
        wake_address: str | None = None,
        wake_port: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Device:
        """Reach the box at `target`, then make it the household's device (durably).

        `extra` is what the adapter's driver needs besides the address (kept with it).
        """
        registry = self.api.registry
        if household_id not in registry.households:
            raise AdoptError(f"no household {household_id!r}; add it first")
        if mac is not None:
            try:
                wake.mac_bytes(mac)
            except wake.WakeError as exc:
                raise AdoptError(str(exc)) from None
        endpoint = BoxEndpoint(
            url=target, mac=mac, wake_address=wake_address, wake_port=wake_port, extra=dict(extra or {})
        )
        driver = self._factory(endpoint, self._context(None))
        try:
            facts = await driver.async_connect()
        except (BoxUnreachableError, BoxAnswerError) as exc:
            await driver.async_close()
            raise AdoptError(
                f"box at {target} cannot be adopted: {exc.message}. Check the address and that the box is on"
            ) from None
        endpoint.mac = endpoint.mac or facts.mac
        identity = facts.id or f"url:{target}"
        await driver.async_close()
        for other in list(self.boxes.values()):
            device = registry.device(other.device_id)
            if device is None or device.unique_id != identity:
                continue
            if device.household_id != household_id:
                raise AdoptError(
                    f"box at {target} ({identity}) is already device {device.id!r} of household "
                    f"{device.household_id}; remove it there first"
                )
            # The same box at a new address (DHCP): keep the device, move the endpoint.
            await other.driver.async_close()
            await self.api.storage.async_set(_STORAGE_PREFIX + device.id, endpoint.as_dict())
            box = self._attach(device, endpoint)
            box.facts = facts
            await self._refresh(box, READ_KINDS & self.provides)
            _LOGGER.info("%s: %s is now at %s", self.api.id, device.id, target)
            return device
        if device_id is None:
            device_id = f"{household_id}-tv"
            suffix = 2
            while device_id in registry.devices:
                device_id = f"{household_id}-tv{suffix}"
                suffix += 1
        await self.api.storage.async_set(_STORAGE_PREFIX + device_id, endpoint.as_dict())
        try:
            # (typed here: the plugins' registry view forwards its writes untyped)
            added: Device = await registry.async_add_device(
                device_id,
                household_id=household_id,
                name=name or facts.name or "TV",
                profile_id=self.profile_id,
                topic=device_topic(household_id, device_id),
                room=room,
                firmware=None,
                unique_id=identity,
            )
        except Exception:
            await self.api.storage.async_delete(_STORAGE_PREFIX + device_id)
            raise
        box = self._attach(added, endpoint)
        box.facts = facts
        await self._refresh(box, READ_KINDS & self.provides)
        _LOGGER.debug("%s: box at %s joined household %s as %s", self.api.id, target, household_id, device_id)
        return added

    async def async_remove(self, device_id: str) -> None:
        await self.api.registry.async_remove_device(device_id)

    # -- commands ----------------------------------------------------------------------

    def _check(self, device: Device, command: Command) -> tuple[str, str, dict[str, Any]]:
        cap = device.profile.capability(command.capability)
        kind = cap.kind if cap is not None else command.capability
        if kind not in self.provides:
            raise NotSupportedError(
                f"{device.id}: {command.capability!r} is not something this box does "
                f"(adapter {self.api.id} provides: {', '.join(sorted(self.provides))})"
            )
        value = command.value
        if not isinstance(value, dict) or not isinstance(value.get("action"), str):
            raise InvalidCommandError(
                f"{device.id}: a {kind} command is an object with an 'action', got {value!r}"
            )
        action = value["action"]
        actions = STB_COMMAND_SCHEMAS[kind]
        if action not in actions:
            verbs = ", ".join(actions) or "none: it is read-only"
            raise NotSupportedError(f"{device.id}: {kind} cannot {action!r} (its verbs: {verbs})")
        params = {k: v for k, v in value.items() if k != "action"}
        errors = sorted(self._validators[kind][action].iter_errors(params), key=lambda e: list(e.path))
        if errors:
            detail = "; ".join(f"{e.json_path}: {e.message}" for e in errors[:3])
            raise InvalidCommandError(f"{device.id}: {kind} {action}: {detail}")
        box = self.boxes[device.id]
        if not box.driver.supports(kind, action):
            why = getattr(box.driver, "unsupported", lambda k, a: None)(kind, action)
            raise NotSupportedError(
                f"{device.id}: this box cannot {kind} {action} over {' + '.join(box.driver.protocols)}"
                + (f": {why}" if why else "")
            )
        return kind, action, dict(value)

    async def async_command(self, command: Command) -> dict[str, Any]:
        """The command handler registered for every box of this adapter."""
        box = self.boxes.get(command.device_id)
        device = self.api.registry.device(command.device_id)
        if box is None or device is None:
            raise UnavailableError(f"{command.device_id}: box was removed")
        kind, action, value = self._check(device, command)
        started = time.perf_counter()
        async with box.lock:
            try:
                if kind == "power" and action == "on":
                    state = await self._power_on(box, device)
                else:
                    state = await self._run(box, device, kind, value)
            finally:
                box.quiet_until = time.monotonic() + 1.0
        return {
            "device_id": device.id,
            "capability": command.capability,
            "state": state,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }

    def _resolve(self, box: Box, kind: str, command: dict[str, Any]) -> dict[str, Any]:
        """Fill in what the contract leaves to the gateway: the channel record, the portal URL."""
        action = command["action"]
        if kind == "channel":
            if action == "tune":
                if "lcn" in command:
                    record = self.lineup.by_lcn(command["lcn"])
                    if record is None:
                        raise InvalidCommandError(
                            f"{box.device_id}: channel {command['lcn']} is not in the lineup of "
                            f"{self.api.id} ({len(self.lineup)} channels; "
                            f"adapters.settings.{self.api.id}.lineup)"
                        )
                else:
                    record = self.lineup.find(command["channel"]) or command["channel"]
            else:
                record = self.lineup.step(box.states.get("channel"), 1 if action == "up" else -1)
                if record is None:
                    raise InvalidCommandError(f"{box.device_id}: the lineup of {self.api.id} is empty")
            return {"action": "tune", "channel": record}
        if kind == "portal" and action == "open" and "url" not in command:
            return {**command, "url": f"{self.api.portal_url}/tv/?household={box.household_id}"}
        if kind == "notify" and action == "show":
            return {"level": "info", **command}
        return command

    async def _run(self, box: Box, device: Device, kind: str, command: dict[str, Any]) -> Any:
        resolved = self._resolve(box, kind, command)
        try:
            await self._ensure_connected(box)
            await box.driver.async_execute(kind, resolved)
            if kind == "keys":
                state = {"last": list(resolved["keys"])}
                self._report(box, {"keys": state})
                return state
            return await self._confirm(box, kind, resolved)
        except BoxUnreachableError as exc:
            if kind == "power" and resolved["action"] == "off":
                # A box that went dark after "off" did what it was told.
                self._report(box, {"power": {"on": False}})
                self._mark_unreachable(box, "powered off by command")
                return {"on": False}
            self._mark_unreachable(box, exc.message)
            raise self._unavailable(box, device, exc.message) from None
        except BoxAnswerError as exc:
            self._problem(box, exc.message)
            raise

    def _unavailable(self, box: Box, device: Device, cause: str) -> BoxUnreachableError:
        wakeable = " ('power on' wakes it)" if self._mac(box) else ""
        return BoxUnreachableError(
            f"{device.id} ({device.name}) is unavailable, {_when(device.last_seen)}: {cause}. "
            f"Check that the box is on and on the network{wakeable}",
            last_seen=device.last_seen,
        )

    async def _confirm(self, box: Box, kind: str, command: dict[str, Any]) -> Any:
        check = expected(kind, command)
        deadline = time.monotonic() + self.confirm_timeout_s
        kinds = (_TOGETHER.get(kind, frozenset()) | {kind}) & self.provides
        if kind == "media" and command["action"] == "play" and command.get("title"):
            box.titles = {command["url"]: command["title"]}
        while True:
            values = await box.driver.async_read(kinds)
            state = values.get(kind)
            if check(state):
                self._report(box, values)
                return box.states.get(kind, state)
            if time.monotonic() >= deadline:
                self._report(box, values)
                raise BoxAnswerError(
                    f"{box.device_id}: the box accepted {kind} {command['action']} but still reports "
                    f"{state!r} after {self.confirm_timeout_s:g} s"
                )
            await asyncio.sleep(_CONFIRM_POLL_S)

    async def _ensure_connected(self, box: Box) -> None:
        if not box.connected:
            box.facts = await box.driver.async_connect()
            box.connected = True
            if box.facts.mac and not box.endpoint.mac:
                box.endpoint.mac = box.facts.mac
                await self.api.storage.async_set(_STORAGE_PREFIX + box.device_id, box.endpoint.as_dict())

    def _mac(self, box: Box) -> str | None:
        return box.endpoint.mac or (box.facts.mac if box.facts else None)

    async def _power_on(self, box: Box, device: Device) -> Any:
        try:
            await self._ensure_connected(box)
            values = await box.driver.async_read(frozenset({"power"}))
            if not values["power"]["on"]:
                await box.driver.async_execute("power", {"action": "on"})
                return await self._confirm(box, "power", {"action": "on"})
            self._report(box, values)
            return values["power"]
        except BoxUnreachableError as exc:
            cause = exc.message
        mac = self._mac(box)
        if mac is None:
            raise BoxUnreachableError(
                f"{device.id} is unreachable ({cause}) and cannot be woken: no MAC address is known. "
                "Switch it on by hand, or adopt it again with its MAC address",
                last_seen=device.last_seen,
            )
        address = box.endpoint.wake_address or self.wake_address
        port = box.endpoint.wake_port or self.wake_port
        try:
            await wake.async_wake(mac, address, port)
        except (wake.WakeError, OSError) as exc:
            raise BoxUnreachableError(
                f"{device.id}: cannot send the wake-up packet to {address}:{port}: {exc}",
                last_seen=device.last_seen,
            ) from None
        deadline = time.monotonic() + self.wake_timeout_s
        attempt = 0
        while True:
            try:
                box.connected = False
                await self._ensure_connected(box)
                values = await box.driver.async_read(frozenset({"power"}))
                if not values["power"]["on"]:
                    await box.driver.async_execute("power", {"action": "on"})
                state = await self._confirm(box, "power", {"action": "on"})
                _LOGGER.info("%s: %s woke up", self.api.id, device.id)
                await self._refresh(box, READ_KINDS & self.provides)
                return state
            except BoxUnreachableError as exc:
                # Asked again soon at first (a box wakes in a second or two), then once a second.
                delay = backoff_delay(attempt, base=0.05, cap=1.0, jitter=False)
                attempt += 1
                if time.monotonic() + delay >= deadline:
                    raise BoxUnreachableError(
                        f"{device.id}: sent the wake-up packet to {mac} via {address}:{port}, but the box "
                        f"did not answer within {self.wake_timeout_s:g} s ({exc.message})",
                        last_seen=device.last_seen,
                    ) from None
                await asyncio.sleep(delay)

    # -- state ---------------------------------------------------------------------------

    def _report(self, box: Box, values: dict[str, Any]) -> None:
        """Remember what the box said; tell the registry what changed (and that it was seen)."""
        registry = self.api.registry
        device = registry.device(box.device_id)
        if device is None:
            return
        box.last_error = None
        media = values.get("media")
        if media is not None and media.get("title") is None and media.get("url") in box.titles:
            values = {**values, "media": {**media, "title": box.titles[media["url"]]}}
        box.states.update(values)
        kinds = set(values)
        if "now_playing" in self.provides and kinds & {"channel", "media", "app"}:
            values = {**values, "now_playing": now_playing(box.states)}
        if "meta" in self.provides and "meta" not in device.states and box.facts is not None:
            values = {**values, "meta": self._meta(box)}
        keys = {cap.kind: cap.key for cap in device.profile.capabilities}
        changed = {}
        for kind, value in values.items():
            key = keys.get(kind)
            if key is None:
                continue
            current = device.states.get(key)
            if current is None or current.value != value:
                changed[key] = value
        now = time.time()
        if changed:
            registry.report(device, changed, now, self.api.id)
        else:
            device.last_seen = now
            if not device.available:
                registry.set_available(device, True, now, "box answered")

    def _meta(self, box: Box) -> dict[str, Any]:
        facts = box.facts or BoxFacts()
        return {
            "adapter": self.api.id,
            "protocols": list(box.driver.protocols),
            "vendor": facts.vendor,
            "model": facts.model,
            "firmware": facts.firmware,
            "id": facts.id,
            "wake": "wol" if self._mac(box) else None,
        }

    def _mark_unreachable(self, box: Box, reason: str) -> None:
        box.connected = False
        device = self.api.registry.device(box.device_id)
        if device is not None and device.available:
            self.api.registry.set_available(device, False, time.time(), reason[:200])
            _LOGGER.info("%s: %s is unavailable: %s", self.api.id, box.device_id, reason)

    def _problem(self, box: Box, message: str) -> None:
        box.last_error = message
        box.problems.warning("%s: %s", self.api.id, message)

    async def _refresh(self, box: Box, kinds: Iterable[str]) -> bool:
        """Read these kinds from the box and report them; False when it did not answer."""
        wanted = frozenset(kinds) & READ_KINDS & self.provides
        if not wanted:
            return True
        try:
            await self._ensure_connected(box)
            values = await box.driver.async_read(wanted)
        except BoxUnreachableError as exc:
            self._mark_unreachable(box, exc.message)
            return False
        except BoxAnswerError as exc:
            self._problem(box, exc.message)
            return False
        except Exception as exc:  # one box's trouble is never its adapter's (issue #15)
            message = (
                f"{box.device_id}: reading {', '.join(sorted(wanted))} failed: {type(exc).__name__}: {exc}"
            )
            if box.last_error != message:
                _LOGGER.error("%s: %s", self.api.id, message, exc_info=not isinstance(exc, CommandError))
            self._problem(box, message)
            return False
        self._report(box, values)
        return True

    def _schedule_refresh(self, device_id: str | None, kinds: frozenset[str]) -> None:
        box = self.boxes.get(device_id or "")
        if box is None or box.lock.locked() or time.monotonic() < box.quiet_until:
            return
        box.refresh |= kinds
        if not box.refreshing:
            box.refreshing = True
            self.api.spawn(self._run_refresh(box), f"refresh-{box.device_id}")

    async def _run_refresh(self, box: Box) -> None:
        try:
            while box.refresh:
                kinds, box.refresh = set(box.refresh), set()
                await self._refresh(box, kinds)
        finally:
            box.refreshing = False

    async def _poll_loop(self) -> None:
        """Each box read once per `poll_s`, the reads spread evenly over the interval (no bursts)."""
        kinds = READ_KINDS & self.provides
        limit = asyncio.Semaphore(_POLL_CONCURRENCY)
        pending: set[asyncio.Task[Any]] = set()

        async def poll(box: Box) -> None:
            async with limit:
                if not box.lock.locked() and box.device_id in self.boxes:
                    await self._refresh(box, kinds)

        await asyncio.sleep(random.uniform(0.2, 1.0) * self.poll_s)
        try:
            while True:
                boxes = list(self.boxes.values())
                if not boxes:
                    await asyncio.sleep(self.poll_s)
                    continue
                step = self.poll_s / len(boxes)
                for box in boxes:
                    if len(pending) < _POLL_CONCURRENCY:
                        task = self.api.spawn(poll(box), f"poll-{box.device_id}")
                        pending.add(task)
                        task.add_done_callback(pending.discard)
                    await asyncio.sleep(step)
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def status(self) -> list[dict[str, Any]]:
        registry = self.api.registry
        items = []
        for box in self.boxes.values():
            device = registry.device(box.device_id)
            items.append(
                {
                    **box.as_dict(),
                    "kinds": self._kinds_of(box),
                    "available": bool(device and device.available),
                    "last_seen": device.last_seen if device else None,
                }
            )
        return items

    def _kinds_of(self, box: Box) -> list[str]:
        """The declared kinds this box can do at least one verb of (read-only kinds: always)."""
        return sorted(
            kind
            for kind in self.provides
            if not STB_COMMAND_SCHEMAS[kind]
            or any(box.driver.supports(kind, a) for a in STB_COMMAND_SCHEMAS[kind])
        )
