"""What discovery learns, and what the inbox keeps: one shape each.

* `Announcement` — one source's current view of one device (created by the
  source modules, consumed by the inbox).
* `Rejection` — an announcement that could not be used, with the reason.
* `InboxItem` — one device in the inbox, merged across sources, with its
  status and the last decision about it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

SYSTEM_ACTOR: Final = "discovery"  # decisions the gateway takes by itself (invalid input, reopening)
REGISTRY_ACTOR: Final = "registry"  # "already registered" before discovery saw it


class Source(StrEnum):
    ZEROCONF = "zeroconf"
    SSDP = "ssdp"
    MQTT = "mqtt"


#: When sources disagree, the first that knows a fact wins (MQTT configs are the richest).
SOURCE_ORDER: Final = (Source.MQTT, Source.ZEROCONF, Source.SSDP)


#: Categories from most to least specific, for items that several sources recognised.
CATEGORY_RANK: Final = ("set_top_box", "dial", "dlna_renderer", "android_tv", "cast", "airplay", "homekit")


class InboxStatus(StrEnum):
    PENDING = "pending"  # waiting for an installer or a household admin
    APPROVED = "approved"  # adopted into a household (a registry device)
    REJECTED = "rejected"  # not ours, or unusable input; shown again only if the device changes
    IGNORED = "ignored"  # hidden until someone restores it


@dataclass(slots=True, kw_only=True)
class ProposedCapability:
    """A capability the device appears to have, in Linli's vocabulary."""

    key: str
    kind: str
    unit: str | None = None
    access: str = "r"
    path: str | None = None  # where its value sits in the device's JSON payload (dotted)
    topic: str | None = None
    value_on: Any = None
    value_off: Any = None
    origin: str | None = None  # what it was derived from, e.g. "binary_sensor/door"

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key, "kind": self.kind, "access": self.access}
        for name in ("unit", "path", "topic", "value_on", "value_off", "origin"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProposedCapability:
        return cls(**data)


@dataclass(slots=True, kw_only=True)
class Announcement:
    """One source's current view of one device."""

    source: Source
    keys: tuple[str, ...]  # identity keys, most specific first (see identity.py)
    address: str | None = None  # host:port, URL or MQTT topic: where it was found
    name: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    firmware: str | None = None
    category: str | None = None  # "set_top_box", "dial", "dlna_renderer", "zigbee2mqtt", ...
    topic: str | None = None  # the MQTT state topic, for devices that publish telemetry
    facts: list[dict[str, str]] = field(default_factory=list)  # candidates for ProfileSet.match
    profile_hint: str | None = None  # a profile id the device names itself (native devices)
    capabilities: list[ProposedCapability] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # everything else learned, shown as is

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.value,
            "keys": list(self.keys),
            "address": self.address,
            "name": self.name,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "firmware": self.firmware,
            "category": self.category,
            "topic": self.topic,
            "facts": self.facts,
            "profile_hint": self.profile_hint,
            "capabilities": [c.as_dict() for c in self.capabilities],
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Announcement:
        data = dict(data)
        data["source"] = Source(data["source"])
        data["keys"] = tuple(data["keys"])
        data["capabilities"] = [ProposedCapability.from_dict(c) for c in data.get("capabilities", [])]
        return cls(**data)


@dataclass(slots=True, kw_only=True)
class Rejection:
    """Input from a source that cannot be used; the reason is shown in the inbox and logged."""

    source: Source
    keys: tuple[str, ...]  # who it claims to be, or where it came from ("topic:…", "zeroconf:…")
    address: str | None
    reason: str
    excerpt: str | None = None  # the start of the offending input, printable


@dataclass(slots=True, kw_only=True)
class SourceState:
    """What one source last said about an item."""

    announcement: Announcement | None  # None when the source only ever sent unusable input
    available: bool
    last_seen: float
    gone_reason: str | None = None  # why it is unavailable (byebye, removal, expiry)
    address: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "announcement": self.announcement.as_dict() if self.announcement else None,
            "available": self.available,
            "last_seen": self.last_seen,
            "gone_reason": self.gone_reason,
            "address": self.address,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceState:
        announcement = data.get("announcement")
        return cls(
            announcement=Announcement.from_dict(announcement) if announcement else None,
            available=bool(data["available"]),
            last_seen=float(data["last_seen"]),
            gone_reason=data.get("gone_reason"),
            address=data.get("address"),
        )


def item_id_for(key: str) -> str:
    """A short, stable, URL-safe id for the item first known by `key`."""
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


@dataclass(slots=True, kw_only=True)
class InboxItem:
    """One discovered device, merged across sources."""

    id: str
    keys: list[str]
    status: InboxStatus
    first_seen: float
    last_seen: float
    sources: dict[Source, SourceState] = field(default_factory=dict)
    profile_id: str | None = None
    profile_note: str | None = None  # why no profile matched, when one nearly did
    fingerprint: str = ""
    reason: str | None = None  # why it was rejected
    decided_by: str | None = None
    decided_at: float | None = None
    device_id: str | None = None  # the registry device, once approved
    problem: str | None = None  # the latest unusable input about an item that keeps its status
    invalid_count: int = 0
    capabilities_from_profile: list[ProposedCapability] = field(default_factory=list)
    persisted_seen: float = 0.0  # last_seen as last written to disk (not serialised)

    # -- the merged view ---------------------------------------------------------

    def _first(self, field_of: Callable[[Announcement], str | None]) -> str | None:
        for source in SOURCE_ORDER:
            state = self.sources.get(source)
            if state is not None and state.announcement is not None:
                value = field_of(state.announcement)
                if value:
                    return value
        return None

    @property
    def name(self) -> str | None:
        return self._first(lambda a: a.name)

    @property
    def manufacturer(self) -> str | None:
        return self._first(lambda a: a.manufacturer)

    @property
    def model(self) -> str | None:
        return self._first(lambda a: a.model)

    @property
    def firmware(self) -> str | None:
        return self._first(lambda a: a.firmware)

    @property
    def category(self) -> str | None:
        """The most specific kind any source recognised (a set-top box beats a cast target)."""
        found = [a.category for a in self.announcements() if a.category]
        ranked = [c for c in CATEGORY_RANK if c in found]
        return ranked[0] if ranked else (found[0] if found else None)

    @property
    def topic(self) -> str | None:
        return self._first(lambda a: a.topic)

    @property
    def address(self) -> str | None:
        for source in SOURCE_ORDER:
            state = self.sources.get(source)
            if state is not None and state.address:
                return state.address
        return None

    @property
    def available(self) -> bool:
        return any(state.available for state in self.sources.values())

    @property
    def capabilities(self) -> list[ProposedCapability]:
        if self.capabilities_from_profile:
            return self.capabilities_from_profile
        seen: set[str] = set()
        merged = []
        for source in SOURCE_ORDER:
            state = self.sources.get(source)
            if state is None or state.announcement is None:
                continue
            for cap in state.announcement.capabilities:
                if cap.key not in seen:
                    seen.add(cap.key)
                    merged.append(cap)
        return merged

    def announcements(self) -> list[Announcement]:
        return [
            state.announcement
            for source in SOURCE_ORDER
            if (state := self.sources.get(source)) is not None and state.announcement is not None
        ]

    # -- serialisation -----------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        """The public shape (REST API, portal)."""
        return {
            "id": self.id,
            "status": self.status.value,
            "name": self.name,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "firmware": self.firmware,
            "category": self.category,
            "address": self.address,
            "topic": self.topic,
            "available": self.available,
            "sources": {
                source.value: {
                    "address": state.address,
                    "available": state.available,
                    "last_seen": state.last_seen,
                    "gone_reason": state.gone_reason,
                    "details": state.announcement.details if state.announcement else {},
                }
                for source, state in sorted(self.sources.items())
            },
            "profile": self.profile_id,
            "profile_note": None if self.profile_id else (self.profile_note or "no profile"),
            "capabilities": [c.as_dict() for c in self.capabilities],
            "reason": self.reason,
            "problem": self.problem,
            "invalid_count": self.invalid_count,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "device_id": self.device_id,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "keys": self.keys,
        }

    def to_data(self) -> dict[str, Any]:
        """Everything needed to rebuild the item (the `data` column)."""
        return {
            "keys": self.keys,
            "sources": {source.value: state.as_dict() for source, state in self.sources.items()},
            "profile_id": self.profile_id,
            "profile_note": self.profile_note,
            "fingerprint": self.fingerprint,
            "reason": self.reason,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "problem": self.problem,
            "invalid_count": self.invalid_count,
        }

    @classmethod
    def from_row(
        cls,
        item_id: str,
        status: str,
        first_seen: float,
        last_seen: float,
        device_id: str | None,
        data: dict[str, Any],
    ) -> InboxItem:
        return cls(
            id=item_id,
            keys=list(data["keys"]),
            status=InboxStatus(status),
            first_seen=first_seen,
            last_seen=last_seen,
            sources={Source(k): SourceState.from_dict(v) for k, v in data.get("sources", {}).items()},
            profile_id=data.get("profile_id"),
            profile_note=data.get("profile_note"),
            fingerprint=data.get("fingerprint", ""),
            reason=data.get("reason"),
            decided_by=data.get("decided_by"),
            decided_at=data.get("decided_at"),
            device_id=device_id,
            problem=data.get("problem"),
            invalid_count=int(data.get("invalid_count", 0)),
            persisted_seen=last_seen,
        )


@dataclass(slots=True, kw_only=True)
class Decision:
    """One recorded decision about an item: who, what, when."""

    item_id: str
    ts: float
    action: str  # approved | rejected | ignored | restored | reopened | invalid | updated | registered
    by: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "ts": self.ts, "action": self.action, "by": self.by, **self.detail}
