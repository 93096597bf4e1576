"""Escalation chains: who is told, when, until a person acknowledges.

Defaults follow telecare practice (an alarm answered by a person within 60 s,
99 % within 180 s): the household's own screens at once, family carers after
60 s, the property manager's duty desk after 180 s, the emergency contact after
300 s, then everyone again every 120 s until somebody acknowledges. A fall
starts with a 30 s window in which the resident can answer "I'm OK".
Households can set their own chain per alert kind.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Final

from gateway.notify import Audience


@dataclass(slots=True, frozen=True, kw_only=True)
class Step:
    after_s: float  # seconds after the alert was raised
    audience: Audience


@dataclass(slots=True, frozen=True, kw_only=True)
class Policy:
    steps: tuple[Step, ...]
    repeat_s: float | None  # re-alert interval after the last step; None: no re-alert

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": [{"after_s": s.after_s, "audience": s.audience.value} for s in self.steps],
            "repeat_s": self.repeat_s,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        steps = tuple(
            Step(after_s=float(s["after_s"]), audience=Audience(s["audience"])) for s in data["steps"]
        )
        if not steps:
            raise ValueError("an escalation chain needs at least one step")
        if any(b.after_s < a.after_s for a, b in itertools.pairwise(steps)):
            raise ValueError("escalation steps must be in time order")
        repeat = data.get("repeat_s")
        if repeat is not None and float(repeat) < 10:
            raise ValueError("repeat_s under 10 s would flood people; use 10 or more")
        return cls(steps=steps, repeat_s=float(repeat) if repeat is not None else None)


_H, _C, _D, _E = Audience.HOUSEHOLD, Audience.CARERS, Audience.DUTY_DESK, Audience.EMERGENCY

DEFAULT_POLICY: Final = Policy(
    steps=(
        Step(after_s=0, audience=_H),
        Step(after_s=60, audience=_C),
        Step(after_s=180, audience=_D),
        Step(after_s=300, audience=_E),
    ),
    repeat_s=120,
)

KIND_POLICIES: Final[dict[str, Policy]] = {
    "fall": Policy(
        steps=(
            Step(after_s=0, audience=_H),  # the "I'm OK" window
            Step(after_s=30, audience=_C),
            Step(after_s=180, audience=_D),
            Step(after_s=300, audience=_E),
        ),
        repeat_s=120,
    ),
    "device_offline": Policy(steps=(Step(after_s=0, audience=_D),), repeat_s=None),
    # A gentle nudge on the household's own screens; the carers hear only of a miss.
    "check_in_reminder": Policy(steps=(Step(after_s=0, audience=_H),), repeat_s=None),
    "reminder": Policy(steps=(Step(after_s=0, audience=_H),), repeat_s=None),
    "missed_check_in": Policy(
        steps=(Step(after_s=0, audience=_C), Step(after_s=1800, audience=_D)), repeat_s=None
    ),
    "missed_medication": Policy(steps=(Step(after_s=0, audience=_C),), repeat_s=None),
    "inactivity": Policy(
        steps=(
            Step(after_s=0, audience=_H),
            Step(after_s=300, audience=_C),
            Step(after_s=1200, audience=_D),
        ),
        repeat_s=1800,
    ),
    "tamper": Policy(steps=(Step(after_s=0, audience=_H), Step(after_s=300, audience=_D)), repeat_s=None),
}


def default_policy(kind: str) -> Policy:
    return KIND_POLICIES.get(kind, DEFAULT_POLICY)
