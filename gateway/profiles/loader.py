"""Loading and checking firmware profiles.

Every error names the file and the JSON path of the offending value, e.g.
`firmware_profiles/acme/door.json: $.capabilities[2].kind: 'dor' is not one of [...]`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from linli.firmware_profiles import PROFILE_DIR, SCHEMA_PATH
from linli.gateway.capabilities import KINDS
from linli.gateway.profiles.model import CapabilitySpec, FirmwareFit, Profile, parse_version

_LOGGER = logging.getLogger(__name__)
MAX_PROFILE_BYTES = 256 * 1024


class ProfileError(ValueError):
    """A profile that cannot be used; `errors` lists every problem found."""

    def __init__(self, path: str, errors: list[str]) -> None:
        self.path = path
        self.errors = errors
        super().__init__("\n".join(f"{path}: {error}" for error in errors))


@cache
def profile_validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _json_key(value: Any) -> tuple[bool, Any]:
    # JSON equality: 1 == 1.0, but true is not 1.
    return (type(value) is bool, value)


def _semantic_errors(data: dict[str, Any]) -> list[str]:
    """What the JSON Schema cannot say: cross-field rules of the capability model."""
    errors: list[str] = []
    seen: set[str] = set()
    for index, cap in enumerate(data.get("capabilities", [])):
        where = f"$.capabilities[{index}]"
        key, kind = cap["key"], cap["kind"]
        if key in seen:
            errors.append(f"{where}.key: duplicate capability key {key!r}")
        seen.add(key)
        spec = KINDS.get(kind)
        binary = spec is not None and spec.binary
        if binary and "value_on" not in cap:
            errors.append(
                f"{where}: binary kind {kind!r} needs explicit value_on and value_off "
                "(the device's values for the active and the idle state)"
            )
        if not binary and "value_on" in cap:
            errors.append(f"{where}.value_on: kind {kind!r} is not binary; remove value_on/off")
        if "value_on" in cap and _json_key(cap["value_on"]) == _json_key(cap.get("value_off")):
            errors.append(f"{where}.value_off: equals value_on {cap['value_on']!r}")
        if "value_off" in cap and any(
            _json_key(v) == _json_key(cap["value_off"]) for v in cap.get("values_on", ())
        ):
            errors.append(f"{where}.values_on: contains value_off {cap['value_off']!r}")
        composite = isinstance(cap["source"], dict)
        if composite and "aliases" in cap:
            errors.append(f"{where}.aliases: a composite source names each part's field; remove aliases")
        object_kind = spec is not None and spec.value_schema.get("type") == "object"
        if composite and not object_kind:
            errors.append(f"{where}.source: kind {kind!r} takes one field, not an object")
        if spec is not None and object_kind and not composite:
            errors.append(
                f"{where}.source: kind {kind!r} is composite; map each part, "
                f"e.g. {{{', '.join(repr(c) + ': ...' for c in spec.components)}}}"
            )
        if "schema" in cap:
            try:
                Draft202012Validator.check_schema(cap["schema"])
            except SchemaError as exc:
                errors.append(f"{where}.schema: not a valid JSON Schema: {exc.message}")
        if cap.get("access", "r") != "r" and composite:
            errors.append(f"{where}.access: composite capabilities are read-only")
    firmware = data.get("firmware", {})
    low, high = firmware.get("min"), firmware.get("max")
    if low and high and (parse_version(low) or ()) > (parse_version(high) or ()):
        errors.append(f"$.firmware: min {low!r} is above max {high!r}")
    return errors


def check_profile_data(data: Any) -> list[str]:
    """Every problem with a parsed profile, each prefixed with its JSON path."""
    validator = profile_validator()
    errors = [
        f"{error.json_path}: {error.message}"
        for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    ]
    if errors or not isinstance(data, dict):
        return errors
    return _semantic_errors(data)


def read_profile(path: Path) -> dict[str, Any]:
    """Parse one profile file; ProfileError if it is not readable JSON."""
    return _parse(path, _read_bytes(path))


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_PROFILE_BYTES:
            raise ProfileError(str(path), [f"$: file is {size} bytes, over {MAX_PROFILE_BYTES}"])
        return path.read_bytes()
    except OSError as exc:
        raise ProfileError(str(path), [f"$: cannot read: {exc.strerror}"]) from None


def _parse(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        return json.loads(raw)  # type: ignore[no-any-return]
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(str(path), [f"$: not valid JSON: {exc}"]) from None


def build_profile(data: dict[str, Any], path: str) -> Profile:
    """A usable Profile from data that passed `check_profile_data`."""
    supervision = data.get("supervision", {})
    firmware = data.get("firmware", {})
    caps = []
    for raw in data["capabilities"]:
        spec = KINDS.get(raw["kind"])
        default_schema = spec.value_schema if spec else {}
        access = raw.get("access", "r")
        command = raw.get("command", {})
        cap = CapabilitySpec(
            key=raw["key"],
            kind=raw["kind"],
            name=raw.get("name", raw["key"].replace("_", " ")),
            source=raw["source"],
            unit=raw.get("unit", spec.unit if spec else None),
            access=access,
            value_on=raw.get("value_on"),
            value_off=raw.get("value_off"),
            values_on=tuple(raw.get("values_on", ())),
            aliases=tuple(raw.get("aliases", ())),
            names=dict(raw.get("names", {})),
            scale=raw.get("scale"),
            offset=raw.get("offset"),
            schema=raw.get("schema", default_schema),
            command_topic=command.get("topic", "~/set") if access != "r" else None,
            command_field=command.get("field", raw["source"]) if access != "r" else None,
        )
        cap.compile()
        caps.append(cap)
    return Profile(
        id=data["id"],
        vendor=data["vendor"],
        model=data["model"],
        name=data["name"],
        path=path,
        firmware_min=parse_version(firmware["min"]) if "min" in firmware else None,
        firmware_max=parse_version(firmware["max"]) if "max" in firmware else None,
        match=data.get("match", {}),
        supervision_s=supervision.get("interval_s"),
        availability_topic=supervision.get("availability_topic"),
        payload_available=supervision.get("payload_available", "online"),
        payload_not_available=supervision.get("payload_not_available", "offline"),
        capabilities=caps,
        raw=data,
        names=dict(data.get("names", {})),
    )


# A profile's check depends on its bytes alone and is most of the cost of loading it (the
# JSON Schema): a folder read again (the watcher after a change, another gateway in the same
# process, as in the tests) checks again only the files whose bytes changed. Keyed by digest, so
# the cache holds no file's contents; emptied if it ever grows past what any folder holds.
_CHECKED: dict[bytes, tuple[str, ...]] = {}
_CHECKED_MAX = 4096


def load_profile(path: Path) -> Profile:
    raw = _read_bytes(path)
    data = _parse(path, raw)
    digest = hashlib.sha256(raw).digest()
    errors = _CHECKED.get(digest)
    if errors is None:
        errors = tuple(check_profile_data(data))
        if len(_CHECKED) >= _CHECKED_MAX:
            _CHECKED.clear()
        _CHECKED[digest] = errors
    if errors:
        raise ProfileError(str(path), list(errors))
    return build_profile(data, str(path))


def profile_files(paths: Iterable[Path]) -> list[Path]:
    """Profile files under each path (a file, or a folder searched recursively)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            # the schema file sits beside the profiles it describes, in any copy of the folder
            found += sorted(
                p
                for p in path.rglob("*.json")
                if p.name != SCHEMA_PATH.name and p.resolve() != SCHEMA_PATH.resolve()
            )
        else:
            found.append(path)
    return found


