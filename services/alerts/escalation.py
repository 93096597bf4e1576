"""Escalation chains: who is told, when, until a person acknowledges.

Defaults follow telecare practice (an alarm answered by a person within 60 s,
99 % within 180 s): the household's own screens at once, family carers after
60 s, the property manager's duty desk after 180 s, the emergency contact after
300 s, then everyone again every 120 s until somebody acknowledges. A fall
starts with a 30 s window in which the resident can answer "I'm OK".
Households can set their own chain per alert kind.

Two more answers each policy gives:

* `cancel_window_s`: for so long after the alert is raised only the household's
  own screens know of it (a fall detector's false alarm, cancelled in time,
  never reaches a carer's phone or the duty desk, live or in a list).
* `on_cancel`: when the resident answers "I'm OK" after that window, whether
  the duty desk calls back (`call_back`: the alert stays in its queue, marked
  as cancelled by the resident, until someone has called) or the alert is
  closed (`close`). A cancel within the window always closes it: that is what
  the window is for.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Final

from linli.gateway.notify import Audience


@dataclass(slots=True, frozen=True, kw_only=True)
class Step:
    after_s: float  # seconds after the alert was raised
    audience: Audience


ON_CANCEL: Final = ("call_back", "close")
MAX_WINDOW_S: Final = 600.0


@dataclass(slots=True, frozen=True, kw_only=True)
class Policy:
    steps: tuple[Step, ...]
    repeat_s: float | None  # re-alert interval after the last step; None: no re-alert
    on_cancel: str = "call_back"  # after the resident's "I'm OK": call_back | close
    cancel_window_s: float = 0.0  # only the household's screens know of it for so long

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": [{"after_s": s.after_s, "audience": s.audience.value} for s in self.steps],
            "repeat_s": self.repeat_s,
            "on_cancel": self.on_cancel,
            "cancel_window_s": self.cancel_window_s,
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
        on_cancel = data.get("on_cancel", "call_back")
        if on_cancel not in ON_CANCEL:
            raise ValueError(f"on_cancel {on_cancel!r} is not one of {list(ON_CANCEL)}")
        window = float(data.get("cancel_window_s", 0.0))
        if not 0 <= window <= MAX_WINDOW_S:
            raise ValueError(f"cancel_window_s {window:g} must be 0 to {MAX_WINDOW_S:g} seconds")
        if window and steps[0].audience is not Audience.HOUSEHOLD:
            raise ValueError("a cancel window needs a first step for the household's own screens")
        return cls(
            steps=steps,
            repeat_s=float(repeat) if repeat is not None else None,
            on_cancel=on_cancel,
            cancel_window_s=window,
        )


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
        cancel_window_s=30,  # the carers' step: nobody else knows of the fall before it
    ),
    "device_offline": Policy(steps=(Step(after_s=0, audience=_D),), repeat_s=None, on_cancel="close"),
    # A gentle nudge on the household's own screens; the carers hear only of a miss.
    "check_in_reminder": Policy(steps=(Step(after_s=0, audience=_H),), repeat_s=None, on_cancel="close"),
    "reminder": Policy(steps=(Step(after_s=0, audience=_H),), repeat_s=None, on_cancel="close"),
    "missed_check_in": Policy(
        steps=(Step(after_s=0, audience=_C), Step(after_s=1800, audience=_D)),
        repeat_s=None,
        on_cancel="close",
    ),
    "missed_medication": Policy(steps=(Step(after_s=0, audience=_C),), repeat_s=None, on_cancel="close"),
    "inactivity": Policy(
        steps=(
            Step(after_s=0, audience=_H),
            Step(after_s=300, audience=_C),
            Step(after_s=1200, audience=_D),
        ),
        repeat_s=1800,
        on_cancel="close",  # the resident answering on the TV is the sign of life it waited for
    ),
    "tamper": Policy(
        steps=(Step(after_s=0, audience=_H), Step(after_s=300, audience=_D)), repeat_s=None, on_cancel="close"
    ),
}


def default_policy(kind: str) -> Policy:
    return KIND_POLICIES.get(kind, DEFAULT_POLICY)
