"""Lifecycle checks for any adapter: start, stop (nothing left behind), restart, neighbours crashing.

"Nothing left behind" is counted, not inferred: the adapter is stopped once (the
baseline), started and used again, and stopped again; every asyncio task and
every open file or socket that the second run added and that is still there a
moment after `stop` is a leak, and so is any connection still open to its box.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from linli.certify.harness import Harness
from linli.certify.observe import Holdings, connections_to, holdings
from linli.certify.report import Check, Report, Result
from linli.gateway.commands import UnknownDeviceError
from linli.gateway.plugins import AdapterState

GROUP = "lifecycle"
Probe = Callable[[], Awaitable[None]]
_WIND_DOWN_S = 2.0  # closing a socket or ending a task may take the loop a few turns


def check_started(harness: Harness, report: Report, adapter_id: str) -> bool:
    slot = harness.host.slots.get(adapter_id)
    ok = slot is not None and slot.state is AdapterState.RUNNING
    report.add(
        Check(
            group=GROUP,
            name="start",
            result=Result.PASS if ok else Result.FAIL,
            detail=""
            if ok
            else f"state {slot.state.value if slot else 'unknown'}: {slot.reason if slot else ''}",
        )
    )
    return ok


async def _left_behind(baseline: Holdings, box_port: int | None) -> tuple[Holdings, int]:
    """What is still held beyond the baseline, after giving it a moment to wind down."""
    deadline = time.monotonic() + _WIND_DOWN_S
    while True:
        extra = holdings().minus(baseline)
        connections = (connections_to(box_port) or 0) if box_port else 0
        if (not extra and not connections) or time.monotonic() >= deadline:
            return extra, connections
        await asyncio.sleep(0.05)


async def async_check_stop_restart(
    harness: Harness,
    report: Report,
    adapter_id: str,
    probe: Probe | None,
    device_id: str | None,
    box_port: int | None = None,
) -> None:
    host = harness.host
    gateway = harness.gateway
    assert gateway is not None
    # 1. stop: the adapter is stopped and its boxes take no more commands
    started = time.perf_counter()
    await host.async_stop_adapter(adapter_id)
    slot = host.slots[adapter_id]
    problem = None if slot.state is AdapterState.STOPPED else f"state {slot.state.value}"
    if problem is None and device_id is not None:
        try:
            await gateway.commands.async_send(device_id, "volume", {"action": "set", "level": 5})
            problem = "its device still takes commands after stop"
        except UnknownDeviceError:
            pass
        except Exception as exc:
            problem = f"after stop, a command got {type(exc).__name__} instead of unknown_device"
    report.add(
        Check(
            group=GROUP,
            name="stop",
            result=Result.FAIL if problem else Result.PASS,
            latency_ms=(time.perf_counter() - started) * 1000,
            detail=problem or "",
        )
    )
    await asyncio.sleep(0.2)  # the first run's connections wind down; what is left is the baseline
    baseline = holdings()

    # 2. restart: running again, and its box answers
    started = time.perf_counter()
    problem = await _start(harness, adapter_id, probe)
    report.add(
        Check(
            group=GROUP,
            name="restart",
            result=Result.FAIL if problem else Result.PASS,
            latency_ms=(time.perf_counter() - started) * 1000,
            detail=problem or "",
        )
    )

    # 3. stop again: whatever the second run opened is gone
    await host.async_stop_adapter(adapter_id)
    extra, connections = await _left_behind(baseline, box_port)
    no_proc = not baseline.fds.total()  # without /proc only the tasks can be counted
    problems = []
    if extra:
        problems.append(extra.describe())
    if connections:
        problems.append(f"{connections} connection(s) still open to the box (port {box_port})")
    report.add(
        Check(
            group=GROUP,
            name="stop leaves nothing behind",
            result=Result.FAIL if problems else Result.PASS,
            detail="; ".join(problems)[:300]
            if problems
            else "no task, file or socket left" + (" (tasks only: no /proc)" if no_proc else ""),
        )
    )
    problem = await _start(harness, adapter_id, probe)
    if problem is not None:
        report.add(Check(group=GROUP, name="started again", result=Result.FAIL, detail=problem))


async def _start(harness: Harness, adapter_id: str, probe: Probe | None) -> str | None:
    host = harness.host
    state = await host.async_start_adapter(adapter_id)
    if state is not AdapterState.RUNNING:
        return f"state {state.value}: {host.slots[adapter_id].reason}"
    if probe is not None:
        try:
            await probe()
        except Exception as exc:
            return f"after restart its box does not answer: {type(exc).__name__}: {exc}"
    return None


async def async_check_isolation(
    harness: Harness, report: Report, adapter_id: str, probe: Probe | None
) -> None:
    """The adapter under test keeps working while its neighbours crash (the kit's doubles crash on
    purpose; whether the host disables them is the host's business, not this adapter's)."""
    host = harness.host
    gateway = harness.gateway
    assert gateway is not None
    deadline = time.monotonic() + 2.0
    crash = host.slots.get("certify_crash")
    while crash is not None and crash.state is AdapterState.RUNNING and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    slot = host.slots[adapter_id]
    problem = None if slot.state is AdapterState.RUNNING else f"state {slot.state.value}: {slot.reason}"
    if problem is None and not gateway.ready.is_set():
        problem = "the gateway is no longer ready"
    if problem is None and probe is not None:
        try:
            await probe()
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
    report.add(
        Check(
            group=GROUP,
            name="unaffected by neighbours' crashes",
            result=Result.FAIL if problem else Result.PASS,
            detail=problem or "",
        )
    )