@dataclass(slots=True)
class ProfileSet:
    """All loaded profiles, by id, with the matchers discovery uses."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def get(self, profile_id: str) -> Profile | None:
        return self.profiles.get(profile_id)

    def __len__(self) -> int:
        return len(self.profiles)

    def candidates(
        self, source: str, facts: Mapping[str, str], firmware: str | None = None
    ) -> list[Candidate]:
        """Every profile whose `match.<source>` rule fits the discovered facts, best first.

        A rule fits when each field it names equals the fact (without regard to case; a
        list names alternatives). Better means: more fields matched (model and maker beat
        model alone), then the firmware fit (a profile written for the reported firmware
        beats one with no range, which beats one written for other firmware), then id.
        """
        found: list[Candidate] = []
        for profile in self.profiles.values():
            rule = profile.match.get(source)
            if not rule:
                continue
            fields = 0
            for key, wanted in rule.items():
                if key == "topic":
                    continue  # a filter on where it publishes, not what it is
                if key == "txt" and isinstance(wanted, Mapping):
                    if not all(_same(facts.get(k), v) for k, v in wanted.items()):
                        break
                    fields += len(wanted)
                elif _same(facts.get(key), wanted):
                    fields += 1
                else:
                    break
            else:
                found.append(Candidate(profile=profile, fields=fields, fit=profile.firmware_fit(firmware)))
        found.sort(key=lambda c: (-c.fields, -c.fit.rank, c.profile.id))
        return found

    def match(self, source: str, facts: Mapping[str, str], firmware: str | None = None) -> Profile | None:
        """The best candidate (see `candidates`): a firmware outside a range lowers the rank only."""
        found = self.candidates(source, facts, firmware)
        return found[0].profile if found else None

    def replace_with(self, loaded: ProfileSet) -> ProfilesDelta:
        """Take another load's profiles and errors, in place (every holder of this set sees them).

        Devices already adopted keep the Profile object they were built with until they are
        re-read; the inbox re-matches its waiting items (gateway/discovery/inbox.py).
        """
        old = self.profiles
        delta = ProfilesDelta(
            added=tuple(sorted(set(loaded.profiles) - set(old))),
            removed=tuple(sorted(set(old) - set(loaded.profiles))),
            changed=tuple(
                sorted(
                    pid
                    for pid, profile in loaded.profiles.items()
                    if pid in old and (old[pid].raw != profile.raw or old[pid].path != profile.path)
                )
            ),
        )
        self.profiles.clear()
        self.profiles.update(loaded.profiles)
        self.errors[:] = loaded.errors
        return delta


def _same(fact: str | None, wanted: Any) -> bool:
    if not isinstance(fact, str):
        return False
    fact = fact.strip().casefold()
    if isinstance(wanted, str):
        return fact == wanted.strip().casefold()
    if isinstance(wanted, list):
        return any(isinstance(w, str) and fact == w.strip().casefold() for w in wanted)
    return False


@dataclass(slots=True, frozen=True, kw_only=True)
class Candidate:
    """A profile that fits a discovered device, with why it ranks where it does."""

    profile: Profile
    fields: int  # how many fields of its match rule the device's facts equal
    fit: FirmwareFit


@dataclass(slots=True, frozen=True, kw_only=True)
class ProfilesDelta:
    """What a reload changed, by profile id."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def load_profiles(extra_paths: Iterable[Path] = ()) -> ProfileSet:
    """Load the shipped profiles and any extra folders; broken files are reported, not fatal."""
    result = ProfileSet()
    for path in profile_files([PROFILE_DIR, *extra_paths]):
        try:
            profile = load_profile(path)
        except ProfileError as exc:
            result.errors.extend(str(exc).splitlines())
            _LOGGER.error("profile skipped: %s", exc)
            continue
        if profile.id in result.profiles:
            message = f"{path}: $.id: {profile.id!r} already defined in {result.profiles[profile.id].path}"
            result.errors.append(message)
            _LOGGER.error("profile skipped: %s", message)
            continue
        result.profiles[profile.id] = profile
    return result
