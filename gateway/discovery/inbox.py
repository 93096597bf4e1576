"""The discovery inbox: every device the sources find, once, waiting for a person's decision.

Nothing joins a household unasked. Sources call the synchronous, I/O-free
`announce()`, `reject_invalid()` and `withdraw()` (from receive callbacks); the
inbox deduplicates by identity key across sources (identity.py), matches a
firmware profile, and keeps the item's status:

    new ──► pending ──approve──► approved   (a registry device in a household)
               │  ▲ ──reject───► rejected   (remembered; back to pending only if the device changes)
               │  └──restore──── ignored    (hidden until someone restores it)
               └── unusable input ► rejected by "discovery", with the reason

Discovery updates are written in batches a few times a second; a person's
decision is written (with who took it) before the call returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from linli.common.ratelog import RateLimitedLog
from linli.gateway.bus import BusAccess
from linli.gateway.context import Context
from linli.gateway.discovery.events import InboxChanged
from linli.gateway.discovery.ha_profile import (
    AnnouncedProfile,
    AnnouncedProfileError,
    adoption_profile,
    async_keep,
    async_keep_many,
)
from linli.gateway.discovery.inbox_store import InboxStore, Statement
from linli.gateway.discovery.matching import select_profile
from linli.gateway.discovery.model import (
    REGISTRY_ACTOR,
    SYSTEM_ACTOR,
    Announcement,
    Decision,
    InboxItem,
    InboxStatus,
    ProposedCapability,
    Rejection,
    Source,
    SourceState,
    item_id_for,
)
from linli.gateway.discovery.refusals import refusal_for
from linli.gateway.discovery.topic_filters import Bridge, FilterRefused, is_filter, registry_topic, stands_for
from linli.gateway.errors import LinliError
from linli.gateway.events import DeviceAdded, DeviceRemoved, ProfilesChanged
from linli.gateway.profiles import Candidate, Profile, ProfileSet
from linli.gateway.registry import Device, Registry, RegistryError
from linli.gateway.store import Store

_LOGGER = logging.getLogger(__name__)
_WARN_BUDGET: Final = 20  # warning lines a minute, whatever floods in
_RESEEN_WRITE_S: Final = 60.0  # a device that merely says "still here" is written at most this often
_ACTOR: Final = re.compile(r"^[\w.@+-][\w .@+-]{0,63}$")


@dataclass(slots=True, kw_only=True)
class Adoption:
    """What a person decided when approving an item (handed to an adopter)."""

    household_id: str
    by: str
    name: str | None = None
    room: str | None = None
    profile_id: str | None = None
    device_id: str | None = None


_NONE: Final[frozenset[str]] = frozenset()


@dataclass(slots=True, kw_only=True)
class _Plan:
    """An MQTT item's approval worked out, before anything is written."""

    item: InboxItem
    profile: Profile
    announced: AnnouncedProfile | None
    topic: str
    device_id: str
    name: str


Adopter = Callable[[InboxItem, Adoption], Awaitable[Device]]
#: True/False, or how specifically the adopter claims the item (the highest claim wins).
AdopterMatch = Callable[[InboxItem], bool | int]


@dataclass(slots=True)
class _AdopterEntry:
    matches: AdopterMatch
    adopt: Adopter


class InboxError(LinliError):
    """A decision that cannot be taken; `code` says why (the portal maps it to an HTTP status)."""


def check_actor(by: str | None) -> str:
    """Who decides: a user name, required for every decision."""
    if not by or not isinstance(by, str) or not _ACTOR.match(by.strip()):
        raise InboxError(
            "actor_required",
            "say who decides: the name of the signed-in person (1-64 letters, digits, spaces or . @ + - _)",
        )
    return by.strip()


def _fingerprint(item: InboxItem) -> str:
    """What the device *is*: a rejected device reappears only when this changes (not its address)."""
    kinds = sorted({c.kind for c in item.capabilities})
    text = "\0".join([item.manufacturer or "", item.model or "", item.firmware or "", *kinds])
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:24]


def _profile_capabilities(profile: Profile, topic: str | None) -> list[ProposedCapability]:
    return [
        ProposedCapability(
            key=cap.key,
            kind=cap.kind,
            unit=cap.unit,
            access=cap.access,
            path=cap.source if isinstance(cap.source, str) else None,
            topic=topic,
            value_on=cap.value_on,
            value_off=cap.value_off,
            origin=f"profile {profile.id}",
        )
        for cap in profile.capabilities
    ]


def _firmware_range(profile: Profile) -> str:
    firmware = profile.raw.get("firmware", {})
    return f"{firmware.get('min', 'any')}–{firmware.get('max', 'any')}"


