"""Finding adapters: the `linli.adapters` entry-point group and the shipped adapters' folder.

An adapter is a Python package with a `manifest.json`. A service provider's
adapter is found once it is pip-installed with an entry point

    [project.entry-points."linli.adapters"]
    acme_tv = "acme_linli_tv"            # the package that holds manifest.json

The manifest is read without importing the package (its code runs only when
the gateway starts it), so a package that fails to import still shows up, with
the reason, in `linli adapters`. Nothing here imports `adapters/` by module: it
is located by name, like any third-party package.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from linli.gateway.plugins.manifest import Manifest, ManifestError, load_manifest

ENTRY_POINT_GROUP: Final = "linli.adapters"


@dataclass(slots=True, kw_only=True)
class AdapterEntry:
    """One adapter package as found: its manifest, or why it cannot be used."""

    id: str
    module: str
    sources: list[str]
    manifest: Manifest | None
    problem: str | None = None
    path: str | None = None
    manifest_sha256: str | None = None  # of manifest.json as read: what adapters.allowed may pin

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "module": self.module,
            "sources": self.sources,
            "path": self.path,
            "problem": self.problem,
            "manifest_sha256": self.manifest_sha256,
            **({"manifest": self.manifest.as_dict()} if self.manifest else {}),
        }


def _package_dir(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _entry_from(module: str, folder: Path | None, source: str) -> AdapterEntry:
    if folder is None:
        return AdapterEntry(
            id=module.rpartition(".")[2],
            module=module,
            sources=[source],
            manifest=None,
            problem=f"package {module!r} not found (is it installed in this Python?)",
        )
    path = folder / "manifest.json"
    try:
        manifest = load_manifest(path)
    except ManifestError as exc:
        return AdapterEntry(
            id=module.rpartition(".")[2],
            module=module,
            sources=[source],
            manifest=None,
            problem=f"bad manifest {path}: {exc}",
            path=str(path),
        )
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        digest = None
    return AdapterEntry(
        id=manifest.id,
        module=module,
        sources=[source],
        manifest=manifest,
        path=str(path),
        manifest_sha256=digest,
    )


def _entry_points() -> list[tuple[str, str]]:
    found = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        label = f"entry point {ep.name}" + (f" ({dist.name})" if dist is not None else "")
        found.append((ep.value.partition(":")[0].strip(), label))
    return found


def _builtin_folders(package: str) -> list[tuple[str, Path]]:
    base = _package_dir(package)
    if base is None:
        return []
    return [
        (f"{package}.{child.name}", child)
        for child in sorted(base.iterdir())
        if child.is_dir() and not child.name.startswith(("_", ".")) and (child / "manifest.json").is_file()
    ]


def discover(*, builtin_package: str | None = None, entry_points: bool = True) -> list[AdapterEntry]:
    """Every adapter installed, deduplicated by package, in a stable order (by id).

    `builtin_package` is the package whose sub-folders with a manifest.json are the
    adapters shipped with Linli; the composition root names it (adapters.builtin_package),
    the core does not know it.
    """
    by_module: dict[str, AdapterEntry] = {}
    candidates: list[tuple[str, Path | None, str]] = []
    if builtin_package:
        for module, child in _builtin_folders(builtin_package):
            candidates.append((module, child, f"folder {child.parent.name}/{child.name}"))
    if entry_points:
        for module, label in _entry_points():
            candidates.append((module, None, label))
    for module, folder, source in candidates:
        known = by_module.get(module)
        if known is not None:
            if source not in known.sources:
                known.sources.append(source)
            continue
        by_module[module] = _entry_from(module, folder or _package_dir(module), source)
    entries = sorted(by_module.values(), key=lambda e: (e.id, e.module))
    first: dict[str, AdapterEntry] = {}
    for entry in entries:
        if entry.manifest is None:
            continue
        owner = first.setdefault(entry.id, entry)
        if owner is not entry:
            entry.problem = f"adapter id {entry.id!r} is already used by package {owner.module!r}"
    return entries
