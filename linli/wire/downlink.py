"""What the region sends down, and every check a message must pass before it is shown.

A message is trusted only if, in this order:

1. it is signed by one of the region's keys (`signing.Verifier`);
2. it names this gateway's region;
3. it was published on this community's downlink topic or the region-wide one,
   and its signed `targets` include this community (a message signed for the
   east side cannot be replayed onto the west side's topic);
4. it is current by the region's clock: not expired, not issued in the future,
   its lifetime no longer than allowed;
5. its id has not been seen before (checked against the store by the caller).

Anything else is rejected with a short reason code and reported (bus event,
outbox event to the region, one log line a minute) — and never shown.

The region's clock: the region publishes its signed time, retained with a
short message expiry, on `.../_all/down/clock`. A gateway whose own clock is
wrong judges expiry by the region's clock (`offset_s`), not by its own.

A clock reading is itself signed with an expiry (`expires_at`, minutes after
`issued_at`): the broker's message expiry keeps a stale reading from being
handed out, but anyone who recorded a genuine reading could publish it again a
day later, and a gateway that took it would then judge a day-old broadcast
current. So a reading is refused once it has expired by the earlier of the
gateway's own clock and its last trusted view of the region's (`clock_now`),
and — by the caller, which keeps the last trusted reading on disk — when it is
older than the last reading the gateway trusted. What remains is a gateway
with no trusted reading yet whose own clock is behind: it cannot tell an old
reading from a new one without a trusted clock, so keep gateways on NTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from linli.wire import topics
from linli.wire.signing import SignatureError, Verifier

# The limits of an announcement: the region refuses to compose one beyond them, a gateway
# refuses to show one (both read them from here, so the two never disagree).
KINDS: Final = ("announcement", "emergency")
MAX_TITLE: Final = 100
MAX_BODY: Final = 500  # what a TV overlay takes (the set-top box `notify` contract)
# The longest a signed clock reading may be valid: a reading is only as good as it is fresh, and
# the region signs its readings for minutes (`linli.region.broadcast.clock_ttl_s`).
MAX_CLOCK_TTL_S: Final = 3600.0


@dataclass(slots=True, kw_only=True, frozen=True)
class Announcement:
    id: str
    kind: str  # announcement | emergency
    region: str
    targets: tuple[str, ...] | None  # None: every community of the region
    title: str
    body: str
    issued_at: float
    expires_at: float

    @property
    def emergency(self) -> bool:
        return self.kind == "emergency"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "region": self.region,
            "targets": list(self.targets) if self.targets is not None else "*",
            "title": self.title,
            "body": self.body,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
        }


@dataclass(slots=True, kw_only=True, frozen=True)
class ClockReading:
    issued_at: float
    expires_at: float


def _field(payload: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = payload.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise SignatureError("malformed", f"signed payload field {name!r} is missing or not {kind}")
    return value


class DownlinkCheck:
    """Checks 1–4 above for one gateway (5 needs the store)."""

    def __init__(
        self,
        verifier: Verifier,
        *,
        region: str,
        community: str,
        max_ttl_s: float,
        max_future_s: float = 300.0,
    ) -> None:
        self.verifier = verifier
        self.region = region
        self.community = community
        self.max_ttl_s = max_ttl_s
        self.max_future_s = max_future_s

    def check(
        self, topic: str, message: bytes, region_now: float, *, clock_now: float | None = None
    ) -> Announcement | ClockReading:
        """The message if it passes checks 1–4; SignatureError with its reason otherwise.

        `region_now` judges announcements; `clock_now` (default `region_now`) judges a clock
        reading's expiry — the caller passes the earlier of its own clock and `region_now`,
        so that neither a wrong own clock nor a wrong trusted offset makes an old reading current.
        """
        parts = topic.split("/")
        if len(parts) != 6 or parts[2] != self.region or parts[3] not in (self.community, topics.ALL):
            raise SignatureError(
                "wrong_topic", f"downlink message on a topic not meant for this gateway: {topic}"
            )
        what = parts[5]
        payload = self.verifier.verify(message)
        if payload.get("region") != self.region:
            raise SignatureError(
                "wrong_region",
                f"signed for region {payload.get('region')!r}, this gateway is in {self.region!r}",
            )
        kind = payload.get("kind")
        if what == topics.CLOCK:
            if kind != "clock" or parts[3] != topics.ALL:
                raise SignatureError(
                    "malformed", "a clock message must be kind 'clock' on the region-wide topic"
                )
            issued = float(_field(payload, "issued_at", (int, float)))
            if not isinstance(payload.get("expires_at"), int | float) or isinstance(
                payload["expires_at"], bool
            ):
                raise SignatureError(
                    "malformed",
                    "a clock message must carry a signed expires_at: the region's publisher is older "
                    "than this gateway, update the region",
                )
            expires = float(payload["expires_at"])
            if not 0 < expires - issued <= MAX_CLOCK_TTL_S:
                raise SignatureError(
                    "ttl_too_long",
                    f"clock reading valid for {expires - issued:.0f} s, "
                    f"not between 0 and {MAX_CLOCK_TTL_S:.0f} s",
                )
            judged_at = region_now if clock_now is None else clock_now
            if expires <= judged_at:
                raise SignatureError(
                    "expired",
                    f"clock reading expired {judged_at - expires:.0f} s ago (issued "
                    f"{judged_at - issued:.0f} s ago): an old reading published again is not the "
                    "region's time; if readings keep expiring, check this gateway's clock (NTP)",
                )
            return ClockReading(issued_at=issued, expires_at=expires)
        if what != topics.ANNOUNCEMENT or kind not in KINDS:
            raise SignatureError("malformed", f"unknown downlink message {what!r} of kind {kind!r}")
        targets = payload.get("targets")
        if targets == "*":
            target_set: tuple[str, ...] | None = None
        elif isinstance(targets, list) and targets and all(isinstance(t, str) for t in targets):
            target_set = tuple(targets)
            if self.community not in target_set:
                raise SignatureError(
                    "not_targeted", f"announcement targets {len(target_set)} other communities, not this one"
                )
        else:
            raise SignatureError(
                "malformed", "announcement targets must be '*' or a non-empty list of communities"
            )
        if target_set is None and parts[3] != topics.ALL:
            raise SignatureError(
                "wrong_topic", "a region-wide announcement must arrive on the region-wide topic"
            )
        issued = float(_field(payload, "issued_at", (int, float)))
        expires = float(_field(payload, "expires_at", (int, float)))
        if expires <= region_now:
            raise SignatureError("expired", f"announcement expired {region_now - expires:.0f} s ago")
        if issued > region_now + self.max_future_s:
            raise SignatureError(
                "from_the_future",
                f"announcement issued {issued - region_now:.0f} s in the future by this gateway's view "
                "of the region's clock: check the gateway's clock (NTP)",
            )
        if expires - issued > self.max_ttl_s:
            raise SignatureError(
                "ttl_too_long",
                f"announcement lifetime {expires - issued:.0f} s exceeds {self.max_ttl_s:.0f} s",
            )
        title = _field(payload, "title", str)
        body = _field(payload, "body", str)
        ident = _field(payload, "id", str)
        if not (0 < len(ident) <= 64) or len(title) > MAX_TITLE or not (0 < len(body) <= MAX_BODY):
            raise SignatureError(
                "malformed",
                f"announcement id (1–64), title (≤ {MAX_TITLE}) or body (1–{MAX_BODY}) out of bounds",
            )
        return Announcement(
            id=ident,
            kind=kind,
            region=self.region,
            targets=target_set,
            title=title,
            body=body,
            issued_at=issued,
            expires_at=expires,
        )
