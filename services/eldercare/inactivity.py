"""When a quiet home is too quiet.

Activity is anything a person does that a sensor sees: motion, a door or window
moved, getting in or out of bed, an appliance switched, an "activity" sensor.
A home is too quiet when either

* it has been silent for longer than the overnight limit (default 12 h), or
* it has been silent for longer than the daytime limit (default 4 h) counting
  only daytime hours (default 07:00–22:00) — so a long night's sleep does not
  alarm anyone at 07:00, but nobody stirring by 11:00 does.

With `learned` on, a household's own routine (see `routine.py`) sets the limit
at each time of day once there are enough weeks to learn from; until then, and
at hours the routine does not cover, the fixed limits apply.

The limits can differ per resident (`residents`: {resident id: overrides}):
activity on a device assigned to one resident (a pendant, a bed sensor) counts
for that resident only; shared sensors count for everyone in the home.

A household that is away (its alarm armed away/vacation, or set away) is
never too quiet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, Final

from linli.services.eldercare.routine import Routine

ACTIVITY_KINDS: Final = frozenset(
    {"motion", "contact", "bed_occupancy", "switch", "activity", "light", "lock", "occupancy"}
)


_PER_RESIDENT: Final = ("enabled", "daytime_limit_s", "overnight_limit_s", "day_starts_h", "day_ends_h")
_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "enabled": (bool,),
    "learned": (bool,),
    "daytime_limit_s": (int, float),
    "overnight_limit_s": (int, float),
    "day_starts_h": (int, float),
    "day_ends_h": (int, float),
    "learned_weeks": (int,),
    "residents": (dict,),
}


@dataclass(slots=True, kw_only=True)
class InactivitySettings:
    enabled: bool = True
    daytime_limit_s: float = 4 * 3600
    overnight_limit_s: float = 12 * 3600
    day_starts_h: float = 7.0
    day_ends_h: float = 22.0
    learned: bool = False
    learned_weeks: int = 4
    residents: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InactivitySettings:
        _check_types(data, _TYPES, "inactivity")
        settings = cls(**data)
        if not 0 <= settings.day_starts_h < settings.day_ends_h <= 24:
            raise ValueError("day_starts_h must come before day_ends_h, both within 0–24")
        if settings.daytime_limit_s < 600 or settings.overnight_limit_s < 600:
            raise ValueError("inactivity limits under 10 minutes would alarm people all day")
        if not 1 <= settings.learned_weeks <= 12:
            raise ValueError("learned_weeks must be between 1 and 12 weeks")
        for resident_id, overrides in settings.residents.items():
            if not isinstance(overrides, dict):
                raise ValueError(f"inactivity.residents.{resident_id} must be an object of limits")
            allowed = {k: _TYPES[k] for k in _PER_RESIDENT}
            _check_types(overrides, allowed, f"inactivity.residents.{resident_id}")
            settings.for_resident(resident_id)  # the merged limits must make sense too
        return settings

    def for_resident(self, resident_id: str) -> InactivitySettings:
        """This resident's limits: the household's, with the resident's overrides."""
        overrides = self.residents.get(resident_id)
        if not overrides:
            return self
        merged = {**self.as_dict(), **overrides, "residents": {}}
        return InactivitySettings.from_dict(merged)

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["residents"] = {k: dict(v) for k, v in self.residents.items()}
        return data


def _check_types(data: dict[str, Any], types: dict[str, tuple[type, ...]], where: str) -> None:
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise ValueError(f"{where}: unknown settings {unknown}; known: {sorted(types)}")
    for key, value in data.items():
        # bool is an int in Python: a limit of `true` seconds is a mistake, not a number
        if not isinstance(value, types[key]) or (bool not in types[key] and isinstance(value, bool)):
            kinds = " or ".join(t.__name__ for t in types[key])
            raise ValueError(f"{where}.{key} must be a {kinds}, got {value!r}")


def _hour(ts: float) -> float:
    local = time.localtime(ts)
    return local.tm_hour + local.tm_min / 60 + local.tm_sec / 3600


def daytime_silence(last_activity: float, now: float, settings: InactivitySettings) -> float:
    """Seconds of daytime between the last activity and now (walked hour by hour)."""
    total = 0.0
    t = last_activity
    step = 300.0  # five-minute steps: exact enough, and bounded (a day is 288 steps)
    horizon = min(now, last_activity + 3 * 86400)
    while t < horizon:
        span = min(step, horizon - t)
        if settings.day_starts_h <= _hour(t + span / 2) < settings.day_ends_h:
            total += span
        t += span
    return total


def too_quiet(
    last_activity: float, now: float, settings: InactivitySettings, routine: Routine | None = None
) -> str | None:
    """Why the home is too quiet, or None when it is not."""
    if not settings.enabled:
        return None
    silent = now - last_activity
    learned = routine.limit_at(now) if settings.learned and routine is not None else None
    if learned is not None:
        if silent > learned:
            return (
                f"no activity for {silent / 3600:.1f} h; at this time of day it is usually quiet "
                f"for at most {learned / 3600:.1f} h (learned over {routine.days if routine else 0} days)"
            )
        return None
    if silent > settings.overnight_limit_s:
        return f"no activity for {silent / 3600:.1f} h (limit {settings.overnight_limit_s / 3600:g} h)"
    day = daytime_silence(last_activity, now, settings)
    if day > settings.daytime_limit_s:
        return f"no activity for {day / 3600:.1f} daytime hours (limit {settings.daytime_limit_s / 3600:g} h)"
    return None
