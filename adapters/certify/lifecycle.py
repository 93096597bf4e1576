"""Lifecycle checks for any adapter: start, stop (nothing left behind), restart, crash isolation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from adapters.certify.harness import Harness
from adapters.certify.report import Check, Report, Result
from gateway.commands import UnknownDeviceError
from gateway.plugins import AdapterState

GROUP = "lifecycle"
Probe = Callable[[], Awaitable[None]]


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


async def async_check_stop_restart(
    harness: Harness, report: Report, adapter_id: str, probe: Probe | None, device_id: str | None
) -> None:
    host = harness.host
    gateway = harness.gateway
    assert gateway is not None
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
            name="stop leaves nothing behind",
            result=Result.FAIL if problem else Result.PASS,
            latency_ms=(time.perf_counter() - started) * 1000,
            detail=problem or "",
        )
    )
    started = time.perf_counter()
    state = await host.async_start_adapter(adapter_id)
    problem = (
        None if state is AdapterState.RUNNING else f"state {state.value}: {host.slots[adapter_id].reason}"
    )
    if problem is None and probe is not None:
        try:
            await probe()
        except Exception as exc:
            problem = f"after restart its box does not answer: {type(exc).__name__}: {exc}"
    report.add(
        Check(
            group=GROUP,
            name="restart",
            result=Result.FAIL if problem else Result.PASS,
            latency_ms=(time.perf_counter() - started) * 1000,
            detail=problem or "",
        )
    )


async def async_check_isolation(
    harness: Harness, report: Report, adapter_id: str, probe: Probe | None
) -> None:
    host = harness.host
    gateway = harness.gateway
    assert gateway is not None
    deadline = time.monotonic() + 2.0
    crash = host.slots.get("certify_crash")
    while crash is not None and crash.state is AdapterState.RUNNING and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    for double, expected, name in (
        ("certify_crash", AdapterState.CRASHED, "a crashing neighbour is disabled"),
        ("certify_failstart", AdapterState.FAILED, "a neighbour failing to start is disabled"),
    ):
        slot = host.slots.get(double)
        ok = slot is not None and slot.state is expected and bool(slot.reason)
        report.add(
            Check(
                group=GROUP,
                name=name,
                result=Result.PASS if ok else Result.FAIL,
                detail=(slot.reason or "")
                if ok and slot
                else f"state {slot.state.value if slot else 'missing'}",
            )
        )
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
