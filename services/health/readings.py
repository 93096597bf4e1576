"""A health reading, a refused one, and what each health kind is (LOINC, UCUM, display).

The codes come from the capability vocabulary (`gateway/capabilities.py`), so a
reading carries the same LOINC code and UCUM unit everywhere: in the table, in
the API, in a FHIR Observation. A blood-pressure cuff's pulse is stored as a
heart-rate reading of its own (the FHIR vital-signs blood-pressure panel holds
only systolic and diastolic), so heart-rate thresholds and trends see it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from linli.gateway.capabilities import KINDS


class Attribution(StrEnum):
    """How a reading came to be a resident's."""

    ASSIGNED = "assigned"  # the device is assigned to this resident
    SOLE_RESIDENT = "sole_resident"  # the household's only resident
    UNATTRIBUTED = "unattributed"  # shared device, several (or no) residents: household only


@dataclass(slots=True, kw_only=True, frozen=True)
class Quantity:
    """One measured quantity: its LOINC code, UCUM unit and names."""

    loinc: str
    unit: str  # UCUM code
    display: str  # the LOINC long common name
    unit_display: str  # how people write the unit
    decimals: int  # meaningful precision of the value


@dataclass(slots=True, kw_only=True, frozen=True)
class VitalSpec:
    """A health capability kind as the health service stores and exports it."""

    kind: str
    label: str  # 中文 / English, for titles
    quantity: Quantity
    components: dict[str, Quantity] | None = None  # composite kinds (blood pressure)
    extra_codes: tuple[tuple[str, str], ...] = ()  # further LOINC codings (SpO2: 2708-6)


def _quantity(loinc: str, unit: str, display: str, unit_display: str, decimals: int) -> Quantity:
    return Quantity(loinc=loinc, unit=unit, display=display, unit_display=unit_display, decimals=decimals)


def _spec(kind: str) -> Any:
    return KINDS[kind]


_BP = _spec("blood_pressure")
VITALS: Final[dict[str, VitalSpec]] = {
    "blood_pressure": VitalSpec(
        kind="blood_pressure",
        label="血压 blood pressure",
        quantity=_quantity(_BP.loinc, _BP.unit, "Blood pressure panel with all children optional", "mmHg", 0),
        components={
            "systolic": _quantity(
                _BP.components["systolic"][0],
                _BP.components["systolic"][1],
                "Systolic blood pressure",
                "mmHg",
                0,
            ),
            "diastolic": _quantity(
                _BP.components["diastolic"][0],
                _BP.components["diastolic"][1],
                "Diastolic blood pressure",
                "mmHg",
                0,
            ),
        },
    ),
    "heart_rate": VitalSpec(
        kind="heart_rate",
        label="心率 heart rate",
        quantity=_quantity(
            _spec("heart_rate").loinc, _spec("heart_rate").unit, "Heart rate", "beats/minute", 0
        ),
    ),
    "spo2": VitalSpec(
        kind="spo2",
        label="血氧 SpO2",
        quantity=_quantity(
            _spec("spo2").loinc,
            _spec("spo2").unit,
            "Oxygen saturation in Arterial blood by Pulse oximetry",
            "%",
            0,
        ),
        extra_codes=(("2708-6", "Oxygen saturation in Arterial blood"),),
    ),
    "body_temperature": VitalSpec(
        kind="body_temperature",
        label="体温 body temperature",
        quantity=_quantity(
            _spec("body_temperature").loinc, _spec("body_temperature").unit, "Body temperature", "°C", 1
        ),
    ),
    "weight": VitalSpec(
        kind="weight",
        label="体重 body weight",
        quantity=_quantity(_spec("weight").loinc, _spec("weight").unit, "Body weight", "kg", 2),
    ),
    "glucose": VitalSpec(
        kind="glucose",
        label="血糖 blood glucose",
        quantity=_quantity(
            _spec("glucose").loinc, _spec("glucose").unit, "Glucose [Mass/volume] in Blood", "mg/dL", 0
        ),
    ),
}
HEALTH_KINDS: Final = frozenset(VITALS)


def split_capability_value(kind: str, value: Any) -> list[tuple[str, Any]]:
    """The readings one capability value holds: a cuff's pulse becomes a heart-rate reading."""
    if kind == "blood_pressure" and type(value) is dict and "pulse" in value:
        pressure = {name: part for name, part in value.items() if name != "pulse"}
        return [("blood_pressure", pressure), ("heart_rate", value["pulse"])]
    return [(kind, value)]


@dataclass(slots=True, kw_only=True)
class Reading:
    """One accepted measurement of one health kind, for a resident (or a household)."""

    id: int
    household_id: str
    resident_id: str | None
    attribution: Attribution
    kind: str
    value: float | dict[str, float]  # composite kinds: {"systolic": 120, "diastolic": 80}
    device_id: str
    ts: float  # when it was measured
    received: float  # when the health service took it

    @property
    def spec(self) -> VitalSpec:
        return VITALS[self.kind]

    @property
    def loinc(self) -> str:
        return self.spec.quantity.loinc

    @property
    def unit(self) -> str:
        return self.spec.quantity.unit

    @property
    def unattributed(self) -> bool:
        return self.attribution is Attribution.UNATTRIBUTED

    def parameters(self) -> dict[str, float]:
        """Each measured quantity by name: the kind itself, or each component."""
        value = self.value
        return dict(value) if isinstance(value, dict) else {self.kind: value}

    def display_value(self) -> str:
        """`186/95` for blood pressure, `36.8` for a temperature (no unit)."""
        value = self.value
        if isinstance(value, dict):
            return "/".join(_format(value[name], 0) for name in ("systolic", "diastolic"))
        return _format(value, self.spec.quantity.decimals)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "household_id": self.household_id,
            "resident_id": self.resident_id,
            "attribution": self.attribution.value,
            "unattributed": self.unattributed,
            "kind": self.kind,
            "loinc": self.loinc,
            "unit": self.unit,
            "value": self.value,
            "device_id": self.device_id,
            "ts": self.ts,
            "received": self.received,
        }


def _format(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


@dataclass(slots=True, kw_only=True)
class Rejection:
    """A health value that was refused, with the reason; it raises no alert."""

    household_id: str
    resident_id: str | None
    kind: str
    device_id: str
    value: str  # repr of what arrived (NaN is not JSON)
    ts: float
    received: float
    code: str  # stable: not_a_number, wrong_unit, implausible, future, incomplete
    reason: str  # what failed and what to do

    def as_dict(self) -> dict[str, Any]:
        return {
            "household_id": self.household_id,
            "resident_id": self.resident_id,
            "kind": self.kind,
            "device_id": self.device_id,
            "value": self.value,
            "ts": self.ts,
            "received": self.received,
            "code": self.code,
            "reason": self.reason,
        }
