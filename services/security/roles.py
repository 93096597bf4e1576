"""Sensor roles: which sensors can trip the alarm, in which modes, and how fast.

Roles work on capability kinds and rooms, never on a vendor:

* `entry` — the door people come in by: trips the entry delay (`pending`).
* `perimeter` — other doors and windows, glass-break: trips the alarm at once.
* `interior` — motion inside: trips at once in away/vacation, is ignored in
  home and night (people are in), and follows a running entry delay (the walk
  from the front door to the keypad).
* `24h` — trips the alarm in every mode, disarmed included (a safe's door).
* `ignore` — never trips the alarm (a fridge door contact).

Smoke, gas, water and tamper are not roles but 24-hour alarms of their own:
they raise their own alert in every mode, whatever the arming state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from linli.gateway.registry import Device


class Role(StrEnum):
    ENTRY = "entry"
    PERIMETER = "perimeter"
    INTERIOR = "interior"
    H24 = "24h"
    IGNORE = "ignore"


#: Capability kinds that are intrusion sensors (their role decides what they do).
INTRUSION_KINDS: Final = frozenset({"contact", "motion", "occupancy", "glass_break"})


@dataclass(slots=True, frozen=True, kw_only=True)
class HazardKind:
    """A 24-hour alarm kind: active in every mode, with its own alert."""

    kind: str
    severity: str
    title: str


#: Hazards raise an alert of the same kind in every mode, disarmed included.
HAZARDS: Final[dict[str, HazardKind]] = {
    h.kind: h
    for h in (
        HazardKind(kind="smoke", severity="critical", title="烟雾报警"),
        HazardKind(kind="gas", severity="critical", title="燃气泄漏"),
        HazardKind(kind="water_leak", severity="high", title="漏水"),
        HazardKind(kind="tamper", severity="warning", title="设备被拆"),
    )
}

#: Rooms (lower case) whose door contact is the entry door.
ENTRY_ROOMS: Final = frozenset({"hall", "hallway", "entrance", "entry", "foyer", "玄关", "门厅", "入户"})
#: Words in a device name that make a door contact the entry door.
ENTRY_NAMES: Final = ("front door", "entrance", "entry door", "大门", "前门", "入户门", "进户门")


def default_role(device: Device, kind: str) -> Role:
    """The role a sensor gets unless the household overrides it."""
    if kind == "contact":
        # every language's form counts: "玄关" and "Hallway" name the same room
        rooms = {r.strip().lower() for r in (device.room or "", *device.room_names.values())}
        names = [n.lower() for n in (device.name, *device.names.values())]
        if rooms & ENTRY_ROOMS or any(word in name for name in names for word in ENTRY_NAMES):
            return Role.ENTRY
        return Role.PERIMETER
    if kind in ("motion", "occupancy"):
        return Role.INTERIOR
    return Role.PERIMETER  # glass_break


def intrusion_capabilities(device: Device) -> list[tuple[str, str]]:
    """(capability key, kind) of each intrusion sensor on the device."""
    return [(cap.key, cap.kind) for cap in device.profile.capabilities if cap.kind in INTRUSION_KINDS]
