"""The shapes that travel to the region: one envelope, and what each kind carries.

Every upward message is one JSON envelope:

    {"v": 1, "id": <event id>, "seq": <outbox seq>, "kind": "alert",
     "region": "hubei", "community": "east-garden", "gateway": "gw-east",
     "ts": <gateway wall clock>, "data": {...}}

`id` is unique per community and sortable (linli.common.ids.new_id); `seq` is the
gateway's delivery order, which never goes back even when the gateway's clock
does. The region keys every event by (community, id): a redelivery is a no-op.

Data minimisation: an alert goes up without its free-text detail, resolution
note, resident or extra data — the region needs to count, age and time alerts,
not to read about a person.

Presence is no envelope: `{"state": "online", "gateway": "gw-east", "ts": ...}`,
retained on `.../presence` as the gateway's birth and last will. `ts` is one
timestamp per connection, shared by its birth, its will and its goodbye: the
region orders presence by it (and `offline` wins a tie), so the late will of an
old connection cannot mark a gateway that has reconnected offline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson

VERSION: Final = 1

# Kinds of upward event (the last topic level).
ALERT: Final = "alert"
DEVICE_HEALTH: Final = "device_health"
STATUS: Final = "status"
ROLLUP: Final = "rollup"
HEALTH_SUMMARY: Final = "health_summary"  # consented health summaries (the health service's)
HEALTH_WITHDRAWN: Final = "health_withdrawn"  # a household withdrew that consent: the region forgets
RECEIPT: Final = "receipt"  # an announcement verified / shown on the community's TVs
REJECTED: Final = "rejected"  # a downlink message refused (unsigned, forged, replayed, expired)

#: Alert fields that go up; everything else stays in the community.
ALERT_FIELDS: Final = (
    "id",
    "kind",
    "severity",
    "household_id",
    "title",
    "count",
    "state",
    "raised_at",
    "last_seen_at",
    "step",
    "acknowledged_at",
    "resolved_at",
)
#: Alert engine transitions worth telling the region (delivery records are not).
ALERT_TRANSITIONS: Final = frozenset(
    {"raised", "repeated", "notifying", "escalated", "acknowledged", "resolved"}
)


def alert_event(alert: Mapping[str, Any], transitions: Sequence[str]) -> dict[str, Any]:
    """An alert's upward shape: its current snapshot and what just happened to it."""
    return {
        "alert": {k: alert.get(k) for k in ALERT_FIELDS},
        "transitions": [t for t in transitions if t in ALERT_TRANSITIONS],
    }


class OutboxEvent(Protocol):
    """One event as the gateway's outbox keeps it (`linli.gateway.uplink.outbox.OutboxRow`)."""

    @property
    def id(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def ts(self) -> float: ...
    @property
    def payload(self) -> bytes: ...


def encode(row: OutboxEvent, *, region: str, community: str, gateway: str) -> bytes:
    """The envelope for one outbox row (the payload is embedded as stored, not re-parsed)."""
    return orjson.dumps(
        {
            "v": VERSION,
            "id": row.id,
            "seq": row.seq,
            "kind": row.kind,
            "region": region,
            "community": community,
            "gateway": gateway,
            "ts": row.ts,
            "data": orjson.Fragment(row.payload),
        }
    )


class EnvelopeError(ValueError):
    """An upward message that is not a valid envelope; the message says what is wrong."""


@dataclass(slots=True, kw_only=True, frozen=True)
class Envelope:
    id: int
    seq: int
    kind: str
    region: str
    community: str
    gateway: str
    ts: float
    data: dict[str, Any]


def decode(payload: bytes) -> Envelope:
    """Parse and check one envelope (the region's side)."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise EnvelopeError(f"envelope must be a JSON object, not {type(doc).__name__}")
    if doc.get("v") != VERSION:
        raise EnvelopeError(f"envelope version {doc.get('v')!r} is not {VERSION}")
    problems = []
    for name, kind in (
        ("id", int),
        ("seq", int),
        ("kind", str),
        ("region", str),
        ("community", str),
        ("gateway", str),
        ("ts", (int, float)),
        ("data", dict),
    ):
        value = doc.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            problems.append(f"{name}: {value!r}")
    if problems:
        raise EnvelopeError("envelope fields missing or of the wrong type: " + ", ".join(problems))
    return Envelope(
        id=doc["id"],
        seq=doc["seq"],
        kind=doc["kind"],
        region=doc["region"],
        community=doc["community"],
        gateway=doc["gateway"],
        ts=float(doc["ts"]),
        data=doc["data"],
    )


# -- presence -------------------------------------------------------------------------

ONLINE: Final = "online"
OFFLINE: Final = "offline"


@dataclass(slots=True, kw_only=True, frozen=True)
class Presence:
    region: str
    community: str
    gateway: str
    online: bool
    ts: float


def encode_presence(state: str, *, gateway: str, ts: float) -> bytes:
    """A presence message: `state` is ONLINE or OFFLINE, `ts` the connection's timestamp."""
    return orjson.dumps({"state": state, "gateway": gateway, "ts": ts})


def decode_presence(region: str, community: str, payload: bytes, *, received_at: float) -> Presence | None:
    """A presence message from `region`/`community` (the topic's levels), or None if malformed.

    A message without a usable `ts` is taken as of `received_at`.
    """
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or doc.get("state") not in (ONLINE, OFFLINE):
        return None
    ts = doc.get("ts")
    return Presence(
        region=region,
        community=community,
        gateway=str(doc.get("gateway") or ""),
        online=doc["state"] == ONLINE,
        ts=float(ts) if isinstance(ts, int | float) else received_at,
    )
