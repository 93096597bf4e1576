"""The alarm panel of one household: states, delays and what a tripped sensor does.

Pure state: no I/O, no clock of its own (every method takes `now`, a wall-clock
time, so deadlines survive a restart). The service persists the panel after
each change and tells the bus.

    disarmed ──arm──► arming ──exit delay──► armed_<mode>
    armed_<mode> ──entry door──► pending ──entry delay──► triggered
    armed_<mode> ──perimeter / interior (away)──► triggered
    triggered ──alarm period──► back to what it was (the siren stops; the alert stays open)
    any ──disarm (PIN)──► disarmed
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from linli.common.throttle import Lockout
from linli.services.security.pins import keypad_lockout
from linli.services.security.roles import Role


class AlarmState(StrEnum):
    DISARMED = "disarmed"
    ARMING = "arming"  # exit delay running
    ARMED_HOME = "armed_home"
    ARMED_AWAY = "armed_away"
    ARMED_NIGHT = "armed_night"
    ARMED_VACATION = "armed_vacation"
    PENDING = "pending"  # entry delay running
    TRIGGERED = "triggered"


class ArmMode(StrEnum):
    HOME = "home"
    AWAY = "away"
    NIGHT = "night"
    VACATION = "vacation"

    @property
    def armed_state(self) -> AlarmState:
        return AlarmState(f"armed_{self.value}")


ARMED_STATES: Final = frozenset(m.armed_state for m in ArmMode)
#: Modes in which people are at home: interior motion does not trip the alarm.
OCCUPIED_MODES: Final = frozenset({ArmMode.HOME, ArmMode.NIGHT})


class Trip(StrEnum):
    """What a sensor going active does to the panel."""

    IGNORED = "ignored"
    PENDING = "pending"
    TRIGGERED = "triggered"


def role_active(role: Role, mode: ArmMode | None) -> bool:
    """Whether a sensor of this role can trip the alarm when armed in `mode` (None: disarmed)."""
    if role is Role.H24:
        return True
    if mode is None or role is Role.IGNORE:
        return False
    return not (role is Role.INTERIOR and mode in OCCUPIED_MODES)


def blocks_arming(role: Role, mode: ArmMode) -> bool:
    """An open sensor of this role stops arming in `mode` (motion clears by itself: never)."""
    return role is not Role.INTERIOR and role_active(role, mode)


@dataclass(slots=True, kw_only=True)
class Bypass:
    """A sensor left out of the alarm, and who did it."""

    device_id: str
    by: str
    ts: float
    reason: str
    auto: bool = False  # made by a forced arming: cleared again on disarm

    def as_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "by": self.by,
            "ts": self.ts,
            "reason": self.reason,
            "auto": self.auto,
        }


@dataclass(slots=True, kw_only=True)
class Panel:
    household_id: str
    state: AlarmState = AlarmState.DISARMED
    mode: ArmMode | None = None  # the mode armed (or being armed, or that was tripped)
    since: float = 0.0
    deadline: float | None = None  # wall clock: end of the exit delay, entry delay or alarm period
    trigger: dict[str, Any] | None = None  # the sensor that started pending / triggered
    alert_id: int | None = None  # the intrusion alert, once the alert engine has recorded it
    bypassed: dict[str, Bypass] = field(default_factory=dict)
    lockout: Lockout = field(default_factory=keypad_lockout)

    @property
    def armed_mode(self) -> ArmMode | None:
        """The mode whose sensors are live now (None while disarmed or arming)."""
        live = self.state in ARMED_STATES or self.state in (AlarmState.PENDING, AlarmState.TRIGGERED)
        return self.mode if live else None

    def _go(self, state: AlarmState, now: float, deadline: float | None) -> AlarmState:
        self.state = state
        self.since = now
        self.deadline = deadline
        return state

    # -- people ------------------------------------------------------------------

    def arm(self, mode: ArmMode, now: float, exit_delay_s: float) -> AlarmState:
        """Start the exit delay (or arm at once when it is 0)."""
        self.mode = mode
        self.trigger = None
        if exit_delay_s > 0:
            return self._go(AlarmState.ARMING, now, now + exit_delay_s)
        return self._go(mode.armed_state, now, None)

    def disarm(self, now: float) -> AlarmState:
        self.mode = None
        self.trigger = None
        self.alert_id = None
        for device_id in [d for d, b in self.bypassed.items() if b.auto]:
            del self.bypassed[device_id]
        return self._go(AlarmState.DISARMED, now, None)

    # -- sensors -----------------------------------------------------------------

    def decide(self, role: Role) -> Trip:
        """What a sensor of `role` going active does now (without changing anything)."""
        state = self.state
        if state is AlarmState.TRIGGERED or role is Role.IGNORE:
            return Trip.IGNORED
        if role is Role.H24:
            return Trip.TRIGGERED
        if state is AlarmState.PENDING:
            # The entry delay is already running: the walk to the keypad (entry door
            # again, interior motion) is expected; a window is not.
            return Trip.TRIGGERED if role is Role.PERIMETER else Trip.IGNORED
        if state not in ARMED_STATES or not role_active(role, self.mode):
            return Trip.IGNORED
        return Trip.PENDING if role is Role.ENTRY else Trip.TRIGGERED

    def enter_pending(self, now: float, entry_delay_s: float, trigger: dict[str, Any]) -> AlarmState:
        if entry_delay_s <= 0:
            return self.enter_triggered(now, 0.0, trigger)
        self.trigger = trigger
        return self._go(AlarmState.PENDING, now, now + entry_delay_s)

    def enter_triggered(self, now: float, alarm_s: float, trigger: dict[str, Any] | None) -> AlarmState:
        if trigger is not None:
            self.trigger = trigger
        self.alert_id = None
        return self._go(AlarmState.TRIGGERED, now, now + alarm_s if alarm_s > 0 else None)

    # -- time --------------------------------------------------------------------

    def due(self, now: float) -> AlarmState | None:
        """The state whose deadline has come, if any (the caller applies it with `expire`)."""
        if self.deadline is None or now < self.deadline:
            return None
        if self.state is AlarmState.ARMING:
            assert self.mode is not None
            return self.mode.armed_state
        if self.state is AlarmState.PENDING:
            return AlarmState.TRIGGERED
        if self.state is AlarmState.TRIGGERED:
            return self.mode.armed_state if self.mode is not None else AlarmState.DISARMED
        return None

    def expire(self, now: float, alarm_s: float) -> AlarmState | None:
        """Apply the transition whose deadline has come; returns the new state (None: nothing due)."""
        target = self.due(now)
        if target is None:
            return None
        if target is AlarmState.TRIGGERED:
            return self.enter_triggered(now, alarm_s, None)
        if self.state is AlarmState.TRIGGERED:
            # The alarm period is over: the siren stops and the panel re-arms (or, after a
            # 24-hour sensor in disarmed, is disarmed again). The alert stays open.
            self.trigger = None
        return self._go(target, now, None)

    # -- persistence -------------------------------------------------------------

    def as_data(self) -> dict[str, Any]:
        """Everything besides the state columns, as stored in `alarm_panels.data`."""
        return {
            "trigger": self.trigger,
            "alert_id": self.alert_id,
            "bypassed": [b.as_dict() for b in self.bypassed.values()],
            "lockout": self.lockout.as_data(),
        }

    @classmethod
    def from_row(
        cls,
        household_id: str,
        state: str,
        mode: str | None,
        since: float,
        deadline: float | None,
        data: dict[str, Any],
    ) -> Panel:
        return cls(
            household_id=household_id,
            state=AlarmState(state),
            mode=ArmMode(mode) if mode else None,
            since=since,
            deadline=deadline,
            trigger=data.get("trigger"),
            alert_id=data.get("alert_id"),
            bypassed={b["device_id"]: Bypass(**b) for b in data.get("bypassed", [])},
            lockout=keypad_lockout(data.get("lockout")),
        )
