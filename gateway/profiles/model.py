"""A loaded firmware profile and the payload mapping compiled from it."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from linli.gateway.capabilities import KINDS, KindSpec
from linli.gateway.profiles.values import ValueCheck, compile_check

ABSENT: Final = object()  # the payload did not mention this capability


class MappingError(ValueError):
    """A payload that cannot be turned into capability values; the message says why."""


def _getter(path: str) -> Callable[[dict[str, Any]], Any]:
    # A missing field or JSON null is ABSENT (not reported this time): Zigbee2MQTT,
    # for one, publishes `"battery": null` before the first battery report, and
    # that must not cost the door-open event in the same payload.
    parts = path.split(".")
    if len(parts) == 1:
        key = parts[0]

        def get_one(payload: dict[str, Any]) -> Any:
            value = payload.get(key, ABSENT)
            return ABSENT if value is None else value

        return get_one

    def get(payload: dict[str, Any]) -> Any:
        node: Any = payload
        for part in parts:
            if type(node) is not dict:
                return ABSENT
            node = node.get(part, ABSENT)
            if node is ABSENT or node is None:
                return ABSENT
        return node

    return get


def _first_of(getters: Sequence[Callable[[dict[str, Any]], Any]]) -> Callable[[dict[str, Any]], Any]:
    # A field renamed upstream (Zigbee2MQTT's `illuminance_lux` became `illuminance`):
    # the current name first, then the older ones, so devices on either release report.
    if len(getters) == 1:
        return getters[0]

    def get_any(payload: dict[str, Any]) -> Any:
        for get in getters:
            value = get(payload)
            if value is not ABSENT:
                return value
        return ABSENT

    return get_any


def _hashable(value: Any) -> Any:
    # true and 1 must not be the same dict key when mapping raw binary values.
    return (type(value) is bool, value)


@dataclass(slots=True, kw_only=True)
class CapabilitySpec:
    """One capability of a device model: where its value comes from and what it may be."""

    key: str
    kind: str
    name: str
    source: str | dict[str, str]
    unit: str | None
    access: str
    value_on: Any = None
    value_off: Any = None
    #: further device values that also mean "active" (an emergency button's single, double, hold)
    values_on: tuple[Any, ...] = ()
    aliases: tuple[str, ...] = ()  # older field names, read when `source` is absent
    names: dict[str, str] = field(default_factory=dict)  # by language: {"zh-CN": "门磁", "en": "Door"}
    scale: float | None = None
    offset: float | None = None
    schema: dict[str, Any] = field(default_factory=dict)
    command_topic: str | None = None
    command_field: str | None = None
    extract: Callable[[dict[str, Any]], Any] = field(init=False, repr=False)
    check: ValueCheck = field(init=False, repr=False)

    @property
    def spec(self) -> KindSpec | None:
        return KINDS.get(self.kind)

    @property
    def binary(self) -> bool:
        return self.value_on is not None

    def compile(self) -> None:
        """Build `extract(payload) -> value | ABSENT`, raising MappingError on bad values."""
        self.check = compile_check(self.schema)
        key, check = self.key, self.check
        if isinstance(self.source, dict):
            getters = {name: _getter(path) for name, path in self.source.items()}

            def extract_composite(payload: dict[str, Any]) -> Any:
                value = {}
                for name, get in getters.items():
                    part = get(payload)
                    if part is not ABSENT:
                        value[name] = part
                if not value:
                    return ABSENT
                if not check(value):
                    raise MappingError(f"{key}: {value!r} does not match its schema")
                return value

            self.extract = extract_composite
            return
        get = _first_of([_getter(path) for path in (self.source, *self.aliases)])
        if self.binary:
            table = {_hashable(self.value_on): True, _hashable(self.value_off): False}
            table.update({_hashable(value): True for value in self.values_on})
            on, off = self.value_on, self.value_off

            def extract_binary(payload: dict[str, Any]) -> Any:
                raw = get(payload)
                if raw is ABSENT:
                    return ABSENT
                try:
                    return table[_hashable(raw)]
                except (KeyError, TypeError):
                    raise MappingError(
                        f"{key}: {raw!r} is neither value_on {on!r} nor value_off {off!r}"
                    ) from None

            self.extract = extract_binary
            return
        scale, offset = self.scale, self.offset

        def extract_value(payload: dict[str, Any]) -> Any:
            raw = get(payload)
            if raw is ABSENT:
                return ABSENT
            if scale is not None or offset is not None:
                if type(raw) not in (int, float):
                    raise MappingError(f"{key}: {raw!r} is not a number")
                raw = raw * (scale or 1) + (offset or 0)
            if not check(raw):
                raise MappingError(f"{key}: {raw!r} does not match its schema {self.schema}")
            return raw

        self.extract = extract_value

    def to_device(self, value: Any) -> Any:
        """The device's own representation of a canonical command value."""
        if self.binary:
            return self.value_on if value else self.value_off
        if self.scale is not None or self.offset is not None:
            return (value - (self.offset or 0)) / (self.scale or 1)
        return value