class Inbox:
    """Discovered devices, deduplicated, with their status and the decisions taken about them."""

    def __init__(
        self,
        store: Store,
        bus: BusAccess,  # the bus, or the discovery component's tracked view of it
        registry: Registry,
        profiles: ProfileSet,
        *,
        max_items: int = 10_000,
        max_invalid: int = 500,
        flush_s: float = 0.25,
        topic_owner: Callable[[str], str | None] | None = None,
        bridges: Callable[[], Iterable[tuple[str, str]]] | None = None,
        reserved_topics: Iterable[str] = (),
    ) -> None:
        self._db = InboxStore(store)
        self._data_dir = store.path.parent  # where adopted devices' announced profiles are kept
        # Which household a bridge owns a topic for (gateway/mqtt/credentials.py): a device
        # a household's bridge reports is adopted into that household or not at all.
        self._topic_owner = topic_owner
        # (base, household) of every bridge, and bases no device may publish under: what a
        # state topic filter (OpenMQTTGateway's `+/+/BTtoMQTT/<MAC>`) is checked against.
        self._bridges = bridges
        self._reserved_topics = tuple(reserved_topics)
        self._bus = bus
        self._registry = registry
        self._profiles = profiles
        self.max_items = max_items
        # Items known only from unusable input (a malformed config on a made-up topic) are the
        # ones anybody can create at will: the most recent `max_invalid` are kept, the oldest
        # forgotten (memory and database), so a flood of junk never grows the gateway.
        self.max_invalid = max_invalid
        self._invalid_only: dict[str, None] = {}  # insertion-ordered: oldest first
        self._forgotten: set[str] = set()
        self.invalid_forgotten = 0
        self._flush_s = flush_s
        self.items: dict[str, InboxItem] = {}
        self._by_key: dict[str, InboxItem] = {}
        self._registry_uids: dict[str, str] = {}
        self._dirty: set[str] = set()
        self._decisions: list[Decision] = []
        self._extra: list[Statement] = []
        self._wake = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._decide_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._unlisten: list[Callable[[], None]] = []
        self._adopters: dict[str, _AdopterEntry] = {}
        # Once a minute per item, and at most _WARN_BUDGET lines a minute in all.
        self._warnings = RateLimitedLog(
            _LOGGER,
            budget=_WARN_BUDGET,
            budget_note=" (discovery: the rejected view has every one: GET /api/v1/inbox?status=rejected)",
        )
        self._write_failed = False
        self._match_cache: dict[tuple[str, tuple[tuple[str, str], ...], str | None], list[Candidate]] = {}
        self.dropped = 0
        self.rejected_inputs = 0

    def reserve_topics(self, *prefixes: str) -> None:
        """Topics no device's state filter may reach into (a discovery source's announcements)."""
        self._reserved_topics = tuple(dict.fromkeys([*self._reserved_topics, *prefixes]))

    # -- lifecycle ---------------------------------------------------------------

    async def async_start(self) -> None:
        for item in sorted(await self._db.async_load(), key=lambda i: i.last_seen):
            self.items[item.id] = item
            for key in item.keys:
                self._by_key.setdefault(key, item)
            if self._is_invalid_only(item):
                self._invalid_only[item.id] = None
            self._forgotten.discard(item.id)  # the same junk again: its row is written anew
        for device in self._registry.iter_devices():
            if device.unique_id:
                self._registry_uids[device.unique_id] = device.id
        self._unlisten = [
            self._bus.listen(DeviceAdded, self._on_device_added),
            self._bus.listen(DeviceRemoved, self._on_device_removed),
            self._bus.listen(ProfilesChanged, self._on_profiles_changed),
        ]
        # Profiles may have been added since these items were stored: match them anew.
        self.rematch_waiting()
        self._task = asyncio.create_task(self._flush_loop(), name="linli-discovery-inbox")

    async def async_stop(self) -> None:
        for unlisten in self._unlisten:
            unlisten()
        self._unlisten = []
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.async_flush()

    def register_adopter(self, name: str, matches: AdopterMatch, adopt: Adopter) -> Callable[[], None]:
        """Let an adapter adopt the items it `matches` (a set-top box reached by URL, say).

        On approval the adopter with the highest claim (`matches` returns a score, or a
        bool; ties go to the first registered) is called with the item and the person's
        decision, and returns the registry device it created; items no adopter claims are
        adopted as MQTT devices (matched profile + state topic). Returns an unregister function.
        """
        entry = _AdopterEntry(matches, adopt)
        self._adopters[name] = entry
        self._refresh_refusals()

        def unregister() -> None:
            if self._adopters.get(name) is entry:
                del self._adopters[name]
                self._refresh_refusals()

        return unregister

    def adopter_for(self, item: InboxItem) -> str | None:
        """The adapter that would adopt this item, if any claims it."""
        best, chosen = 0, None
        for name, entry in self._adopters.items():
            score = self._claims(entry, item)
            if score > best:
                best, chosen = score, name
        return chosen

    # -- reading -----------------------------------------------------------------

    def get(self, item_id: str) -> InboxItem | None:
        return self.items.get(item_id)

    def find(self, key: str) -> InboxItem | None:
        """The item known by an identity key (`uuid:…`, `linli:…`, `topic:…`)."""
        return self._by_key.get(key)

    def list_items(self, status: InboxStatus | None = InboxStatus.PENDING) -> list[InboxItem]:
        """Items with `status` (None: all), most recently seen first."""
        items = [i for i in self.items.values() if status is None or i.status is status]
        items.sort(key=lambda i: (-i.last_seen, i.id))
        return items

    def counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in InboxStatus}
        for item in self.items.values():
            counts[item.status.value] += 1
        return counts

    async def async_decisions(self, item_id: str) -> list[Decision]:
        """Every decision about the item, oldest first (written ones and those queued)."""
        written = await self._db.async_decisions(item_id)
        return written + [d for d in self._decisions if d.item_id == item_id]

    # -- what sources report (synchronous, no I/O) ------------------------------------

    def announce(self, announcement: Announcement, now: float | None = None) -> InboxItem | None:
        """A source found (or still sees) a device; returns its item (None if the inbox is full)."""
        now = time.time() if now is None else now
        item = self._find(announcement.keys)
        new = item is None
        if item is None:
            item = self._new_item(announcement.keys, now)
            if item is None:
                return None
        previous = item.sources.get(announcement.source)
        unchanged = (
            previous is not None
            and previous.available
            and previous.announcement == announcement
            and previous.address == announcement.address
        )
        previous_firmware = item.firmware
        item.sources[announcement.source] = SourceState(
            announcement=announcement, available=True, last_seen=now, address=announcement.address
        )
        item.last_seen = now
        self._index(item, announcement.keys)
        if unchanged:
            if now - item.persisted_seen >= _RESEEN_WRITE_S:
                self._mark_dirty(item)
            return item
        if item.status is not InboxStatus.APPROVED:
            self._match_profile(item)
        fingerprint = _fingerprint(item)
        changed_device = bool(item.fingerprint) and fingerprint != item.fingerprint
        item.fingerprint = fingerprint
        change = "new" if new else "updated"
        if new:
            device = self._registered_device(item)
            if device is not None:
                self._set_registered(item, device, now)
                change = "approved"
        elif item.status is InboxStatus.REJECTED:
            if item.decided_by == SYSTEM_ACTOR:
                self._reopen(item, now, "the device now announces itself validly")
                change = "reopened"
            elif changed_device:
                self._reopen(item, now, "the device changed since it was rejected")
                change = "reopened"
        elif item.status is InboxStatus.APPROVED:
            self._update_adopted(item, previous_firmware, now)
        if item.status is not InboxStatus.APPROVED:
            item.problem = None
        self._mark_dirty(item)
        self._fire(item, change)
        return item

    def reject_invalid(self, rejection: Rejection, now: float | None = None) -> InboxItem | None:
        """A source received unusable input: keep it visible in the rejected view, and log it."""
        now = time.time() if now is None else now
        self.rejected_inputs += 1
        self._warn(
            rejection.keys[0] if rejection.keys else rejection.address or "?",
            "discovery: %s input from %s rejected: %s (see GET /api/v1/inbox?status=rejected)",
            rejection.source.value,
            rejection.address or "?",
            rejection.reason,
        )
        item = self._find(rejection.keys)
        if item is None:
            while len(self._invalid_only) >= self.max_invalid:
                self._forget_oldest_invalid()
            item = self._new_item(rejection.keys, now)
            if item is None:
                return None
            self._invalid_only[item.id] = None
            item.sources[rejection.source] = SourceState(
                announcement=None, available=True, last_seen=now, address=rejection.address
            )
        else:
            state = item.sources.get(rejection.source)
            if state is None:
                item.sources[rejection.source] = SourceState(
                    announcement=None, available=True, last_seen=now, address=rejection.address
                )
            else:
                state.last_seen = now
        self._index(item, rejection.keys)
        item.last_seen = now
        item.invalid_count += 1
        text = (
            rejection.reason if not rejection.excerpt else f"{rejection.reason} [starts: {rejection.excerpt}]"
        )
        usable = any(state.announcement is not None for state in item.sources.values())
        if item.status is InboxStatus.PENDING and not usable:
            item.status = InboxStatus.REJECTED
            item.reason = text
            item.decided_by = SYSTEM_ACTOR
            item.decided_at = now
            self._decisions.append(
                Decision(item_id=item.id, ts=now, action="invalid", by=SYSTEM_ACTOR, detail={"reason": text})
            )
            change = "invalid"
        elif item.status is InboxStatus.REJECTED and item.decided_by == SYSTEM_ACTOR:
            item.reason = text
            change = "invalid"
        else:
            item.problem = text  # a device that announced itself validly keeps its status
            change = "updated"
        self._mark_dirty(item)
        self._fire(item, change)
        return item

    @staticmethod
    def _is_invalid_only(item: InboxItem) -> bool:
        return (
            item.status is InboxStatus.REJECTED
            and item.decided_by == SYSTEM_ACTOR
            and not any(state.announcement is not None for state in item.sources.values())
        )

    def _forget_oldest_invalid(self) -> None:
        item_id = next(iter(self._invalid_only))
        del self._invalid_only[item_id]
        item = self.items.get(item_id)
        if item is None or not self._is_invalid_only(item):
            return  # it announced itself properly since: a device now, not junk
        del self.items[item_id]
        for key in item.keys:
            if self._by_key.get(key) is item:
                del self._by_key[key]
        self._dirty.discard(item_id)
        self._forgotten.add(item_id)  # deleted from the database at the next flush
        self.invalid_forgotten += 1

    def withdraw(self, keys: Iterable[str], source: Source, reason: str, now: float | None = None) -> None:
        """A source says the device is gone: it becomes unavailable, never deleted."""
        now = time.time() if now is None else now
        item = self._find(tuple(keys))
        if item is None:
            return
        state = item.sources.get(source)
        if state is None or not state.available:
            return
        state.available = False
        state.gone_reason = reason
        self._mark_dirty(item)
        if not item.available and item.status is InboxStatus.APPROVED and item.device_id:
            device = self._registry.device(item.device_id)
            if device is not None:
                self._registry.set_available(
                    device, False, now, f"gone from {source.value} discovery: {reason}"
                )
        self._fire(item, "unavailable")

    # -- decisions (durable before they return) -----------------------------------------

    async def async_approve(
        self,
        item_id: str,
        *,
        household_id: str,
        by: str,
        name: str | None = None,
        room: str | None = None,
        profile_id: str | None = None,
        device_id: str | None = None,
    ) -> Device:
        """Adopt the item into a household: a registry device with its matched (or given) profile."""
        by = check_actor(by)
        async with self._decide_lock:
            item = self._require(item_id)
            if item.status is InboxStatus.APPROVED:
                raise InboxError(
                    "already_approved", f"inbox item {item_id} is already device {item.device_id!r}"
                )
            if household_id not in self._registry.households:
                raise InboxError("no_household", f"no household {household_id!r}; add it first")
            adoption = Adoption(
                household_id=household_id,
                by=by,
                name=(name or "").strip() or None,
                room=room or None,
                profile_id=profile_id,
                device_id=device_id,
            )
            adopter = self.adopter_for(item)
            if adopter is not None:
                device = await self._adopt_with(adopter, item, adoption)
                return await self._approved(item, device, adoption, adopter)
            plan = self._plan(item, adoption)
            if plan.announced is not None:
                await async_keep(plan.announced, self._profiles, self._data_dir)
            try:
                device = await self._registry.async_add_device(
                    plan.device_id,
                    household_id=household_id,
                    name=plan.name,
                    profile_id=plan.profile.id,
                    topic=plan.topic,
                    room=room or None,
                    firmware=item.firmware,
                    unique_id=item.keys[0],
                    context=Context(household=household_id, origin="discovery", user=by),
                )
            except RegistryError as exc:
                raise InboxError("registry", str(exc)) from None
            return await self._approved(item, device, adoption, None)

    def _plan(self, item: InboxItem, adoption: Adoption, taken: set[str] | frozenset[str] = _NONE) -> _Plan:
        """What approving an MQTT item would add (its profile, topic, device id, name); no writes.

        InboxError when it cannot be approved so. `taken`: device ids planned alongside it.
        """
        # The device's own announcement is its model; a shipped profile only refines it.
        announced: AnnouncedProfile | None = None
        unusable = ""
        if adoption.profile_id is None:
            try:
                announced = adoption_profile(item, self._profiles)
            except AnnouncedProfileError as exc:
                unusable = f"; its announcement cannot be used: {exc}"
        chosen = announced.id if announced is not None else adoption.profile_id or item.profile_id
        refusal = refusal_for(item.announcements()) if chosen is None else None
        if refusal is not None:
            raise InboxError(refusal.code, f"inbox item {item.id}: {refusal.sentence()}")
        if chosen is None:
            raise InboxError(
                "no_profile",
                f"inbox item {item.id} ({item.manufacturer or '?'} {item.model or '?'}) matches no "
                f"firmware profile{unusable}; name one with 'profile_id', or add a profile for "
                "this model (linli profile check)",
            )
        profile = announced or self._profiles.get(chosen)
        if profile is None:
            raise InboxError("no_profile", f"no firmware profile {chosen!r} is loaded")
        topic = item.topic
        if topic is None:
            raise InboxError(
                "not_adoptable",
                f"inbox item {item.id} ({item.category or 'device'}) publishes no MQTT telemetry "
                "and no adapter claims it; enable the adapter for this kind of device",
            )
        if is_filter(topic):
            topic = self._filter_topic(item, topic, adoption.household_id)
        owner = self._topic_owner(topic) if self._topic_owner is not None else None
        if owner is not None and owner != adoption.household_id:
            raise InboxError(
                "wrong_household",
                f"inbox item {item.id} is reported by a bridge of household {owner!r} "
                f"(its state topic {topic!r} is under that bridge's base topic): "
                f"it can only be adopted into {owner!r}",
            )
        device_id = adoption.device_id or self._new_device_id(adoption.household_id, item, profile, taken)
        name = adoption.name or item.name or profile.name
        return _Plan(
            item=item, profile=profile, announced=announced, topic=topic, device_id=device_id, name=name
        )

    def _filter_topic(self, item: InboxItem, topic_filter: str, household_id: str) -> str:
        """The plain topic the registry keeps for an item announced with a filter (topic_filters.py)."""
        try:
            return registry_topic(
                topic_filter,
                household_id,
                [Bridge(base, owner) for base, owner in (self._bridges() if self._bridges else ())],
                reserved=self._reserved_topics,
                foreign_topics=[(d.topic, d.household_id) for d in self._registry.devices.values()],
            )
        except FilterRefused as exc:
            raise InboxError(exc.code, f"inbox item {item.id}: {exc}") from None

    def _claims(self, entry: _AdopterEntry, item: InboxItem) -> int:
        try:
            return int(entry.matches(item))
        except Exception:  # an adapter's bug must not break the inbox
            _LOGGER.exception("discovery: an adopter's matcher failed on %s", item.id)
            return 0

    async def _adopt_with(self, adopter: str, item: InboxItem, adoption: Adoption) -> Device:
        try:
            return await self._adopters[adopter].adopt(item, adoption)
        except InboxError:
            raise
        except Exception as exc:  # the adapter says why it cannot (unreachable box, …)
            raise InboxError("adapter", f"{adopter} cannot adopt inbox item {item.id}: {exc}") from None

    async def _approved(
        self, item: InboxItem, device: Device, adoption: Adoption, adopter: str | None
    ) -> Device:
        """Record the approval (durably, with who took it), then tell everyone."""
        updated, decision = self._approval(item, device, adoption, adopter)
        async with self._write_lock:
            await self._db.async_save([updated], [decision])
        self._apply_approval(item, updated, adoption)
        return device

    @staticmethod
    def _approval(
        item: InboxItem, device: Device, adoption: Adoption, adopter: str | None
    ) -> tuple[InboxItem, Decision]:
        updated = replace(
            item,
            status=InboxStatus.APPROVED,
            device_id=device.id,
            profile_id=device.profile.id,
            decided_by=adoption.by,
            decided_at=time.time(),
            reason=None,
            problem=None,
        )
        detail = {
            "household_id": adoption.household_id,
            "device_id": device.id,
            "name": device.name,
            "room": device.room,
            "profile": device.profile.id,
            **({"adapter": adopter} if adopter else {}),
        }
        assert updated.decided_at is not None
        return updated, Decision(
            item_id=item.id, ts=updated.decided_at, action="approved", by=adoption.by, detail=detail
        )

    def _apply_approval(self, item: InboxItem, updated: InboxItem, adoption: Adoption) -> None:
        """The approval is on disk: apply it in memory and tell everyone."""
        for name in ("status", "device_id", "profile_id", "decided_by", "decided_at", "reason", "problem"):
            setattr(item, name, getattr(updated, name))
        _LOGGER.info(
            "discovery: %s approved %s (%s) into household %s as %s",
            adoption.by,
            item.id,
            item.model or item.name,
            adoption.household_id,
            updated.device_id,
        )
        self._fire(item, "approved", user=adoption.by, household=adoption.household_id)

    async def async_approve_many(
        self, item_ids: Iterable[str], *, household_id: str, by: str, room: str | None = None
    ) -> tuple[list[Device], list[tuple[str, InboxError]]]:
        """Approve many items into one household (and room): (devices added, refusals by item).

        MQTT items are worked out first and then written together (the devices in one
        transaction, the decisions in another), so a thousand take about what one does;
        an item an adapter adopts talks to its box, one at a time. An item that cannot be
        approved is refused with its reason and does not stop the others.
        """
        by = check_actor(by)
        if household_id not in self._registry.households:
            raise InboxError("no_household", f"no household {household_id!r}; add it first")
        adoption = Adoption(household_id=household_id, by=by, room=room or None)
        refused: list[tuple[str, InboxError]] = []
        added: list[Device] = []
        async with self._decide_lock:
            plans: list[_Plan] = []
            by_adapter: list[tuple[InboxItem, str]] = []
            taken: set[str] = set()
            topics: set[str] = set()
            for item_id in dict.fromkeys(item_ids):
                try:
                    item = self._require(item_id)
                    if item.status is InboxStatus.APPROVED:
                        raise InboxError(
                            "already_approved", f"inbox item {item_id} is already device {item.device_id!r}"
                        )
                    adopter = self.adopter_for(item)
                    if adopter is not None:
                        by_adapter.append((item, adopter))
                        continue
                    plan = self._plan(item, adoption, taken)
                    if plan.topic in topics or self._registry.device_by_topic(plan.topic) is not None:
                        raise InboxError(
                            "registry",
                            f"inbox item {item_id}: its state topic {plan.topic!r} is taken already",
                        )
                except InboxError as exc:
                    refused.append((item_id, exc))
                    continue
                taken.add(plan.device_id)
                topics.add(plan.topic)
                plans.append(plan)
            announced = [plan.announced for plan in plans if plan.announced is not None]
            if plans:
                # The announced profiles' files and the devices' rows are written side by side
                # (the profiles are known at once: the registry looks them up).
                self._profiles.profiles.update((profile.id, profile) for profile in announced)
                keeping = asyncio.ensure_future(
                    async_keep_many(announced, self._profiles, self._data_dir, known_first=True)
                )
                try:
                    devices = await self._registry.async_import(
                        devices=[
                            {
                                "id": plan.device_id,
                                "household_id": household_id,
                                "name": plan.name,
                                "room": adoption.room,
                                "profile_id": plan.profile.id,
                                "topic": plan.topic,
                                "firmware": plan.item.firmware,
                                "unique_id": plan.item.keys[0],
                            }
                            for plan in plans
                        ],
                        context=Context(household=household_id, origin="discovery", user=by),
                    )
                except RegistryError as exc:
                    raise InboxError("registry", str(exc)) from None
                finally:
                    await keeping
                decided = [
                    self._approval(plan.item, device, adoption, None)
                    for plan, device in zip(plans, devices, strict=True)
                ]
                async with self._write_lock:
                    await self._db.async_save([u for u, _ in decided], [d for _, d in decided])
                for plan, (updated, _) in zip(plans, decided, strict=True):
                    self._apply_approval(plan.item, updated, adoption)
                added.extend(devices)
            for item, adopter in by_adapter:
                try:
                    device = await self._adopt_with(adopter, item, adoption)
                    added.append(await self._approved(item, device, adoption, adopter))
                except InboxError as exc:
                    refused.append((item.id, exc))
        return added, refused

    async def async_reject(self, item_id: str, *, by: str, reason: str | None = None) -> InboxItem:
        """Not ours: hidden and remembered; it comes back only if the device changes."""
        by = check_actor(by)
        async with self._decide_lock:
            item = self._require(item_id)
            if item.status is InboxStatus.APPROVED:
                raise InboxError(
                    "already_approved",
                    f"inbox item {item_id} is device {item.device_id!r}; remove it from its household first",
                )
            text = (reason or "").strip()[:500] or f"rejected by {by}"
            updated = replace(
                item, status=InboxStatus.REJECTED, decided_by=by, decided_at=time.time(), reason=text
            )
            await self._save_decision(item, updated, "rejected", by, {"reason": text})
            _LOGGER.info("discovery: %s rejected %s (%s): %s", by, item.id, item.model or item.name, text)
            self._fire(item, "rejected", user=by)
            return item

    async def async_ignore(self, item_id: str, *, by: str) -> InboxItem:
        """Not now: hidden, whatever the device does, until someone restores it."""
        by = check_actor(by)
        async with self._decide_lock:
            item = self._require(item_id)
            if item.status is InboxStatus.APPROVED:
                raise InboxError("already_approved", f"inbox item {item_id} is device {item.device_id!r}")
            updated = replace(item, status=InboxStatus.IGNORED, decided_by=by, decided_at=time.time())
            await self._save_decision(item, updated, "ignored", by, {})
            self._fire(item, "ignored", user=by)
            return item

    async def async_restore(self, item_id: str, *, by: str) -> InboxItem:
        """Back to pending (from rejected or ignored)."""
        by = check_actor(by)
        async with self._decide_lock:
            item = self._require(item_id)
            if item.status not in (InboxStatus.REJECTED, InboxStatus.IGNORED):
                raise InboxError("not_restorable", f"inbox item {item_id} is {item.status.value}, not hidden")
            updated = replace(
                item, status=InboxStatus.PENDING, decided_by=by, decided_at=time.time(), reason=None
            )
            await self._save_decision(item, updated, "restored", by, {})
            self._fire(item, "restored", user=by)
            return item

    # -- internals -----------------------------------------------------------------

    def _require(self, item_id: str) -> InboxItem:
        item = self.items.get(item_id)
        if item is None:
            raise InboxError("not_found", f"no inbox item {item_id!r}")
        return item

    def _find(self, keys: Iterable[str]) -> InboxItem | None:
        by_key = self._by_key
        for key in keys:
            item = by_key.get(key)
            if item is not None:
                return item
        return None

    def _index(self, item: InboxItem, keys: Iterable[str]) -> None:
        for key in keys:
            owner = self._by_key.setdefault(key, item)
            if owner is item and key not in item.keys:
                item.keys.append(key)

    def _new_item(self, keys: tuple[str, ...], now: float) -> InboxItem | None:
        if len(self.items) >= self.max_items:
            self.dropped += 1
            self._warn(
                "inbox-full",
                "discovery inbox is full (%d items, discovery.max_items): %d announcements dropped; "
                "decide on pending items or raise the limit",
                len(self.items),
                self.dropped,
            )
            return None
        item_id = item_id_for(keys[0])
        while item_id in self.items:  # a hash collision: vanishingly rare, but never merge two devices
            item_id = item_id_for(item_id + keys[0])
        item = InboxItem(id=item_id, keys=[], status=InboxStatus.PENDING, first_seen=now, last_seen=now)
        self.items[item_id] = item
        self._index(item, keys)
        return item

    def _match_profile(self, item: InboxItem) -> None:
        choice = select_profile(self._profiles, item, candidates=self._candidates_cached)
        if choice is not None:
            item.profile_id = choice.profile.id
            item.profile_note = choice.note
            item.capabilities_from_profile = _profile_capabilities(choice.profile, item.topic)
            return
        item.profile_id = None
        item.capabilities_from_profile = []
        item.profile_note = self._refusal_note(item)

    def _refusal_note(self, item: InboxItem) -> str | None:
        """What the device is and why it cannot be adopted, when no adapter claims it."""
        if self.adopter_for(item) is not None:
            return None
        refusal = refusal_for(item.announcements())
        return refusal.sentence() if refusal is not None else None

    def _refresh_refusals(self) -> None:
        # Adapters come and go (plugins start after the inbox): a device an adapter now
        # adopts is no longer refused, and one it no longer adopts says why again.
        for item in self.items.values():
            if item.status is InboxStatus.APPROVED or item.profile_id is not None:
                continue
            note = self._refusal_note(item)
            if note != item.profile_note:
                item.profile_note = note
                self._mark_dirty(item)

    def rematch_waiting(self) -> int:
        """Match every item not yet adopted against the profiles as they are now; returns how
        many changed (each is written and announced as `updated`)."""
        self._match_cache.clear()
        changed = 0
        for item in self.items.values():
            if item.status is InboxStatus.APPROVED or not item.announcements():
                continue
            before = (item.profile_id, item.profile_note, [c.as_dict() for c in item.capabilities])
            self._match_profile(item)
            if before != (item.profile_id, item.profile_note, [c.as_dict() for c in item.capabilities]):
                changed += 1
                self._mark_dirty(item)
                self._fire(item, "updated")
        return changed

    def _on_profiles_changed(self, event: ProfilesChanged) -> None:
        changed = self.rematch_waiting()
        if changed:
            _LOGGER.info("discovery: %d waiting inbox items re-matched after a profile reload", changed)

    def _candidates_cached(
        self, source: str, facts: Mapping[str, str], firmware: str | None
    ) -> list[Candidate]:
        # A burst of discovery configs repeats the same few models thousands of times:
        # matching each against every profile is not needed. Cleared when profiles change.
        key = (source, tuple(sorted(facts.items())), firmware)
        cache = self._match_cache
        found = cache.get(key)
        if found is None:
            if len(cache) > 4096:
                cache.clear()
            found = cache[key] = self._profiles.candidates(source, facts, firmware)
        return found

    def _registered_device(self, item: InboxItem) -> Device | None:
        for key in item.keys:
            device_id = self._registry_uids.get(key)
            if device_id is not None and (device := self._registry.device(device_id)) is not None:
                return device
        topic = item.topic
        return self._registry.device_by_topic(topic) if topic else None

    def _set_registered(self, item: InboxItem, device: Device, now: float) -> None:
        item.status = InboxStatus.APPROVED
        item.device_id = device.id
        item.profile_id = device.profile.id
        item.decided_by = REGISTRY_ACTOR
        item.decided_at = now
        self._decisions.append(
            Decision(
                item_id=item.id,
                ts=now,
                action="registered",
                by=REGISTRY_ACTOR,
                detail={"device_id": device.id, "household_id": device.household_id},
            )
        )

    def _reopen(self, item: InboxItem, now: float, why: str) -> None:
        item.status = InboxStatus.PENDING
        item.reason = None
        item.decided_by = SYSTEM_ACTOR
        item.decided_at = now
        self._decisions.append(
            Decision(item_id=item.id, ts=now, action="reopened", by=SYSTEM_ACTOR, detail={"reason": why})
        )

    def _update_adopted(self, item: InboxItem, previous_firmware: str | None, now: float) -> None:
        """Re-discovery of an adopted device: new firmware goes to the registry too."""
        device = self._registry.device(item.device_id) if item.device_id else None
        if device is None:
            return
        firmware = item.firmware
        if firmware and firmware != device.firmware:
            old = device.firmware
            device.firmware = firmware
            # The registry has no firmware setter; this one column is safe to write here,
            # in the inbox's own transaction, because the in-memory device changed with it.
            self._extra.append(("UPDATE devices SET firmware = ? WHERE id = ?", (firmware, device.id)))
            self._decisions.append(
                Decision(
                    item_id=item.id,
                    ts=now,
                    action="updated",
                    by=SYSTEM_ACTOR,
                    detail={"device_id": device.id, "firmware": [old, firmware]},
                )
            )
            if not device.profile.covers_firmware(firmware):
                item.problem = (
                    f"firmware {firmware} is outside profile {device.profile.id}'s range "
                    f"{_firmware_range(device.profile)}; check for a newer profile"
                )
                self._warn(item.id, "discovery: device %s: %s", device.id, item.problem)
                return
        topic = item.topic
        if topic and topic != device.topic and not (is_filter(topic) and stands_for(topic, device.topic)):
            item.problem = (
                f"the device now publishes on {topic!r} but is registered on {device.topic!r}; "
                "remove it and approve it again"
            )
            self._warn(item.id, "discovery: device %s: %s", device.id, item.problem)
        else:
            item.problem = None

    def _new_device_id(
        self,
        household_id: str,
        item: InboxItem,
        profile: Profile,
        taken: set[str] | frozenset[str] = _NONE,
    ) -> str:
        base = f"{household_id}-{_slug(profile.model) or 'device'}-{item.id[:6]}"
        device_id, n = base, 1
        while self._registry.device(device_id) is not None or device_id in taken:
            n += 1
            device_id = f"{base}-{n}"
        return device_id

    async def _save_decision(
        self, item: InboxItem, updated: InboxItem, action: str, by: str, detail: dict[str, Any]
    ) -> None:
        """Write the decided item and the decision, then (only then) apply it in memory."""
        decision = Decision(
            item_id=item.id, ts=updated.decided_at or time.time(), action=action, by=by, detail=detail
        )
        async with self._write_lock:
            await self._db.async_save([updated], [decision])
        for name in ("status", "device_id", "profile_id", "decided_by", "decided_at", "reason", "problem"):
            setattr(item, name, getattr(updated, name))

    def _on_device_added(self, event: DeviceAdded) -> None:
        device = self._registry.device(event.device_id)
        if device is None:
            return
        if device.unique_id:
            self._registry_uids[device.unique_id] = device.id
        if event.context.origin == "discovery":
            return  # our own approval
        for item in self.items.values():
            if item.status is not InboxStatus.APPROVED and item.topic == device.topic:
                self._set_registered(item, device, time.time())
                self._mark_dirty(item)
                self._fire(item, "approved")

    def _on_device_removed(self, event: DeviceRemoved) -> None:
        for item in self.items.values():
            if item.device_id == event.device_id and item.status is InboxStatus.APPROVED:
                now = time.time()
                item.status = InboxStatus.PENDING
                item.device_id = None
                item.decided_by = REGISTRY_ACTOR
                item.decided_at = now
                self._decisions.append(
                    Decision(
                        item_id=item.id,
                        ts=now,
                        action="reopened",
                        by=REGISTRY_ACTOR,
                        detail={"reason": f"device {event.device_id} was removed from its household"},
                    )
                )
                self._mark_dirty(item)
                self._fire(item, "reopened")

    def _fire(
        self, item: InboxItem, change: str, *, user: str | None = None, household: str | None = None
    ) -> None:
        bus = self._bus
        if bus.has_listeners(InboxChanged, household):
            bus.fire(
                InboxChanged(
                    item_id=item.id,
                    status=item.status.value,
                    change=change,
                    context=Context(household=household, origin="discovery", user=user),
                )
            )

    def _warn(self, key: str, message: str, *args: Any) -> None:
        """Once a minute per key, and at most _WARN_BUDGET lines a minute in all."""
        self._warnings.warning(message, *args, key=key)

    # -- persistence ---------------------------------------------------------------

    def _mark_dirty(self, item: InboxItem) -> None:
        self._dirty.add(item.id)
        self._wake.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._flush_s)  # gather a burst into one transaction
            self._wake.clear()
            await self.async_flush()
            if self._write_failed:  # do not spin on a failing disk
                await asyncio.sleep(1.0)

    async def async_flush(self) -> None:
        """Write every change reported so far (one transaction)."""
        async with self._write_lock:
            if not self._dirty and not self._decisions and not self._extra and not self._forgotten:
                return
            dirty, self._dirty = self._dirty, set()
            forgotten, self._forgotten = self._forgotten, set()
            decisions = [d for d in self._decisions if d.item_id not in forgotten]
            self._decisions = []
            extra, self._extra = self._extra, []
            if forgotten:
                gone = [(item_id,) for item_id in forgotten]
                # decisions first: they refer to the item (a foreign key)
                extra += [("DELETE FROM inbox_decisions WHERE item_id = ?", row) for row in gone]
                extra += [("DELETE FROM inbox WHERE id = ?", row) for row in gone]
            items = [self.items[i] for i in dirty if i in self.items]
            try:
                await self._db.async_save(items, decisions, extra)
            except Exception as exc:
                self._warn(
                    "inbox-write",
                    "discovery inbox: writing %d items failed (%s); retrying — check the disk",
                    len(items),
                    exc,
                )
                self._dirty |= dirty
                self._decisions[:0] = decisions
                self._extra[:0] = extra
                self._wake.set()
                self._write_failed = True
                return
            self._write_failed = False
            for item in items:
                item.persisted_seen = item.last_seen
