"""Manifest checks: found, valid against the schema, entry importable, kinds known, settings usable."""

from __future__ import annotations

import asyncio

from linli.certify.report import Check, Report, Result
from linli.gateway.capabilities import STB_KINDS
from linli.gateway.plugins import AdapterEntry, ManifestError, discover, load_adapter_class, settings_for

GROUP = "manifest"


async def async_check_manifest(
    adapter_id: str, report: Report, *, entry: AdapterEntry | None = None
) -> AdapterEntry | None:
    """`entry`: an adapter handed to the kit directly (not installed), else found by discovery."""
    entries = [entry] if entry is not None else await asyncio.to_thread(discover)
    entry = next((e for e in entries if adapter_id in (e.id, e.module)), None)
    if entry is None:
        known = ", ".join(e.id for e in entries) or "none"
        report.add(
            Check(
                group=GROUP,
                name="installed",
                result=Result.FAIL,
                detail=f"no adapter {adapter_id!r} (installed: {known})",
            )
        )
        return None
    report.add(Check(group=GROUP, name="installed", result=Result.PASS, detail="; ".join(entry.sources)))
    manifest = entry.manifest
    if manifest is None or entry.problem:
        report.add(
            Check(group=GROUP, name="schema", result=Result.FAIL, detail=entry.problem or "no manifest")
        )
        return None
    report.adapter, report.version, report.kind = manifest.id, manifest.version, manifest.kind
    report.provides = list(manifest.provides)
    report.add(Check(group=GROUP, name="schema", result=Result.PASS, detail=entry.path or ""))
    try:
        await asyncio.to_thread(load_adapter_class, manifest.entry)
        report.add(Check(group=GROUP, name="entry importable", result=Result.PASS, detail=manifest.entry))
    except Exception as exc:
        report.add(
            Check(
                group=GROUP,
                name="entry importable",
                result=Result.FAIL,
                detail=f"{manifest.entry}: {type(exc).__name__}: {exc}",
            )
        )
        return None
    try:
        settings_for(manifest, {})
        report.add(Check(group=GROUP, name="default settings valid", result=Result.PASS))
    except ManifestError as exc:
        report.add(Check(group=GROUP, name="default settings valid", result=Result.FAIL, detail=str(exc)))
    if manifest.kind == "set_top_box":
        foreign = [k for k in manifest.provides if k not in STB_KINDS]
        report.add(
            Check(
                group=GROUP,
                name="set-top box kinds only",
                result=Result.FAIL if foreign else Result.PASS,
                detail=f"not set-top box kinds: {foreign}" if foreign else ", ".join(manifest.provides),
            )
        )
    if manifest.simulator:
        try:
            await asyncio.to_thread(load_adapter_class_of_simulator, manifest.simulator)
            report.add(
                Check(group=GROUP, name="simulator importable", result=Result.PASS, detail=manifest.simulator)
            )
        except Exception as exc:
            report.add(
                Check(
                    group=GROUP,
                    name="simulator importable",
                    result=Result.FAIL,
                    detail=f"{type(exc).__name__}: {exc}",
                )
            )
    return entry


def load_adapter_class_of_simulator(spec: str) -> type:
    import importlib

    module_name, _, attr = spec.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    for name in ("async_start", "async_stop"):
        if not callable(getattr(cls, name, None)):
            raise TypeError(f"simulator {spec} has no {name}()")
    return cls  # type: ignore[no-any-return]
