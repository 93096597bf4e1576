"""When a quiet home is too quiet.

Activity is anything a person does that a sensor sees: motion, a door or window
moved, getting in or out of bed, an appliance switched, an "activity" sensor.
A home is too quiet when either

* it has been silent for longer than the overnight limit (default 12 h), or
* it has been silent for longer than the daytime limit (default 4 h) counting
  only daytime hours (default 07:00–22:00) — so a long night's sleep does not
  alarm anyone at 07:00, but nobody stirring by 11:00 does.

A household that is away (its alarm armed away/vacation, or set away) is
never too quiet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final

ACTIVITY_KINDS: Final = frozenset(
    {"motion", "contact", "bed_occupancy", "switch", "activity", "light", "lock", "occupancy"}
)


@dataclass(slots=True, kw_only=True)
class InactivitySettings:
    enabled: bool = True
    daytime_limit_s: float = 4 * 3600
    overnight_limit_s: float = 12 * 3600
    day_starts_h: float = 7.0
    day_ends_h: float = 22.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InactivitySettings:
        settings = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        if not 0 <= settings.day_starts_h < settings.day_ends_h <= 24:
            raise ValueError("day_starts_h must come before day_ends_h, both within 0–24")
        if settings.daytime_limit_s < 600 or settings.overnight_limit_s < 600:
            raise ValueError("inactivity limits under 10 minutes would alarm people all day")
        return settings

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


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


def too_quiet(last_activity: float, now: float, settings: InactivitySettings) -> str | None:
    """Why the home is too quiet, or None when it is not."""
    if not settings.enabled:
        return None
    silent = now - last_activity
    if silent > settings.overnight_limit_s:
        return f"no activity for {silent / 3600:.1f} h (limit {settings.overnight_limit_s / 3600:g} h)"
    day = daytime_silence(last_activity, now, settings)
    if day > settings.daytime_limit_s:
        return f"no activity for {day / 3600:.1f} daytime hours (limit {settings.daytime_limit_s / 3600:g} h)"
    return None
