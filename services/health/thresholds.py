"""Vital-sign thresholds per resident, with safe defaults — each one "not a diagnosis".

Defaults:

* hypertensive crisis: systolic > 180 or diastolic > 120 mm[Hg];
* single-parameter extremes as in NEWS2 (the Royal College of Physicians'
  National Early Warning Score, its outermost bands): SpO2 ≤ 91 %,
  heart rate ≤ 40 or ≥ 131 /min, systolic ≤ 90 or ≥ 220 mm[Hg], body
  temperature ≤ 35.0 or ≥ 39.1 Cel;
* hypoglycaemia: glucose ≤ 70 mg/dL, and < 54 mg/dL urgent (critical).

A resident's carer or doctor may move a threshold within `LIMITS` (for example
SpO2 ≤ 87 for someone whose target is 88–92 %, NEWS2's scale 2), never outside
them: an alert that can be configured away is not a safety net.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Final

from linli.services.health.readings import Reading

NOT_A_DIAGNOSIS: Final = "not a diagnosis"
HIGH: Final = "high"
CRITICAL: Final = "critical"


class ThresholdError(ValueError):
    """A threshold change that cannot be made; the message says which and why."""


@dataclass(slots=True, kw_only=True, frozen=True)
class Thresholds:
    """One resident's alert thresholds (units: mm[Hg], /min, %, Cel, mg/dL)."""

    systolic_crisis: float = 180  # above
    diastolic_crisis: float = 120  # above
    systolic_low: float = 90  # at or below
    systolic_high: float = 220  # at or above
    heart_rate_low: float = 40  # at or below
    heart_rate_high: float = 131  # at or above
    spo2_low: float = 91  # at or below
    temperature_low: float = 35.0  # at or below
    temperature_high: float = 39.1  # at or above
    glucose_low: float = 70  # at or below
    glucose_urgent: float = 54  # below: critical

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Thresholds:
        """Stored thresholds; unknown names (from a newer version) are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in data.items() if k in names})

    def changed(self, **changes: float) -> Thresholds:
        """A copy with `changes`, each checked against LIMITS; ThresholdError says what is wrong."""
        names = {f.name for f in fields(self)}
        problems = []
        for name, value in changes.items():
            if name not in names:
                problems.append(f"{name!r} is not a threshold (known: {', '.join(sorted(names))})")
                continue
            if type(value) not in (int, float) or not math.isfinite(value):
                problems.append(f"{name}: {value!r} is not a number")
                continue
            low, high = LIMITS[name]
            if not low <= value <= high:
                problems.append(f"{name}: {value} is outside the safe range {low}–{high}")
        if problems:
            raise ThresholdError("; ".join(problems))
        updated = replace(self, **{k: float(v) for k, v in changes.items()})
        for low_name, high_name in (
            ("glucose_urgent", "glucose_low"),
            ("heart_rate_low", "heart_rate_high"),
            ("systolic_low", "systolic_crisis"),
            ("temperature_low", "temperature_high"),
        ):
            if getattr(updated, low_name) >= getattr(updated, high_name):
                problems.append(
                    f"{low_name} ({getattr(updated, low_name)}) must be below {high_name} "
                    f"({getattr(updated, high_name)})"
                )
        if problems:
            raise ThresholdError("; ".join(problems))
        return updated


#: How far each threshold may be moved from its default.
LIMITS: Final[dict[str, tuple[float, float]]] = {
    "systolic_crisis": (150, 200),
    "diastolic_crisis": (95, 130),
    "systolic_low": (70, 110),
    "systolic_high": (180, 250),
    "heart_rate_low": (30, 55),
    "heart_rate_high": (100, 160),
    "spo2_low": (80, 96),
    "temperature_low": (34.0, 36.0),
    "temperature_high": (37.8, 40.5),
    "glucose_low": (54, 100),
    "glucose_urgent": (40, 70),
}

_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": operator.gt,
    "<": operator.lt,
    "≥": operator.ge,
    "≤": operator.le,
}


@dataclass(slots=True, kw_only=True, frozen=True)
class Rule:
    """`parameter comparison threshold` on readings of `kind`."""

    name: str
    kind: str
    parameter: str
    comparison: str
    threshold: str  # field of Thresholds
    severity: str
    label: str  # 中文 English


# Most severe first: the first rule a reading breaks names its alert.
RULES: Final = (
    Rule(
        name="hypoglycaemia_urgent",
        kind="glucose",
        parameter="glucose",
        comparison="<",
        threshold="glucose_urgent",
        severity=CRITICAL,
        label="严重低血糖 urgent hypoglycaemia",
    ),
    Rule(
        name="hypoglycaemia",
        kind="glucose",
        parameter="glucose",
        comparison="≤",
        threshold="glucose_low",
        severity=HIGH,
        label="低血糖 hypoglycaemia",
    ),
    Rule(
        name="systolic_extreme_high",
        kind="blood_pressure",
        parameter="systolic",
        comparison="≥",
        threshold="systolic_high",
        severity=HIGH,
        label="收缩压极高 systolic extreme (NEWS2)",
    ),
    Rule(
        name="hypertensive_crisis",
        kind="blood_pressure",
        parameter="systolic",
        comparison=">",
        threshold="systolic_crisis",
        severity=HIGH,
        label="高血压危象 hypertensive crisis",
    ),
    Rule(
        name="hypertensive_crisis",
        kind="blood_pressure",
        parameter="diastolic",
        comparison=">",
        threshold="diastolic_crisis",
        severity=HIGH,
        label="高血压危象 hypertensive crisis",
    ),
    Rule(
        name="systolic_extreme_low",
        kind="blood_pressure",
        parameter="systolic",
        comparison="≤",
        threshold="systolic_low",
        severity=HIGH,
        label="收缩压过低 low systolic (NEWS2)",
    ),
    Rule(
        name="spo2_extreme_low",
        kind="spo2",
        parameter="spo2",
        comparison="≤",
        threshold="spo2_low",
        severity=HIGH,
        label="血氧过低 low oxygen saturation (NEWS2)",
    ),
    Rule(
        name="heart_rate_extreme_low",
        kind="heart_rate",
        parameter="heart_rate",
        comparison="≤",
        threshold="heart_rate_low",
        severity=HIGH,
        label="心率过慢 very slow heart rate (NEWS2)",
    ),
    Rule(
        name="heart_rate_extreme_high",
        kind="heart_rate",
        parameter="heart_rate",
        comparison="≥",
        threshold="heart_rate_high",
        severity=HIGH,
        label="心率过快 very fast heart rate (NEWS2)",
    ),
    Rule(
        name="temperature_extreme_low",
        kind="body_temperature",
        parameter="body_temperature",
        comparison="≤",
        threshold="temperature_low",
        severity=HIGH,
        label="体温过低 low body temperature (NEWS2)",
    ),
    Rule(
        name="temperature_extreme_high",
        kind="body_temperature",
        parameter="body_temperature",
        comparison="≥",
        threshold="temperature_high",
        severity=HIGH,
        label="高热 high fever (NEWS2)",
    ),
)
_RULES_BY_KIND: Final[dict[str, tuple[Rule, ...]]] = {
    kind: tuple(r for r in RULES if r.kind == kind) for kind in {r.kind for r in RULES}
}


@dataclass(slots=True, kw_only=True, frozen=True)
class Breach:
    """A reading beyond one threshold: what, by how much, and how urgent."""

    rule: str
    label: str
    parameter: str
    value: float
    unit: str
    comparison: str
    threshold: float
    severity: str

    def sentence(self) -> str:
        """`systolic 186 mm[Hg] > 180 mm[Hg]: 高血压危象 hypertensive crisis (not a diagnosis)`."""
        return (
            f"{self.parameter} {self.value:g} {self.unit} {self.comparison} {self.threshold:g} {self.unit}: "
            f"{self.label} ({NOT_A_DIAGNOSIS})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "note": NOT_A_DIAGNOSIS}


def evaluate(reading: Reading, thresholds: Thresholds) -> list[Breach]:
    """Every threshold the reading is beyond, most severe first (empty: nothing to say)."""
    rules = _RULES_BY_KIND.get(reading.kind)
    if not rules:
        return []
    values = reading.parameters()
    units = reading.spec.components or {}
    breaches = []
    for rule in rules:
        value = values.get(rule.parameter)
        if value is None:
            continue
        limit = getattr(thresholds, rule.threshold)
        if _COMPARE[rule.comparison](value, limit):
            unit = units[rule.parameter].unit if rule.parameter in units else reading.unit
            breaches.append(
                Breach(
                    rule=rule.name,
                    label=rule.label,
                    parameter=rule.parameter,
                    value=value,
                    unit=unit,
                    comparison=rule.comparison,
                    threshold=limit,
                    severity=rule.severity,
                )
            )
    return breaches
