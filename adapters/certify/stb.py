"""The set-top box contract, exercised the same way against every adapter that claims it.

For each kind of the contract, in a fixed order:

* declared: every verb is sent through `gateway.commands` (as services and the
  portal send them), its latency measured; the state it returns must match the
  kind's JSON Schema, show the verb's effect, and be what the registry now holds;
* not declared: a command to it must fail with `not_supported`, like any verb
  the contract does not have; bad parameters fail with `invalid_command`.

Then the unreachable box: turned off (simulated boxes, or `--power`), every
command is `unavailable` with the last-seen time within the adapter's timeout,
the registry marks it offline, and `power on` wakes it; an address where
nothing answers is refused at adoption, in bounded time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Final

from jsonschema import Draft202012Validator

from adapters.certify.harness import HOUSEHOLD, free_port
from adapters.certify.report import Check, Report, Result
from gateway.capabilities import STB_KINDS
from gateway.commands import CommandError
from gateway.runtime import Gateway
from gateway.stb.schemas import STB_STATE_SCHEMAS

Predicate = Callable[[Any], bool]
MEDIA_URL: Final = "http://127.0.0.1:9/linli-certify/stream.m3u8"
PAGE_URL: Final = "https://example.org/linli-certify"
_VALIDATORS: Final = {kind: Draft202012Validator(schema) for kind, schema in STB_STATE_SCHEMAS.items()}

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


def _steps(first_lcn: int | None) -> dict[str, list[tuple[str, dict[str, Any], Predicate]]]:
    channel_steps: list[tuple[str, dict[str, Any], Predicate]] = []
    if first_lcn is not None:
        channel_steps = [
            (
                "tune by number",
                {"action": "tune", "lcn": first_lcn},
                lambda s: bool(s) and s.get("lcn") == first_lcn,
            ),
            ("up", {"action": "up"}, lambda s: bool(s) and s.get("lcn") != first_lcn),
            ("down", {"action": "down"}, lambda s: bool(s) and s.get("lcn") == first_lcn),
        ]
    return {
        "keys": [("press", {"action": "press", "keys": ["UP", "OK"]}, lambda s: s["last"] == ["UP", "OK"])],
        "channel": channel_steps,
        "app": [
            (
                "launch",
                {"action": "launch", "app": "YouTube", "url": "https://www.youtube.com/tv"},
                lambda s: s["running"] == "YouTube",
            ),
            ("stop", {"action": "stop", "app": "YouTube"}, lambda s: s["running"] != "YouTube"),
        ],
        "media": [
            (
                "play",
                {"action": "play", "url": MEDIA_URL, "title": "认证 Certification"},
                lambda s: s["state"] == "playing" and s["url"] == MEDIA_URL,
            ),
            ("pause", {"action": "pause"}, lambda s: s["state"] == "paused"),
            ("resume", {"action": "resume"}, lambda s: s["state"] == "playing"),
            ("stop", {"action": "stop"}, lambda s: s["state"] == "stopped"),
        ],
        "volume": [
            ("set", {"action": "set", "level": 37}, lambda s: s["level"] == 37),
            ("mute", {"action": "mute", "muted": True}, lambda s: s["muted"] is True),
            ("unmute", {"action": "mute", "muted": False}, lambda s: s["muted"] is False),
        ],
        "notify": [
            (
                "show",
                {
                    "action": "show",
                    "text": "邻里认证 Linli certification",
                    "title": "Linli",
                    "level": "warning",
                },
                lambda s: s["text"] == "邻里认证 Linli certification",
            ),
            ("clear", {"action": "clear"}, lambda s: s["text"] is None),
        ],
        "portal": [
            ("open the Linli portal", {"action": "open"}, lambda s: s["open"] and "/tv/" in (s["url"] or "")),
            (
                "open a page",
                {"action": "open", "url": PAGE_URL},
                lambda s: s["open"] and s["url"] == PAGE_URL,
            ),
            ("close", {"action": "close"}, lambda s: s["open"] is False),
        ],
    }


def _schema_problem(kind: str, state: Any) -> str | None:
    errors = list(_VALIDATORS[kind].iter_errors(state))
    return f"state {errors[0].json_path}: {errors[0].message}" if errors else None


class StbSuite:
    def __init__(self, gateway: Gateway, report: Report, adapter: Any, provides: frozenset[str]) -> None:
        self.gateway = gateway
        self.report = report
        self.adapter = adapter
        self.provides = provides
        self.device_id: str | None = None
        fleet = getattr(adapter, "fleet", None)
        self.timeout_s = float(fleet.limits.timeout_s) if fleet is not None else 3.0

    def _add(self, group: str, name: str, result: Result, **kw: Any) -> Check:
        return self.report.add(Check(group=group, name=name, result=result, **kw))

    def _key(self, kind: str) -> str:
        device = self.gateway.registry.device(self.device_id or "")
        if device is not None:
            for cap in device.profile.capabilities:
                if cap.kind == kind:
                    return cap.key
        return kind

    async def _send(self, kind: str, value: Any) -> tuple[Any, float]:
        assert self.device_id is not None
        started = time.perf_counter()
        result = await self.gateway.commands.async_send(self.device_id, self._key(kind), value)
        return result, (time.perf_counter() - started) * 1000

    async def _expect_error(self, group: str, name: str, kind: str, value: Any, code: str, **kw: Any) -> bool:
        started = time.perf_counter()
        try:
            await self.gateway.commands.async_send(self.device_id or "", kind, value)
        except CommandError as exc:
            ms = (time.perf_counter() - started) * 1000
            ok = exc.code == code
            self._add(
                group,
                name,
                kw.pop("result", Result.PASS) if ok else Result.FAIL,
                capability=kind,
                command=value,
                latency_ms=ms,
                detail=exc.message if ok else f"expected {code}, got {exc.code}: {exc.message}",
                **kw,
            )
            return ok
        self._add(
            group,
            name,
            Result.FAIL,
            capability=kind,
            command=value,
            detail=f"expected {code}, the command succeeded",
        )
        return False

    # -- the suite ---------------------------------------------------------------

    async def async_adopt(self, target: str, options: dict[str, Any]) -> bool:
        started = time.perf_counter()
        try:
            device = await self.adapter.async_adopt(HOUSEHOLD, target, **options)
        except Exception as exc:
            self._add("contract", "adopt the box", Result.FAIL, detail=f"{type(exc).__name__}: {exc}")
            return False
        self.device_id = device.id
        self._add(
            "contract",
            "adopt the box",
            Result.PASS,
            latency_ms=(time.perf_counter() - started) * 1000,
            detail=f"{device.id} in {HOUSEHOLD}",
        )
        return True

    async def async_contract(self, lineup_first_lcn: int | None) -> None:
        steps = _steps(lineup_first_lcn)
        for kind in STB_KINDS:
            if kind not in self.provides:
                await self._expect_error(
                    "contract",
                    "not declared",
                    kind,
                    SAMPLE[kind],
                    "not_supported",
                    result=Result.NOT_DECLARED,
                )
                continue
            if kind == "power":
                await self._step("power", "on (already on)", {"action": "on"}, lambda s: s["on"] is True)
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
            for name, command, predicate in steps[kind]:
                await self._step(kind, name, command, predicate)
        await self._uniform_errors()

    async def _step(
        self, kind: str, name: str, command: dict[str, Any], predicate: Predicate, group: str = "contract"
    ) -> bool:
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
        if problem is None:
            try:
                ok = bool(predicate(state))
            except (KeyError, TypeError):
                ok = False
            if not ok:
                problem = f"state does not show the effect: {state!r:.120}"
        if problem is None:
            device = self.gateway.registry.device(self.device_id or "")
            held = device.states.get(self._key(kind)) if device is not None else None
            if held is None or held.value != state:
                problem = f"the registry holds {held.value if held else None!r:.80}, not the confirmed state"
        self._add(
            group,
            name,
            Result.FAIL if problem else Result.PASS,
            capability=kind,
            command=command,
            latency_ms=ms,
            detail=problem or "",
        )
        return problem is None

    async def _read_only(self, kind: str) -> None:
        device = self.gateway.registry.device(self.device_id or "")
        held = device.states.get(self._key(kind)) if device is not None else None
        if kind == "now_playing" and "channel" in self.provides:
            await self._send("channel", {"action": "up"})  # something on screen to report
            held = device.states.get(self._key(kind)) if device is not None else None
        problem = "no state reported" if held is None else _schema_problem(kind, held.value)
        if (
            problem is None
            and kind == "meta"
            and held is not None
            and held.value.get("adapter") != self.report.adapter
        ):
            problem = f"meta names adapter {held.value.get('adapter')!r}"
        if problem is None and kind == "now_playing" and "channel" in self.provides and held is not None:
            if held.value.get("source") != "channel":
                problem = f"a channel is on, but now_playing says {held.value!r:.80}"
        self._add(
            "contract",
            "state reported",
            Result.FAIL if problem else Result.PASS,
            capability=kind,
            detail=problem or "",
        )
        await self._expect_error("contract", "read-only", kind, {"action": "set"}, "not_supported")

    async def _uniform_errors(self) -> None:
        await self._expect_error(
            "errors", "unknown capability", "frobnicate", {"action": "on"}, "not_supported"
        )
        declared = [k for k in STB_KINDS if k in self.provides and k not in ("now_playing", "meta")]
        if declared:
            await self._expect_error(
                "errors", "unknown verb", declared[0], {"action": "explode"}, "not_supported"
            )
            await self._expect_error("errors", "not an object", declared[0], "on", "invalid_command")
        if "volume" in self.provides:
            await self._expect_error(
                "errors", "bad parameters", "volume", {"action": "set", "level": 101}, "invalid_command"
            )
        elif "notify" in self.provides:
            await self._expect_error(
                "errors", "bad parameters", "notify", {"action": "show", "text": ""}, "invalid_command"
            )
        if "channel" in self.provides:
            await self._expect_error(
                "errors",
                "channel not in lineup",
                "channel",
                {"action": "tune", "lcn": 9999},
                "invalid_command",
            )

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
            ok = await self._step("power", "power off", {"action": "off"}, lambda s: s["on"] is False, group)
            probe_kind = next((k for k in ("volume", "notify", "portal") if k in self.provides), None)
            if ok and probe_kind is not None:
                await self._while_off(group, probe_kind, bound)
            await self._step("power", "power on wakes it", {"action": "on"}, lambda s: s["on"] is True, group)
            device = self.gateway.registry.device(self.device_id or "")
            self._add(
                group,
                "back online",
                Result.PASS if device is not None and device.available else Result.FAIL,
                capability="power",
                detail="" if device is not None and device.available else "the registry still has it offline",
            )
        await self._never_answers(group, target, bound)

    async def _while_off(self, group: str, kind: str, bound: float) -> None:
        sample = {
            "volume": {"action": "set", "level": 12},
            "notify": {"action": "clear"},
            "portal": {"action": "close"},
        }
        deadline = time.monotonic() + bound
        error: CommandError | None = None
        elapsed = 0.0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                await self.gateway.commands.async_send(self.device_id or "", self._key(kind), sample[kind])
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
        last_seen = getattr(error, "last_seen", None)
        problem = None
        if last_seen is None or "last seen" not in error.message:
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

    async def _never_answers(self, group: str, target: str, bound: float) -> None:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(target)
        dead = urlunsplit(parts._replace(netloc=f"127.0.0.1:{free_port()}"))
        started = time.perf_counter()
        try:
            await self.adapter.async_adopt(HOUSEHOLD, dead)
        except Exception as exc:
            elapsed = time.perf_counter() - started
            ok = elapsed <= bound and "cannot" in str(exc)
            self._add(
                group,
                "address that never answers",
                Result.PASS if ok else Result.FAIL,
                latency_ms=elapsed * 1000,
                detail=str(exc)[:200] if ok else f"{elapsed:.1f} s: {exc}"[:200],
            )
            return
        self._add(
            group, "address that never answers", Result.FAIL, detail=f"adopted {dead} without an answer"
        )
