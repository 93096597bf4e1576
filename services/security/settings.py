"""A household's alarm settings: delays per mode, the alarm period, sensor roles.

Defaults follow common alarm-panel practice: 60 s to leave when arming away or
for a holiday, 30 s when staying in; 30 s to reach the keypad after the entry
door opens; the siren sounds for 3 minutes, then the panel re-arms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

from linli.services.security.errors import SecurityError
from linli.services.security.panel import ArmMode
from linli.services.security.roles import Role

MAX_DELAY_S: Final = 600.0
MIN_ALARM_S: Final = 10.0
MAX_ALARM_S: Final = 1800.0

DEFAULT_EXIT_DELAY_S: Final = {
    ArmMode.HOME: 30.0,
    ArmMode.AWAY: 60.0,
    ArmMode.NIGHT: 30.0,
    ArmMode.VACATION: 60.0,
}
DEFAULT_ENTRY_DELAY_S: Final = {mode: 30.0 for mode in ArmMode}
DEFAULT_ALARM_S: Final = 180.0


def parse_mode(mode: Any) -> ArmMode:
    try:
        return ArmMode(mode)
    except ValueError:
        raise SecurityError(
            "invalid_mode",
            f"mode {mode!r} is not one of {[m.value for m in ArmMode]}",
            modes=[m.value for m in ArmMode],
        ) from None


def parse_role(role: Any) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise SecurityError(
            "invalid_role",
            f"role {role!r} is not one of {[r.value for r in Role]}",
            roles=[r.value for r in Role],
        ) from None


def _seconds(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SecurityError("invalid_setting", f"{name}: {value!r} is not a number of seconds")
    if not low <= value <= high:
        raise SecurityError("invalid_setting", f"{name}: {value!r} s is outside {low:g}–{high:g} s")
    return float(value)


@dataclass(slots=True, kw_only=True)
class HouseholdSettings:
    exit_delay_s: dict[ArmMode, float] = field(default_factory=lambda: dict(DEFAULT_EXIT_DELAY_S))
    entry_delay_s: dict[ArmMode, float] = field(default_factory=lambda: dict(DEFAULT_ENTRY_DELAY_S))
    alarm_s: float = DEFAULT_ALARM_S  # how long the siren sounds before the panel re-arms
    roles: dict[str, Role] = field(default_factory=dict)  # device id → role, overriding the default

    def updated(
        self,
        *,
        exit_delay_s: dict[str, Any] | None = None,
        entry_delay_s: dict[str, Any] | None = None,
        alarm_s: Any = None,
    ) -> HouseholdSettings:
        """A copy with the given values checked and applied; SecurityError names a bad one."""
        exits = dict(self.exit_delay_s)
        for mode, value in (exit_delay_s or {}).items():
            exits[parse_mode(mode)] = _seconds(f"exit_delay_s.{mode}", value, 0, MAX_DELAY_S)
        entries = dict(self.entry_delay_s)
        for mode, value in (entry_delay_s or {}).items():
            entries[parse_mode(mode)] = _seconds(f"entry_delay_s.{mode}", value, 0, MAX_DELAY_S)
        alarm = self.alarm_s if alarm_s is None else _seconds("alarm_s", alarm_s, MIN_ALARM_S, MAX_ALARM_S)
        return HouseholdSettings(
            exit_delay_s=exits, entry_delay_s=entries, alarm_s=alarm, roles=dict(self.roles)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "exit_delay_s": {m.value: s for m, s in self.exit_delay_s.items()},
            "entry_delay_s": {m.value: s for m, s in self.entry_delay_s.items()},
            "alarm_s": self.alarm_s,
            "roles": {d: r.value for d, r in self.roles.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HouseholdSettings:
        base = cls().updated(
            exit_delay_s=data.get("exit_delay_s"),
            entry_delay_s=data.get("entry_delay_s"),
            alarm_s=data.get("alarm_s"),
        )
        base.roles = {d: Role(r) for d, r in data.get("roles", {}).items()}
        return base
