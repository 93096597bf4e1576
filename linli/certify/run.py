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
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from linli.certify.doubles import doubles
from linli.certify.harness import Harness
from linli.certify.lifecycle import async_check_isolation, async_check_stop_restart, check_started
from linli.certify.manifest import async_check_manifest
from linli.certify.report import Check, Report, Result
from linli.certify.stb import StbSuite
from linli.gateway.config import load_config
from linli.gateway.plugins import AdapterEntry

#: The folder of the data directory where `linli certify` keeps each adapter's last report.
CERTIFICATIONS = "certifications"

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


def _simulator(spec: str, name: str = "certify-box") -> Any:
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr)(name=name)


async def async_certify(
    adapter_id: str,
    *,
    target: str | None = None,
    json_path: Path | None = None,
    power: bool = False,
    quiet: bool = True,
    entry: AdapterEntry | None = None,
    store_dir: Path | None = None,
) -> Report:
    """Certify an installed adapter (or `entry`, one not installed); the report is also kept in
    `store_dir` as that adapter's last certification, where the gateway shows it (/manage)."""
    report = Report(adapter=adapter_id)
    started = time.perf_counter()
    direct = entry is not None
    with _quiet_logs() if quiet else contextlib.nullcontext():
        entry = await async_check_manifest(adapter_id, report, entry=entry)
        if entry is not None and entry.manifest is not None:
            await _run(report, entry, target, power, direct=direct)
    report.duration_s = time.perf_counter() - started
    if json_path is not None:
        report.write_json(json_path)
    if store_dir is not None and report.version:
        report.write_json(certification_path(store_dir, report.adapter))
    return report


async def _run(
    report: Report, entry: AdapterEntry, target: str | None, power: bool, *, direct: bool = False
) -> None:
    manifest = entry.manifest
    assert manifest is not None
    simulator = other = None
    # An adapter handed to the kit directly (not installed) joins the gateway as the doubles do.
    harness = Harness(manifest, extra=[*doubles(), *([entry] if direct else [])])
    suite: StbSuite | None = None
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
            other = _simulator(manifest.simulator, "certify-box-2")
            await simulator.async_start()
            await other.async_start()
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
        box_port = urlsplit(target).port if target else None
        if manifest.kind == "set_top_box":
            suite = StbSuite(harness.gateway, report, adapter, frozenset(manifest.provides), box=simulator)
            if target is None or not await suite.async_adopt(target, options):
                return
            device_id = suite.device_id
            lineup = getattr(getattr(adapter, "fleet", None), "lineup", None)
            first = lineup.records[0]["lcn"] if lineup is not None and len(lineup) else None
            await suite.async_contract(first)
            await suite.async_errors()
            await suite.async_unreachable(target, power)
            other_options = {"wake_address": "127.0.0.1", "wake_port": other.wake_port} if other else {}
            await suite.async_isolation(other, other_options)
            # volume first: every box that plays anything has it (notify and portal may need an
            # operator's app the box lacks: a degraded kind, not a probe of the adapter's health)
            probe_kind = next((k for k in ("volume", "notify", "portal") if k in manifest.provides), None)
            if probe_kind is not None:
                sample = {"notify": {"action": "clear"}, "volume": {"action": "set", "level": 27}}
                value = sample.get(probe_kind, {"action": "close"})

                async def probe() -> None:
                    assert harness.gateway is not None and device_id is not None
                    await harness.gateway.commands.async_send(device_id, probe_kind, value)

        if suite is not None:
            await suite.async_close()  # the kit's own connections to the box are not the adapter's
        await async_check_stop_restart(harness, report, manifest.id, probe, device_id, box_port)
        await async_check_isolation(harness, report, manifest.id, probe)
    finally:
        if suite is not None:
            await suite.async_close()
        await harness.async_stop()
        for box in (simulator, other):
            if box is not None:
                with contextlib.suppress(Exception):
                    await box.async_stop()


def certification_path(data_dir: Path, adapter_id: str) -> Path:
    """Where an adapter's last certification is kept: the gateway's adapters API reads it from there."""
    return Path(data_dir) / CERTIFICATIONS / f"{adapter_id}.json"


def main(adapter_id: str, *, target: str | None, json_path: Path | None, power: bool) -> int:
    """The `linli certify` command: the table on stdout, the JSON report if asked; the exit status."""
    import asyncio

    # Kept where the gateway with this configuration (LINLI_CONFIG, LINLI_DATA_DIR) shows it.
    # (Only the data directory is wanted: other LINLI_ variables are not the kit's to judge.)
    data_dir = {k: v for k, v in os.environ.items() if k == "LINLI_DATA_DIR"}
    store_dir = Path(load_config(os.environ.get("LINLI_CONFIG"), environ=data_dir)["data_dir"])
    report = asyncio.run(
        async_certify(adapter_id, target=target, json_path=json_path, power=power, store_dir=store_dir)
    )
    print(report.table())
    if json_path is not None:
        print(f"JSON report: {json_path}")
    if not report.version:
        return 2
    return 0 if report.certified else 1
