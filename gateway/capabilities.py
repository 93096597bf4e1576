"""The capability vocabulary (DESIGN.md, "The capability model").

Services subscribe to these kinds, never to an adapter or vendor. Binary kinds
carry a canonical boolean whose `True` is the *active* state (door open, motion
seen, smoke detected, switch on); profiles map the device's own values to it
with explicit `value_on` / `value_off`. Health kinds carry LOINC codes and UCUM
units so that a FHIR R4 Observation can be produced for each reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from linli.gateway.stb.schemas import STB_COMMAND_SCHEMAS, STB_STATE_SCHEMAS


class Category(StrEnum):
    SECURITY = "security"
    CARE = "care"
    HEALTH = "health"
    ENVIRONMENT = "environment"
    CONTROL = "control"
    SET_TOP_BOX = "set_top_box"


@dataclass(slots=True, kw_only=True, frozen=True)
class KindSpec:
    """What the core knows about one capability kind."""

    kind: str
    category: Category
    binary: bool = False
    unit: str | None = None  # UCUM
    loinc: str | None = None
    components: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (LOINC, UCUM)
    value_schema: dict[str, Any] = field(default_factory=dict)


_BOOL: Final = {"type": "boolean"}


def _binary(kind: str, category: Category) -> KindSpec:
    return KindSpec(kind=kind, category=category, binary=True, value_schema=_BOOL)


def _number(kind: str, category: Category, unit: str, loinc: str | None = None) -> KindSpec:
    return KindSpec(kind=kind, category=category, unit=unit, loinc=loinc, value_schema={"type": "number"})


_S, _C, _H, _E, _K, _T = (
    Category.SECURITY,
    Category.CARE,
    Category.HEALTH,
    Category.ENVIRONMENT,
    Category.CONTROL,
    Category.SET_TOP_BOX,
)

KINDS: Final[dict[str, KindSpec]] = {
    spec.kind: spec
    for spec in (
        # security
        _binary("contact", _S),
        _binary("motion", _S),
        _binary("occupancy", _S),
        _binary("smoke", _S),
        _binary("gas", _S),
        _binary("water_leak", _S),
        _binary("glass_break", _S),
        _binary("tamper", _S),
        _binary("siren", _S),
        _binary("lock", _S),
        # care
        _binary("sos_button", _C),
        _binary("fall", _C),
        _binary("bed_occupancy", _C),
        _binary("presence", _C),
        _binary("activity", _C),
        # health
        KindSpec(
            kind="blood_pressure",
            category=_H,
            loinc="85354-9",
            unit="mm[Hg]",
            components={
                "systolic": ("8480-6", "mm[Hg]"),
                "diastolic": ("8462-4", "mm[Hg]"),
                "pulse": ("8867-4", "/min"),
            },
            value_schema={
                "type": "object",
                "required": ["systolic", "diastolic"],
                "properties": {
                    "systolic": {"type": "number"},
                    "diastolic": {"type": "number"},
                    "pulse": {"type": "number"},
                },
            },
        ),
        _number("heart_rate", _H, "/min", "8867-4"),
        _number("spo2", _H, "%", "59408-5"),
        _number("glucose", _H, "mg/dL", "2339-0"),
        _number("weight", _H, "kg", "29463-7"),
        _number("body_temperature", _H, "Cel", "8310-5"),
        # environment / control
        _number("temperature", _E, "Cel"),
        _number("humidity", _E, "%"),
        _number("battery", _E, "%"),
        _number("power_usage", _K, "W"),
        _number("energy", _K, "kW.h"),
        _number("signal", _E, "1"),
        _binary("switch", _K),
        _binary("light", _K),
    )
}

#: Kinds of the set-top box contract; each has a JSON Schema for its state
#: (`STB_STATE_SCHEMAS`) and its commands (`STB_COMMAND_SCHEMAS`), see gateway/stb/schemas.py.
STB_KINDS: Final = (
    "power",
    "keys",
    "channel",
    "app",
    "media",
    "volume",
    "notify",
    "portal",
    "now_playing",
    "meta",
)


assert set(STB_KINDS) == set(STB_STATE_SCHEMAS) == set(STB_COMMAND_SCHEMAS)


def kind_names() -> list[str]:
    """Every kind a profile may name."""
    return sorted({*KINDS, *STB_KINDS})
