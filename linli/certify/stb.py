"""The set-top box contract, exercised the same way against every adapter that claims it.

Every check looks at the box, not at the command it sent (linli/certify/observe.py):

* contract: each verb of each declared kind is sent through `gateway.commands`
  (as services and the portal send them) and timed; the state it returns must
  match the kind's JSON Schema, be what the registry now holds, agree with the
  box — and the box itself must show the verb's effect (the volume the box
  plays at, the channel it shows, the keys' effect on it);
* refusals: a read-only or undeclared kind, an unknown verb, bad parameters
  are refused with the uniform code *and never reach the box* (it answered no
  request, its state is unchanged);
* errors, injected into the box the adapter drives (a simulated box: a SOAP
  fault or JSON-RPC error, garbage, an answer that never finishes): a clear
  `box_error` / `unavailable` within the adapter's timeout, the box's state and
  the registry untouched, and the next command works once the box does;
* unreachable: turned off, the box is dark (seen on the box), every command is
  `unavailable` with the last-seen time, the registry marks it offline, and
  `power on` wakes it (seen on the box); an address that refuses and one that
  accepts the connection and never answers are both refused at adoption, in
  bounded time;
* isolation, with a second box of the same adapter: one box hanging does not
  hold up the other, one box vanishing does not take the adapter down.

Against a live box (`--target`) the effects are read afresh through the adapter's
own driver, and what cannot be done to a live box (injected errors, a second box)
is skipped and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from jsonschema import Draft202012Validator

from linli.certify.harness import HOUSEHOLD, free_port
from linli.certify.observe import DriverObserver, Observer, SimObserver
from linli.certify.report import Check, Report, Result
from linli.gateway.capabilities import STB_KINDS
from linli.gateway.commands import CommandError
from linli.gateway.plugins import AdapterState
from linli.gateway.runtime import Gateway
from linli.gateway.stb.channels import same_channel
from linli.gateway.stb.fleet import degraded_kinds
from linli.gateway.stb.schemas import STB_STATE_SCHEMAS

#: (the box before, the box after) → does the box show the verb's effect?
OnBox = Callable[[dict[str, Any], dict[str, Any]], bool]
MEDIA_URL: Final = "http://127.0.0.1:9/linli-certify/stream.m3u8"
PAGE_URL: Final = "https://example.org/linli-certify"
NOTICE: Final = "邻里认证 Linli certification"
_VALIDATORS: Final = {kind: Draft202012Validator(schema) for kind, schema in STB_STATE_SCHEMAS.items()}
_SETTLE_S: Final = 1.0  # how long the box may take to show a confirmed effect (a box going dark)

#: One command per kind, for the kinds an adapter does not declare (must be not_supported).
SAMPLE: Final[dict[str, dict[str, Any]]] = {
    "power": {"action": "on"},
    "keys": {"action": "press", "keys": ["OK"]},
    "channel": {"action": "up"},
    "app": {"action": "launch", "app": "YouTube"},
    "media": {"action": "stop"},
    "volume": {"action": "set", "level": 10},
    "notify": {"action": "show", "text": "test"},
    "portal": {"action": "close"},
    "now_playing": {"action": "show"},
    "meta": {"action": "show"},
}
#: A harmless command per kind, to probe a box (errors, isolation, unreachable).
PROBES: Final[dict[str, Callable[[int], dict[str, Any]]]] = {
    "volume": lambda n: {"action": "set", "level": n},
    "notify": lambda n: {"action": "show", "text": f"probe {n}"},
}


def _level(view: dict[str, Any]) -> Any:
    return (view.get("volume") or {}).get("level")


def _state(view: dict[str, Any]) -> Any:
    return (view.get("media") or {}).get("state")


def _muted(view: dict[str, Any]) -> Any:
    return (view.get("volume") or {}).get("muted")


def _get(view: dict[str, Any], kind: str, key: str) -> Any:
    value = view.get(kind)
    return value.get(key) if isinstance(value, dict) else None


def _schema_problem(kind: str, state: Any) -> str | None:
    errors = list(_VALIDATORS[kind].iter_errors(state))
    return f"state {errors[0].json_path}: {errors[0].message}" if errors else None


def _disagreement(kind: str, reported: Any, seen: dict[str, Any]) -> str | None:
    """Does the state the adapter reports agree with what the box shows? (None: it does.)"""
    if kind not in seen or kind == "keys":
        return None
    box = seen[kind]
    if kind == "channel":
        same = same_channel(reported, box) if isinstance(box, dict) or box is None else True
    elif kind == "power":
        same = _get({"k": reported}, "k", "on") == box.get("on")
    elif kind == "volume":
        same = reported == {"level": box.get("level"), "muted": box.get("muted")}
    elif kind == "media":
        same = all(_get({"k": reported}, "k", f) == box.get(f) for f in ("state", "url"))
    elif kind == "notify":
        same = _get({"k": reported}, "k", "text") == box.get("text")
    elif kind == "portal":
        same = all(_get({"k": reported}, "k", f) == box.get(f) for f in ("open", "url"))
    elif kind == "app":
        same = _get({"k": reported}, "k", "running") == box.get("running")
    else:
        return None
    return None if same else f"the adapter reports {reported!r:.80} but the box shows {box!r:.80}"


class StbSuite:
    def __init__(
        self,
        gateway: Gateway,
        report: Report,
        adapter: Any,
        provides: frozenset[str],
        *,
        box: Any = None,
    ) -> None:
        self.gateway = gateway
        self.report = report
        self.adapter = adapter
        self.provides = provides
        self.box = box  # the simulated box, when the kit started one
        self.device_id: str | None = None
        self.observer: Observer | None = None
        fleet = getattr(adapter, "fleet", None)
        self.timeout_s = float(fleet.limits.timeout_s) if fleet is not None else 3.0
        self.lineup = getattr(fleet, "lineup", None)
        self._probe_kind = next((k for k in PROBES if k in provides), None)
        self._probes = 40

    def _add(self, group: str, name: str, result: Result, **kw: Any) -> Check:
        kind = kw.get("capability")
        if group == "contract" and kind and self.device_id and result in (Result.PASS, Result.FAIL):
            # A kind the box does only partly (docs/operators.md) is reported so — never as passed,
            # and its verbs the box refuses for that reason are that, not the adapter's failure.
            why = degraded_kinds(self.adapter, self.device_id).get(kind)
            refused = result is Result.FAIL and str(kw.get("detail", "")).startswith("not_supported")
            if why and (result is Result.PASS or refused):
                result = Result.DEGRADED
                kw["detail"] = why if why.startswith("degraded") else f"degraded: {why}"
        return self.report.add(Check(group=group, name=name, result=result, **kw))

    def _key(self, kind: str, device_id: str | None = None) -> str:
        device = self.gateway.registry.device(device_id or self.device_id or "")
        if device is not None:
            for cap in device.profile.capabilities:
                if cap.kind == kind:
                    return cap.key
        return kind

    def _held(self, kind: str) -> Any:
        device = self.gateway.registry.device(self.device_id or "")
        held = device.states.get(self._key(kind)) if device is not None else None
        return held.value if held is not None else None

    async def _send(self, kind: str, value: Any, device_id: str | None = None) -> tuple[Any, float]:
        started = time.perf_counter()
        device = device_id or self.device_id or ""
        result = await self.gateway.commands.async_send(device, self._key(kind, device), value)
        return result, (time.perf_counter() - started) * 1000

    async def _seen(self) -> dict[str, Any]:
        assert self.observer is not None
        return await self.observer.async_read()

    def _requests(self) -> int | None:
        return getattr(self.observer, "requests", None)

    def _next_probe(self) -> dict[str, Any]:
        assert self._probe_kind is not None
        self._probes += 1
        return PROBES[self._probe_kind](self._probes)

    # -- adoption ----------------------------------------------------------------------

    async def async_adopt(self, target: str, options: dict[str, Any]) -> bool:
        started = time.perf_counter()
        try:
            device = await self.adapter.async_adopt(HOUSEHOLD, target, **options)
        except Exception as exc:
            self._add("contract", "adopt the box", Result.FAIL, detail=f"{type(exc).__name__}: {exc}")
            return False
        self.device_id = device.id
        self.observer = (
            SimObserver(self.box)
            if self.box is not None
            else DriverObserver(self.adapter, device.id, self.provides)
        )
        self._add(
            "contract",
            "adopt the box",
            Result.PASS,
            latency_ms=(time.perf_counter() - started) * 1000,
            detail=f"{device.id} in {HOUSEHOLD}"
            + ("" if self.observer.independent else "; effects read through the adapter (live box)"),
        )
        return True

    async def async_close(self) -> None:
        if self.observer is not None:
            await self.observer.async_close()

    # -- the contract ------------------------------------------------------------------

    def _steps(self, first_lcn: int | None) -> dict[str, list[tuple[str, dict[str, Any], OnBox]]]:
        lineup = self.lineup
        first = lineup.by_lcn(first_lcn) if lineup is not None and first_lcn is not None else None
        second = lineup.step(first, 1) if lineup is not None and first is not None else None
        channel: list[tuple[str, dict[str, Any], OnBox]] = []
        if first is not None:
            channel = [
                (
                    "tune by number",
                    {"action": "tune", "lcn": first_lcn},
                    lambda b, a: same_channel(a["channel"], first),
                ),
                ("up", {"action": "up"}, lambda b, a: same_channel(a["channel"], second)),
                (
                    "down",
                    {"action": "down"},
                    lambda b, a: same_channel(b["channel"], second) and same_channel(a["channel"], first),
                ),
            ]
        return {
            "power": [("on (already on)", {"action": "on"}, lambda b, a: _get(a, "power", "on") is True)],
            # Keys prove themselves by what they do to the box: every box, of every operator, has
            # a volume to turn up and a mute to toggle, and shows both.
            "keys": [
                (
                    "two VOL_UP raise the box's volume by two",
                    {"action": "press", "keys": ["VOL_UP", "VOL_UP"]},
                    lambda b, a: _level(a) == min(100, _level(b) + 2),
                ),
                (
                    "two VOL_DOWN lower it again",
                    {"action": "press", "keys": ["VOL_DOWN", "VOL_DOWN"]},
                    lambda b, a: _level(a) == max(0, _level(b) - 2),
                ),
                (
                    "MUTE mutes the box",
                    {"action": "press", "keys": ["MUTE"]},
                    lambda b, a: _muted(b) is False and _muted(a) is True,
                ),
                (
                    "MUTE again unmutes it",
                    {"action": "press", "keys": ["MUTE"]},
                    lambda b, a: _muted(b) is True and _muted(a) is False,
                ),
            ],
            "channel": channel,
            "app": [
                (
                    "launch",
                    {"action": "launch", "app": "YouTube", "url": "https://www.youtube.com/tv"},
                    lambda b, a: _get(a, "app", "running") == "YouTube",
                ),
                (
                    "stop",
                    {"action": "stop", "app": "YouTube"},
                    lambda b, a: (
                        _get(b, "app", "running") == "YouTube" and _get(a, "app", "running") != "YouTube"
                    ),
                ),
            ],
            "media": [
                (
                    "play",
                    {"action": "play", "url": MEDIA_URL, "title": "认证 Certification"},
                    lambda b, a: _state(a) == "playing" and _get(a, "media", "url") == MEDIA_URL,
                ),
                ("pause", {"action": "pause"}, lambda b, a: _state(b) == "playing" and _state(a) == "paused"),
                (
                    "resume",
                    {"action": "resume"},
                    lambda b, a: _state(b) == "paused" and _state(a) == "playing",
                ),
                ("stop", {"action": "stop"}, lambda b, a: _state(b) == "playing" and _state(a) == "stopped"),
            ],
            "volume": [
                ("set", {"action": "set", "level": 37}, lambda b, a: _level(b) != 37 and _level(a) == 37),
                (
                    "mute",
                    {"action": "mute", "muted": True},
                    lambda b, a: _muted(b) is False and _muted(a) is True,
                ),
                (
                    "unmute",
                    {"action": "mute", "muted": False},
                    lambda b, a: _muted(b) is True and _muted(a) is False,
                ),
            ],
            "notify": [
                (
                    "show",
                    {"action": "show", "text": NOTICE, "title": "Linli", "level": "warning"},
                    lambda b, a: _get(a, "notify", "text") == NOTICE,
                ),
                (
                    "clear",
                    {"action": "clear"},
                    lambda b, a: _get(b, "notify", "text") == NOTICE and _get(a, "notify", "text") is None,
                ),
            ],
            "portal": [
                (
                    "open the Linli portal",
                    {"action": "open"},
                    lambda b, a: (
                        _get(a, "portal", "open") is True and "/tv/" in (_get(a, "portal", "url") or "")
                    ),
                ),
                (
                    "open a page",
                    {"action": "open", "url": PAGE_URL},
                    lambda b, a: (
                        _get(b, "portal", "url") != PAGE_URL and _get(a, "portal", "url") == PAGE_URL
                    ),
                ),
                (
                    "close",
                    {"action": "close"},
                    lambda b, a: _get(b, "portal", "open") is True and _get(a, "portal", "open") is False,
                ),
            ],
        }

    async def async_contract(self, lineup_first_lcn: int | None) -> None:
        steps = self._steps(lineup_first_lcn)
        for kind in STB_KINDS:
            if kind not in self.provides:
                await self._refused(
                    "contract", "not declared", kind, SAMPLE[kind], "not_supported", Result.NOT_DECLARED
                )
                continue
            if kind in ("now_playing", "meta"):
                await self._read_only(kind)
                continue
            if kind == "channel" and not steps["channel"]:
                self._add(
                    "contract",
                    "tune by number",
                    Result.FAIL,
                    capability=kind,
                    detail="the adapter's lineup is empty",
                )
                continue
            for name, command, on_box in steps[kind]:
                await self._step(kind, name, command, on_box)
        await self._refusals()

    async def _step(
        self, kind: str, name: str, command: dict[str, Any], on_box: OnBox, group: str = "contract"
    ) -> bool:
        before = await self._seen()
        try:
            result, ms = await self._send(kind, command)
        except CommandError as exc:
            self._add(
                group,
                name,
                Result.FAIL,
                capability=kind,
                command=command,
                detail=f"{exc.code}: {exc.message}",
            )
            return False
        state = result.get("state") if isinstance(result, dict) else result
        problem = _schema_problem(kind, state)
        if (
            problem is None
            and kind == "keys"
            and isinstance(state, dict)
            and state["last"] != command["keys"]
        ):
            problem = f"the state names keys {state['last']!r}, not the ones pressed"
        if problem is None and self._held(kind) != state:
            problem = f"the registry holds {self._held(kind)!r:.80}, not the confirmed state"
        if problem is None:
            # The box's own account: polled briefly (going dark, say, takes a box a moment).
            deadline = time.monotonic() + _SETTLE_S
            while True:
                after = await self._seen()
                try:
                    shown = bool(on_box(before, after))
                except (KeyError, TypeError):
                    shown = False
                if shown or time.monotonic() >= deadline:
                    break
                await asyncio.sleep(0.02)
            if not shown:
                seen = after.get("volume") if kind == "keys" else after.get(kind)
                problem = f"the box does not show it: {kind} on the box is {seen!r:.120}"
            else:
                problem = _disagreement(kind, state, after)
        self._add(
            group,
            name,
            Result.FAIL if problem else Result.PASS,
            capability=kind,
            command=command,
            latency_ms=ms,
            detail=problem
            or ("seen on the box" if self.observer and self.observer.independent else "read back"),
        )
        return problem is None

    async def _read_only(self, kind: str) -> None:
        if kind == "now_playing" and "channel" in self.provides:
            with contextlib.suppress(CommandError):
                await self._send("channel", {"action": "up"})  # something on screen to report
        held = self._held(kind)
        seen = await self._seen()
        problem = "no state reported" if held is None else _schema_problem(kind, held)
        if problem is None and kind == "meta":
            if held.get("adapter") != self.report.adapter:
                problem = f"meta names adapter {held.get('adapter')!r}"
            elif self.observer is not None and self.observer.independent:
                identity = seen.get("identity") or {}
                marks = [
                    "".join(c for c in str(v).lower() if c in "0123456789abcdef")
                    for v in identity.values()
                    if v
                ]
                got = "".join(c for c in str(held.get("id") or "").lower() if c in "0123456789abcdef")
                if not got or not any(mark and mark in got for mark in marks):
                    problem = f"meta says the box is {held.get('id')!r}, the box says {identity!r:.100}"
        if problem is None and kind == "now_playing" and "channel" in self.provides:
            if held.get("source") != "channel" or not same_channel(held.get("channel"), seen.get("channel")):
                problem = f"now_playing says {held!r:.80}, the box shows {seen.get('channel')!r:.80}"
        self._add(
            "contract",
            "state reported",
            Result.FAIL if problem else Result.PASS,
            capability=kind,
            detail=problem or "",
        )
        await self._refused("refusals", "read-only", kind, {"action": "set"}, "not_supported")

    async def _refused(
        self, group: str, name: str, kind: str, value: Any, code: str, passed: Result = Result.PASS
    ) -> bool:
        """The command is refused with `code`, and the box never hears of it."""
        before, requests = await self._seen(), self._requests()
        started = time.perf_counter()
        try:
            await self.gateway.commands.async_send(self.device_id or "", kind, value)
        except CommandError as exc:
            ms = (time.perf_counter() - started) * 1000
            problem = None if exc.code == code else f"expected {code}, got {exc.code}: {exc.message}"
            after, later = await self._seen(), self._requests()
            if problem is None and requests is not None and later is not None and later != requests:
                problem = f"refused, but only after asking the box ({later - requests} request(s))"
            if problem is None and {k: v for k, v in after.items() if k != "keys"} != {
                k: v for k, v in before.items() if k != "keys"
            }:
                problem = "refused, but the box's state changed"
            self._add(
                group,
                name,
                Result.FAIL if problem else passed,
                capability=kind,
                command=value,
                latency_ms=ms,
                detail=problem or exc.message,
            )
            return problem is None
        self._add(
            group,
            name,
            Result.FAIL,
            capability=kind,
            command=value,
            detail=f"expected {code}, the command succeeded",
        )
        return False

    async def _refusals(self) -> None:
        await self._refused("refusals", "unknown capability", "frobnicate", {"action": "on"}, "not_supported")
        declared = [k for k in STB_KINDS if k in self.provides and k not in ("now_playing", "meta")]
        if declared:
            await self._refused(
                "refusals", "unknown verb", declared[0], {"action": "explode"}, "not_supported"
            )
            await self._refused("refusals", "not an object", declared[0], "on", "invalid_command")
        if "volume" in self.provides:
            await self._refused(
                "refusals", "bad parameters", "volume", {"action": "set", "level": 101}, "invalid_command"
            )
        elif "notify" in self.provides:
            await self._refused(
                "refusals", "bad parameters", "notify", {"action": "show", "text": ""}, "invalid_command"
            )
        if "channel" in self.provides:
            await self._refused(
                "refusals",
                "channel not in lineup",
                "channel",
                {"action": "tune", "lcn": 9999},
                "invalid_command",
            )

    # -- errors injected into the box ------------------------------------------------------

    async def async_errors(self) -> None:
        group = "errors"
        cases = (
            ("fault", "the box answers an error", ("box_error",)),
            ("malformed", "the box answers garbage", ("box_error",)),
            ("hang", "the box never finishes its answer", ("box_error", "unavailable")),
        )
        if self.box is None or self._probe_kind is None or not hasattr(self.box, "misbehave"):
            why = (
                "live box: errors can be injected only into the simulated box"
                if self.box is None
                else "no probe"
            )
            for _, name, _ in cases:
                self._add(group, name, Result.SKIP, detail=why)
            return
        kind = self._probe_kind
        bound = self.timeout_s + 1.5
        for mode, name, codes in cases:
            command = self._next_probe()
            held_before = self._held(kind)
            self.box.misbehave = mode
            started = time.perf_counter()
            problem, detail = None, ""
            try:
                await self._send(kind, command)
                problem = f"the box answered {mode}, yet the command succeeded"
            except CommandError as exc:
                elapsed = time.perf_counter() - started
                if exc.code not in codes:
                    problem = f"expected {' or '.join(codes)}, got {exc.code}: {exc.message}"
                elif elapsed > bound:
                    problem = f"took {elapsed:.1f} s (bound {bound:.1f} s)"
                detail = exc.message
            finally:
                self.box.misbehave = None
            ms = (time.perf_counter() - started) * 1000
            seen = await self._seen()
            if (
                problem is None
                and seen.get(kind, {})
                and _disagreement(kind, self._state_of(kind, command), seen) is None
            ):
                problem = "the box's state shows the command, though it failed"
            if problem is None and self._held(kind) != held_before:
                problem = f"the registry now holds {self._held(kind)!r:.80}, though the command failed"
            self._add(
                group,
                name,
                Result.FAIL if problem else Result.PASS,
                capability=kind,
                command=command,
                latency_ms=ms,
                detail=problem or detail[:200],
            )
        command = self._next_probe()
        await self._step(kind, "works again once the box does", command, self._shows(kind, command), group)

    @staticmethod
    def _state_of(kind: str, command: dict[str, Any]) -> Any:
        if kind == "volume":
            return {"level": command["level"], "muted": False}
        return {"text": command.get("text")}

    @staticmethod
    def _shows(kind: str, command: dict[str, Any]) -> OnBox:
        if kind == "volume":
            return lambda b, a: _level(a) == command["level"]
        return lambda b, a: _get(a, "notify", "text") == command.get("text")

    # -- unreachable -----------------------------------------------------------------------

    async def async_unreachable(self, target: str, power: bool) -> None:
        group = "unreachable"
        bound = self.timeout_s + 3.0
        if not power or "power" not in self.provides:
            why = (
                "live box: pass --power to turn it off and wake it"
                if "power" in self.provides
                else "power not declared"
            )
            self._add(group, "power off", Result.SKIP, capability="power", detail=why)
        else:
            off = await self._step(
                "power",
                "power off",
                {"action": "off"},
                lambda b, a: _get(b, "power", "on") is True and _get(a, "power", "on") is False,
                group,
            )
            if off and self._probe_kind is not None:
                await self._while_off(group, self._probe_kind, bound)
            await self._step(
                "power",
                "power on wakes it",
                {"action": "on"},
                lambda b, a: _get(b, "power", "on") is False and _get(a, "power", "on") is True,
                group,
            )
            device = self.gateway.registry.device(self.device_id or "")
            online = device is not None and device.available
            self._add(
                group,
                "back online",
                Result.PASS if online else Result.FAIL,
                capability="power",
                detail="" if online else "the registry still has it offline",
            )
        await self._refusing_address(group, target, bound)
        await self._silent_address(group, target, bound)

    async def _while_off(self, group: str, kind: str, bound: float) -> None:
        deadline = time.monotonic() + bound
        error: CommandError | None = None
        elapsed = 0.0
        command = self._next_probe()
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                await self.gateway.commands.async_send(self.device_id or "", self._key(kind), command)
            except CommandError as exc:
                error, elapsed = exc, time.perf_counter() - started
                if exc.code == "unavailable":
                    break
            await asyncio.sleep(0.1)  # going to sleep takes a box a moment
        if error is None or error.code != "unavailable":
            got = f"{error.code}: {error.message}" if error else "commands kept succeeding"
            self._add(
                group,
                "command while off",
                Result.FAIL,
                capability=kind,
                detail=f"expected unavailable; {got}",
            )
            return
        problem = None
        if getattr(error, "last_seen", None) is None or "last seen" not in error.message:
            problem = "no last-seen time in the error"
        elif elapsed > bound:
            problem = f"took {elapsed:.1f} s (bound {bound:.1f} s)"
        self._add(
            group,
            "command while off",
            Result.FAIL if problem else Result.PASS,
            capability=kind,
            latency_ms=elapsed * 1000,
            detail=problem or error.message[:200],
        )
        device = self.gateway.registry.device(self.device_id or "")
        self._add(
            group,
            "marked offline",
            Result.PASS if device is not None and not device.available else Result.FAIL,
            capability="power",
        )

    async def _adopt_fails(self, group: str, name: str, dead: str, bound: float) -> None:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(self.adapter.async_adopt(HOUSEHOLD, dead), bound + 5)
        except TimeoutError:
            self._add(
                group, name, Result.FAIL, detail=f"adoption of {dead} still waiting after {bound + 5:.0f} s"
            )
            return
        except Exception as exc:
            elapsed = time.perf_counter() - started
            ok = elapsed <= bound and "cannot" in str(exc)
            self._add(
                group,
                name,
                Result.PASS if ok else Result.FAIL,
                latency_ms=elapsed * 1000,
                detail=str(exc)[:200] if ok else f"{elapsed:.1f} s: {exc}"[:200],
            )
            return
        self._add(group, name, Result.FAIL, detail=f"adopted {dead} without an answer")

    async def _refusing_address(self, group: str, target: str, bound: float) -> None:
        """Nothing listens there: the connection is refused at once."""
        parts = urlsplit(target)
        await self._adopt_fails(
            group,
            "address that refuses",
            urlunsplit(parts._replace(netloc=f"127.0.0.1:{free_port()}")),
            bound,
        )

    async def _silent_address(self, group: str, target: str, bound: float) -> None:
        """Something accepts the connection and never says a word: only the adapter's timeout ends it."""
        held: list[asyncio.StreamWriter] = []

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)
            with contextlib.suppress(Exception):
                await reader.read()  # until the adapter gives up and hangs up

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            parts = urlsplit(target)
            await self._adopt_fails(
                group,
                "address that never answers",
                urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}")),
                bound,
            )
            if not held:
                self.report.checks[-1].result = Result.FAIL
                self.report.checks[-1].detail = "the adapter never connected to the silent address"
        finally:
            for writer in held:
                writer.close()
            server.close()
            await server.wait_closed()

    # -- isolation between boxes ------------------------------------------------------------

    async def async_isolation(self, other: Any, options: dict[str, Any]) -> None:
        """With a second box of the same adapter: one box's trouble is not the other's."""
        group = "isolation"
        names = ("a hanging box does not hold up another", "a box that vanishes does not stop the adapter")
        if other is None or self._probe_kind is None:
            for name in names:
                self._add(group, name, Result.SKIP, detail="live box: needs a second, simulated box")
            return
        kind = self._probe_kind
        try:
            device = await self.adapter.async_adopt(HOUSEHOLD, str(other.url), **options)
        except Exception as exc:
            for name in names:
                self._add(group, name, Result.FAIL, detail=f"a second box cannot be adopted: {exc}"[:200])
            return
        stuck: asyncio.Task[Any] | None = None
        try:
            other.misbehave = "hang"
            stuck = asyncio.get_running_loop().create_task(self._send(kind, self._next_probe(), device.id))
            await asyncio.sleep(0.05)  # the other box's command is under way, and hanging
            command = self._next_probe()
            fine = await self._step(kind, names[0], command, self._shows(kind, command), group)
            last = self.report.checks[-1]
            limit_ms = self.timeout_s * 1000 / 2
            if fine and (last.latency_ms or 0) > limit_ms:
                last.result, last.detail = (
                    Result.FAIL,
                    f"took {last.latency_ms:.0f} ms while the other box hung",
                )
            elif fine and stuck.done():
                last.result, last.detail = (
                    Result.FAIL,
                    "the hanging box's command was over before the test was",
                )
            with contextlib.suppress(CommandError):
                await stuck
            other.misbehave = None
            await other.async_stop()  # unplugged, and gone from the network
            problem = None
            try:
                await self._send(kind, self._next_probe(), device.id)
                problem = "a command to the vanished box succeeded"
            except CommandError as exc:
                if exc.code != "unavailable":
                    problem = f"expected unavailable from the vanished box, got {exc.code}: {exc.message}"
            slot = self._slot()
            if problem is None and slot is not None and slot.state is not AdapterState.RUNNING:
                problem = f"the adapter is {slot.state.value}: {slot.reason}"
            command = self._next_probe()
            if problem is None:
                before = await self._seen()
                try:
                    await self._send(kind, command)
                    if not self._shows(kind, command)(before, await self._seen()):
                        problem = "the first box no longer shows commands"
                except CommandError as exc:
                    problem = f"the first box no longer answers: {exc.code}: {exc.message}"
            self._add(
                group,
                names[1],
                Result.FAIL if problem else Result.PASS,
                capability=kind,
                detail=problem or "",
            )
        finally:
            other.misbehave = None
            if stuck is not None and not stuck.done():
                stuck.cancel()
                with contextlib.suppress(BaseException):
                    await stuck
            with contextlib.suppress(Exception):
                await self.gateway.registry.async_remove_device(device.id)

    def _slot(self) -> Any:
        host = self.gateway.components.get("adapters")
        return getattr(host, "slots", {}).get(self.report.adapter)
