"""An adapter's manifest.json: read, checked against its JSON Schema, and turned into a `Manifest`.

Every error names the file and the JSON path of the offending value, like the
firmware profile checks: `adapters/foo/manifest.json: $.provides[1]: 'tv' is not
a capability kind (one of: app, battery, …)`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from linli.gateway.capabilities import kind_names

SCHEMA_PATH: Final = Path(__file__).resolve().parent / "manifest.schema.json"
MAX_MANIFEST_BYTES: Final = 64 * 1024


class ManifestError(ValueError):
    """A manifest that cannot be used; `errors` lists every problem, each with its JSON path."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__("; ".join(errors))


@cache
def manifest_validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@dataclass(slots=True, kw_only=True, frozen=True)
class Manifest:
    id: str
    name: str
    version: str
    kind: str
    entry: str
    provides: tuple[str, ...]
    permissions: frozenset[str]
    profiles: tuple[str, ...] = ()
    discovery: dict[str, Any] = field(default_factory=dict)
    config_schema: dict[str, Any] = field(default_factory=dict)
    simulator: str | None = None
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "entry": self.entry,
            "provides": list(self.provides),
            "profiles": list(self.profiles),
            "permissions": sorted(self.permissions),
            "discovery": self.discovery,
            "description": self.description,
        }


def check_manifest_data(data: Any) -> list[str]:
    """Every problem with a parsed manifest, each prefixed with its JSON path."""
    errors = [
        f"{error.json_path}: {error.message}"
        for error in sorted(manifest_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    ]
    if not isinstance(data, dict):
        return errors
    known = kind_names()
    provides: list[Any] = data["provides"] if isinstance(data.get("provides"), list) else []
    for index, kind in enumerate(provides):
        if isinstance(kind, str) and kind not in known:
            errors.append(
                f"$.provides[{index}]: {kind!r} is not a capability kind (one of: {', '.join(known)})"
            )
    if isinstance(data.get("config_schema"), dict):
        try:
            Draft202012Validator.check_schema(data["config_schema"])
        except SchemaError as exc:
            errors.append(f"$.config_schema: not a valid JSON Schema: {exc.message}")
    if data.get("kind") == "set_top_box" and not provides:
        errors.append("$.provides: a set_top_box adapter must declare the set-top box kinds it provides")
    return errors


def build_manifest(data: dict[str, Any]) -> Manifest:
    return Manifest(
        id=data["id"],
        name=data["name"],
        version=data["version"],
        kind=data["kind"],
        entry=data["entry"],
        provides=tuple(data["provides"]),
        permissions=frozenset(data["permissions"]),
        profiles=tuple(data.get("profiles", ())),
        discovery=data.get("discovery", {}),
        config_schema=data.get("config_schema", {}),
        simulator=data.get("simulator"),
        description=data.get("description", ""),
        raw=data,
    )


def load_manifest(path: Path) -> Manifest:
    """Read and check one manifest.json; ManifestError with every problem found."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError(source, [f"$: file is {size} bytes, over {MAX_MANIFEST_BYTES}"])
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ManifestError(source, ["$: no manifest.json; every adapter package needs one"]) from None
    except OSError as exc:
        raise ManifestError(source, [f"$: cannot read: {exc.strerror}"]) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(source, [f"$: not valid JSON: {exc}"]) from None
    errors = check_manifest_data(data)
    if errors:
        raise ManifestError(source, errors)
    return build_manifest(data)


def settings_for(manifest: Manifest, given: dict[str, Any] | None) -> dict[str, Any]:
    """The adapter's settings: `given` checked against its config_schema, top-level defaults filled in.

    ManifestError names each offending key as `adapters.settings.<id>.<key>`.
    """
    schema = manifest.config_schema
    settings = copy.deepcopy(given or {})
    for key, spec in schema.get("properties", {}).items():
        if key not in settings and isinstance(spec, dict) and "default" in spec:
            settings[key] = copy.deepcopy(spec["default"])
    if schema:
        errors = []
        for error in Draft202012Validator(schema).iter_errors(settings):
            where = ".".join(str(p) for p in error.absolute_path)
            errors.append(f"adapters.settings.{manifest.id}{'.' + where if where else ''}: {error.message}")
        if errors:
            raise ManifestError(f"adapters.settings.{manifest.id}", errors)
    return settings
