"""Physiological plausibility: which health values are impossible, and why.

The firmware profiles already range-check what a device may send. This is the
second line, on what reaches the health service from any adapter: a value that
is not a finite number, a unit other than the kind's UCUM unit, a value no
living person can have (or one that is clearly in another unit), an incomplete
blood pressure, a reading dated in the future or before the device's clock was
set. Such a reading is refused with a reason and never raises an alert.

The ranges are deliberately wide: they reject the impossible, never the
alarming. A real emergency value (SpO2 70 %, glucose 30 mg/dL) must reach the
thresholds, not be filtered out here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from linli.services.health.readings import VITALS

#: A hub that forwards a measurement may be a little ahead of the gateway's clock.
FUTURE_TOLERANCE_S: Final = 300.0
#: Readings dated before this are from a device whose clock was never set.
EARLIEST_TS: Final = 946_684_800.0  # 2000-01-01T00:00:00Z


@dataclass(slots=True, kw_only=True, frozen=True)
class Problem:
    """Why a reading was refused: a stable code and a sentence for people."""

    code: str
    reason: str


@dataclass(slots=True, kw_only=True, frozen=True)
class Range:
    low: float
    high: float
    hint_low: str = ""  # what a value below `low` probably is
    hint_high: str = ""


# Bounds of what a living adult can show, by quantity (UCUM units of VITALS).
RANGES: Final[dict[str, Range]] = {
    "systolic": Range(low=40, high=300),
    "diastolic": Range(low=20, high=200),
    "heart_rate": Range(low=15, high=300),
    "spo2": Range(low=30, high=100, hint_low="a fraction (0–1) instead of percent?"),
    "body_temperature": Range(low=25, high=45, hint_high="°F instead of °C?"),
    "weight": Range(
        low=1, high=400, hint_low="tonnes or a scale error?", hint_high="grams or pounds instead of kg?"
    ),
    "glucose": Range(low=10, high=2000, hint_low="mmol/L instead of mg/dL (×18.016)?"),
}


def _not_a_number(value: Any) -> bool:
    t = type(value)
    return not ((t is int) or (t is float and math.isfinite(value)))


def check(kind: str, value: Any, unit: str | None, ts: float, now: float) -> Problem | None:
    """The problem with one reading of `kind`, or None when it is plausible."""
    spec = VITALS.get(kind)
    if spec is None:
        return Problem(code="unknown_kind", reason=f"{kind!r} is not a health kind ({sorted(VITALS)})")
    if type(ts) not in (int, float) or not math.isfinite(ts):
        return Problem(code="bad_time", reason=f"timestamp {ts!r} is not a time; fix the device's clock")
    if ts > now + FUTURE_TOLERANCE_S:
        return Problem(
            code="future",
            reason=f"dated {ts - now:.0f} s in the future; the device's or hub's clock is ahead: set it",
        )
    if ts < EARLIEST_TS:
        return Problem(code="bad_time", reason="dated before the year 2000: the device's clock is not set")
    expected = spec.quantity.unit
    if unit is not None and unit != expected:
        return Problem(
            code="wrong_unit",
            reason=f"{kind} in {unit!r}, but Linli stores {kind} in {expected!r}: "
            f"fix the device's firmware profile (unit {expected!r}, with scale/offset to convert)",
        )
    if spec.components is not None:
        if type(value) is not dict:
            return Problem(
                code="incomplete", reason=f"{kind} should be an object of {sorted(spec.components)}"
            )
        missing = [name for name in spec.components if name not in value]
        if missing:
            return Problem(code="incomplete", reason=f"{kind} without {', '.join(missing)}: re-measure")
        for name in spec.components:
            problem = _check_number(name, value[name], spec.components[name].unit)
            if problem is not None:
                return problem
        if value["systolic"] <= value["diastolic"]:
            return Problem(
                code="implausible",
                reason=f"systolic {value['systolic']} is not above diastolic {value['diastolic']} "
                "(impossible; were the fields swapped?): re-measure",
            )
        return None
    return _check_number(kind, value, expected)


def _check_number(name: str, value: Any, unit: str) -> Problem | None:
    if _not_a_number(value):
        return Problem(code="not_a_number", reason=f"{name} {value!r} is not a finite number")
    bounds = RANGES.get(name)
    if bounds is None:
        return None
    if value < bounds.low or value > bounds.high:
        hint = bounds.hint_low if value < bounds.low else bounds.hint_high
        return Problem(
            code="implausible",
            reason=f"{name} {value} {unit} is outside the physiologically possible "
            f"{bounds.low:g}–{bounds.high:g} {unit}"
            + (f" ({hint})" if hint else "")
            + ": check the device and re-measure",
        )
    return None
