"""An alert and its lifecycle: raised → notified → acknowledged → resolved.

A resident may also answer "I'm OK": the alert is then *cancelled by the
resident* — never erased. Where its policy asks for a call back, it waits
in the duty desk's queue in the `cancelled` state until someone has called
and resolves it; otherwise it is resolved at once, marked as cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from linli.gateway.context import Context
from linli.gateway.errors import LinliError


class AlertState(StrEnum):
    RAISED = "raised"  # durable, nobody told yet
    NOTIFIED = "notified"  # at least one channel delivered it
    ACKNOWLEDGED = "acknowledged"  # a person has it: escalation stops
    RESOLVED = "resolved"  # closed, with a note
    CANCELLED = "cancelled"  # the resident said "I'm OK": escalation stops, the duty desk calls back


OPEN_STATES: Final = (AlertState.RAISED, AlertState.NOTIFIED)


class Severity(StrEnum):
    CRITICAL = "critical"  # SOS, fall, smoke, gas, intrusion
    HIGH = "high"  # water leak, vital-sign crisis, missed check-in
    WARNING = "warning"  # tamper, device offline
    INFO = "info"


#: Kinds services raise; an unknown kind is accepted (new services may add kinds).
KNOWN_KINDS: Final = (
    "sos",
    "fall",
    "inactivity",
    "missed_check_in",
    "missed_medication",
    "intrusion",
    "smoke",
    "gas",
    "water_leak",
    "tamper",
    "vital_sign",
    "device_offline",
)


class AlertError(LinliError, ValueError):
    """An alert operation that cannot be done; `code` is stable for API clients."""


@dataclass(slots=True, kw_only=True)
class Alert:
    id: int
    kind: str
    severity: str
    household_id: str
    resident: str | None
    title: str
    detail: str
    dedup_key: str | None
    count: int
    state: AlertState
    raised_at: float
    last_seen_at: float
    step: int = -1  # index of the last escalation step started
    next_step_at: float | None = None
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    resolution_note: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # Not columns, not in `as_dict`: the contexts its changes derive from (a child of the
    # request's; the current step's, a child of that). `alert_events` holds their ids, so
    # after a restart the engine finds them again (`AlertEngine._context_of`).
    context: Context | None = None
    step_context: Context | None = None

    @property
    def escalating(self) -> bool:
        return self.state in OPEN_STATES

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity,
            "household_id": self.household_id,
            "resident": self.resident,
            "title": self.title,
            "detail": self.detail,
            "count": self.count,
            "state": self.state.value,
            "raised_at": self.raised_at,
            "last_seen_at": self.last_seen_at,
            "step": self.step,
            "next_step_at": self.next_step_at,
            "acknowledged_at": self.acknowledged_at,
            "acknowledged_by": self.acknowledged_by,
            "resolved_at": self.resolved_at,
            "resolved_by": self.resolved_by,
            "resolution_note": self.resolution_note,
            "data": self.data,
        }


COLUMNS: Final = (
    "id",
    "kind",
    "severity",
    "household_id",
    "resident",
    "title",
    "detail",
    "dedup_key",
    "count",
    "state",
    "raised_at",
    "last_seen_at",
    "step",
    "next_step_at",
    "acknowledged_at",
    "acknowledged_by",
    "resolved_at",
    "resolved_by",
    "resolution_note",
    "data",
)