@dataclass(slots=True, kw_only=True)
class Profile:
    """A device model within a firmware range."""

    id: str
    vendor: str
    model: str
    name: str
    path: str
    firmware_min: tuple[int, ...] | None
    firmware_max: tuple[int, ...] | None
    match: dict[str, Any]
    supervision_s: float | None
    availability_topic: str | None
    payload_available: str
    payload_not_available: str
    capabilities: list[CapabilitySpec]
    raw: dict[str, Any] = field(repr=False)
    names: dict[str, str] = field(default_factory=dict)  # by language, like CapabilitySpec.names

    def capability(self, key: str) -> CapabilitySpec | None:
        for cap in self.capabilities:
            if cap.key == key:
                return cap
        return None

    def firmware_fit(self, version: str | None) -> FirmwareFit:
        """How the reported firmware sits against the range this profile was written for."""
        if self.firmware_min is None and self.firmware_max is None:
            return FirmwareFit.ANY
        parsed = parse_version(version) if version is not None else None
        if parsed is None:
            return FirmwareFit.UNKNOWN
        if self.firmware_min is not None and parsed < self.firmware_min:
            return FirmwareFit.OUTSIDE
        if self.firmware_max is not None and parsed > self.firmware_max:
            return FirmwareFit.OUTSIDE
        return FirmwareFit.IN_RANGE

    def covers_firmware(self, version: str | None) -> bool:
        """False only for a firmware known to be outside the range. A range is a preference
        (it ranks candidate profiles and warns); it never refuses a device."""
        return self.firmware_fit(version) is not FirmwareFit.OUTSIDE

    def firmware_range(self) -> str:
        firmware = self.raw.get("firmware", {})
        return f"{firmware.get('min', 'any')}–{firmware.get('max', 'any')}"

    def map_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Capability values in `payload`; MappingError if one is invalid or none is present."""
        values = {}
        for cap in self.capabilities:
            value = cap.extract(payload)
            if value is not ABSENT:
                values[cap.key] = value
        if not values:
            raise MappingError(f"no field of profile {self.id} in payload (keys: {sorted(payload)[:10]})")
        return values


class FirmwareFit(StrEnum):
    """A profile's firmware range against what a device reports, best first."""

    IN_RANGE = "in_range"  # the profile was written for this firmware
    ANY = "any"  # the profile names no range
    UNKNOWN = "unknown"  # the device reports no firmware, or none Linli can order
    OUTSIDE = "outside"  # a firmware the profile was not written for: still usable, ranked last

    @property
    def rank(self) -> int:
        return _FIT_RANK[self]


_FIT_RANK: Final = {
    FirmwareFit.IN_RANGE: 3,
    FirmwareFit.ANY: 2,
    FirmwareFit.UNKNOWN: 2,
    FirmwareFit.OUTSIDE: 1,
}
_NUMBERS: Final = re.compile(r"\d+")
_MAX_VERSION_PARTS: Final = 8


def parse_version(text: str) -> tuple[int, ...] | None:
    """A firmware string as devices report it → numbers to order by; None without any digit.

    `"1.2.10"` → (1, 2, 10), `"v2.5.1"` → (2, 5, 1), Zigbee2MQTT's `"3000-0001"` (an Aqara
    software build id) → (3000, 1), a Tuya date build `"20200505"` → (20200505,).
    """
    parts = _NUMBERS.findall(text[:64])[:_MAX_VERSION_PARTS]
    return tuple(int(part) for part in parts) if parts else None
