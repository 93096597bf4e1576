"""Running the kit: `linli certify ADAPTER [--target URL] [--json PATH] [--power]`.

Without `--target`, the adapter's own simulated box (manifest `simulator`) is
started on 127.0.0.1 and certified, power cycle included. With `--target`, the
live box at that address is certified; it is turned off and woken only with
`--power`. Exit status: 0 certified, 1 not certified, 2 no such adapter.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from adapters.certify.doubles import doubles
from adapters.certify.harness import Harness
from adapters.certify.lifecycle import async_check_isolation, async_check_stop_restart, check_started
from adapters.certify.manifest import async_check_manifest
from adapters.certify.report import Check, Report, Result
from adapters.certify.stb import StbSuite

_QUIET = ("gateway", "adapters", "amqtt", "transitions", "aiohttp")


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """The kit's doubles crash on purpose; their errors are results, not log noise."""
    loggers = [logging.getLogger(name) for name in _QUIET]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _simulator(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr)(name="certify-box")


async def async_certify(
    adapter_id: str,
    *,
    target: str | None = None,
    json_path: Path | None = None,
    power: bool = False,
    quiet: bool = True,
) -> Report:
    report = Report(adapter=adapter_id)
    started = time.perf_counter()
    with _quiet_logs() if quiet else contextlib.nullcontext():
        entry = await async_check_manifest(adapter_id, report)
        if entry is not None and entry.manifest is not None:
            await _run(report, entry.manifest, target, power)
    report.duration_s = time.perf_counter() - started
    if json_path is not None:
        report.write_json(json_path)
    return report


async def _run(report: Report, manifest: Any, target: str | None, power: bool) -> None:
    simulator = None
    harness = Harness(manifest, extra=doubles())
    try:
        options: dict[str, Any] = {}
        if manifest.kind == "set_top_box" and target is None:
            if not manifest.simulator:
                report.add(
                    Check(
                        group="contract",
                        name="simulated box",
                        result=Result.FAIL,
                        detail="no --target given and the manifest names no simulator",
                    )
                )
                return
            simulator = _simulator(manifest.simulator)
            await simulator.async_start()
            target = str(simulator.url)
            report.simulated = True
            power = True
            if getattr(simulator, "wake_port", None):
                options = {"wake_address": "127.0.0.1", "wake_port": simulator.wake_port}
        report.target = target
        await harness.async_start()
        assert harness.gateway is not None
        if not check_started(harness, report, manifest.id):
            return
        adapter = harness.host.adapter(manifest.id)
        probe: Any = None
        device_id = None
        if manifest.kind == "set_top_box":
            suite = StbSuite(harness.gateway, report, adapter, frozenset(manifest.provides))
            if target is None or not await suite.async_adopt(target, options):
                return
            device_id = suite.device_id
            lineup = getattr(getattr(adapter, "fleet", None), "lineup", None)
            first = lineup.records[0]["lcn"] if lineup is not None and len(lineup) else None
            await suite.async_contract(first)
            await suite.async_unreachable(target, power)
            probe_kind = next((k for k in ("notify", "volume", "portal") if k in manifest.provides), None)
            if probe_kind is not None:
                sample = {"notify": {"action": "clear"}, "volume": {"action": "set", "level": 20}}
                value = sample.get(probe_kind, {"action": "close"})

                async def probe() -> None:
                    assert harness.gateway is not None and device_id is not None
                    await harness.gateway.commands.async_send(device_id, probe_kind, value)

        await async_check_stop_restart(harness, report, manifest.id, probe, device_id)
        await async_check_isolation(harness, report, manifest.id, probe)
    finally:
        await harness.async_stop()
        if simulator is not None:
            await simulator.async_stop()


def main(adapter_id: str, *, target: str | None, json_path: Path | None, power: bool) -> int:
    """The `linli certify` command: the table on stdout, the JSON report if asked; the exit status."""
    import asyncio

    report = asyncio.run(async_certify(adapter_id, target=target, json_path=json_path, power=power))
    print(report.table())
    if json_path is not None:
        print(f"JSON report: {json_path}")
    if not report.version:
        return 2
    return 0 if report.certified else 1
