"""The typed events that travel on the bus.

One dataclass per kind of happening, created where it happens and serialised in
`as_dict`. Listeners select by type (and optionally household), never by origin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from linli.gateway.context import Context


@dataclass(slots=True, kw_only=True)
class Event:
    """Base of all bus events."""

    context: Context = field(default_factory=Context)

    @property
    def household(self) -> str | None:
        return self.context.household

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["type"] = type(self).__name__
        ctx = data.pop("context")
        data["event_id"] = ctx["id"]
        data["household"] = ctx["household"]
        data["origin"] = ctx["origin"]
        data["parent"] = ctx["parent"]
        return data


@dataclass(slots=True, kw_only=True)
class TelemetryReceived(Event):
    """A device reported capability values (one event per accepted payload)."""

    device_id: str
    values: dict[str, Any]
    ts: float


@dataclass(slots=True, kw_only=True)
class StateChanged(Event):
    """A capability's value differs from the one it had before."""

    device_id: str
    capability: str
    kind: str
    old: Any
    new: Any
    ts: float


@dataclass(slots=True, kw_only=True)
class AvailabilityChanged(Event):
    """A device came online or went offline (will, availability topic or silence)."""

    device_id: str
    available: bool
    ts: float
    reason: str


@dataclass(slots=True, kw_only=True)
class PayloadRejected(Event):
    """A payload was refused; the device and the rest of ingest carry on."""

    topic: str
    device_id: str | None
    reason: str
    ts: float


@dataclass(slots=True, kw_only=True)
class DeviceEvent(Event):
    """Something happened at a device that is not a state: a button pressed, an SOS press.

    Fired on every press, also the same one twice (a state would not change). Services
    react to `kind` (the capability's: "button", "sos_button") or `event_type` (as the
    device names it: "single", "double", "hold", "emergency"); `emergency` is set when
    the press asks for help.
    """

    device_id: str
    capability: str
    kind: str
    event_type: str
    emergency: bool
    ts: float
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class DeviceAdded(Event):
    device_id: str


@dataclass(slots=True, kw_only=True)
class DeviceRemoved(Event):
    device_id: str


@dataclass(slots=True, kw_only=True)
class ProfilesChanged(Event):
    """Firmware profiles were added, changed or removed (a reload): waiting devices re-match."""

    added: list[str]
    changed: list[str]
    removed: list[str]
    errors: int  # profile files refused in this load (the messages are in ProfileSet.errors)


@dataclass(slots=True, kw_only=True)
class HouseholdAdded(Event):
    household_id: str


@dataclass(slots=True, kw_only=True)
class CareChanged(Event):
    """A household's care settings, reminders or check-in changed: screens showing them redraw.

    `what` is `settings`, `reminders` or `check_in`; the household is the context's.
    """

    what: str


@dataclass(slots=True, kw_only=True)
class HouseholdRemoved(Event):
    """A household is gone (its settings with it): services forget what they hold for it."""

    household_id: str


@dataclass(slots=True, kw_only=True)
class ResidentRemoved(Event):
    """A person moved out (or was entered by mistake): services forget what they keep about them."""

    resident_id: str
    household_id: str


@dataclass(slots=True, kw_only=True)
class MqttConnectionChanged(Event):
    connected: bool
    reason: str


@dataclass(slots=True, kw_only=True)
class GatewayStarted(Event):
    startup_s: float


@dataclass(slots=True, kw_only=True)
class AlertRequested(Event):
    """A service asks the alert engine to raise (or count again) an alert.

    Services fire this instead of calling the engine, so that they depend on
    the core only. `dedup_key` folds repeats (a flapping sensor) into one alert.
    """

    kind: str
    severity: str
    title: str
    detail: str = ""
    resident: str | None = None
    dedup_key: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class AlertAnswered(Event):
    """A person answered an alert: `acknowledge`, `resolve` (with a note) or `cancel` ("I'm OK")."""

    alert_id: int
    action: str
    by: str
    note: str = ""


@dataclass(slots=True, kw_only=True)
class AlertChanged(Event):
    """The alert engine durably recorded a transition; `alert` is the alert's public shape."""

    alert_id: int
    transition: str
    alert: dict[str, Any]


@dataclass(slots=True, kw_only=True)
class AnnouncementReceived(Event):
    """The region's signed announcement or emergency broadcast, verified: screens may show it.

    `kind` is `announcement` or `emergency`; the uplink has already put it on every
    TV through the `notify` capability.
    """

    announcement_id: str
    kind: str
    title: str
    body: str
    issued_at: float
    expires_at: float


@dataclass(slots=True, kw_only=True)
class DownlinkRejected(Event):
    """A message on the regional downlink failed verification: reported, never shown.

    `reason` is a short code: unsigned, bad_signature, unknown_key, malformed,
    wrong_region, wrong_topic, not_targeted, expired, from_the_future,
    ttl_too_long, replayed.
    """

    topic: str
    reason: str
    detail: str


@dataclass(slots=True, kw_only=True)
class AlarmStateChanged(Event):
    """A household's alarm panel moved to another state, durably recorded first.

    `state` is one of disarmed, arming, armed_home, armed_away, armed_night,
    armed_vacation, pending, triggered; `deadline` (wall clock) ends the exit
    delay, the entry delay or the alarm period; `by` is the user who armed or
    disarmed (None when a sensor or a timer did it).
    """

    state: str
    previous: str
    mode: str | None
    deadline: float | None
    by: str | None
    reason: str
    ts: float
