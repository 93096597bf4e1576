"""Does an inbox item fit what an adapter declares it discovers, and which profile fits it?

Profiles: `select_profile` picks the firmware profile for an inbox item (the one a
person names, the one the device names itself, or the best match of its model), and
says when the device's firmware lies outside the profile's range — a preference that
ranks candidates and warns, never a refusal.

Adapters:
Adapters declare, in their manifest's `discovery` block, what their devices
look like (adapters never scan):

    {"ssdp": [{"st": "urn:dial-multiscreen-org:service:dial:1"}, {"manufacturer": "Acme"}],
     "zeroconf": [{"type": "_googlecast._tcp.local.", "txt": {"md": "..."}}],
     "mqtt": [{"topic": "zigbee2mqtt/+"}]}

Each rule's fields must all equal what the source learned (an SSDP `st` matches
any type the device announced, answered a search for, or lists in its
description; an MQTT `topic` is a filter on the device's state topic). The
adapter host registers each running adapter that adopts discovered devices
with `Discovery.register_adopter`, matched by `declaration_score` on its
manifest's declaration (gateway/plugins/api.py, `AdapterApi.on_discovered`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiomqtt

from linli.gateway.discovery.model import Announcement, InboxItem, Source
from linli.gateway.profiles import Candidate, FirmwareFit, Profile, ProfileSet

#: How a caller finds candidates for (source, facts, firmware); ProfileSet.candidates or a cache of it.
CandidateFinder = Callable[[str, Mapping[str, str], str | None], list[Candidate]]

_NAMED: Final = 1_000  # a profile the device or a person names outranks any model match


@dataclass(slots=True, frozen=True, kw_only=True)
class ProfileChoice:
    """A profile for an inbox item, and how it was chosen."""

    profile: Profile
    how: str  # "requested", "named by the device", or "<source> model match"
    fit: FirmwareFit
    firmware: str | None

    @property
    def note(self) -> str | None:
        """What a person should know before approving (None when nothing)."""
        if self.fit is not FirmwareFit.OUTSIDE:
            return None
        return (
            f"firmware {self.firmware!r} is outside profile {self.profile.id}'s range "
            f"{self.profile.firmware_range()}: the profile is used anyway (a range is a preference); "
            "check the device's readings after adoption"
        )


def ranked_profiles(
    profiles: ProfileSet, item: InboxItem, *, candidates: CandidateFinder | None = None
) -> list[ProfileChoice]:
    """Every profile that fits the item, best first: named by the device, then by how many
    facts its rule matched, then by firmware fit."""
    find = candidates or profiles.candidates
    firmware = item.firmware
    scored: dict[str, tuple[int, int, ProfileChoice]] = {}

    def offer(profile: Profile, how: str, fields: int) -> None:
        fit = profile.firmware_fit(firmware)
        previous = scored.get(profile.id)
        if previous is None or (fields, fit.rank) > previous[:2]:
            choice = ProfileChoice(profile=profile, how=how, fit=fit, firmware=firmware)
            scored[profile.id] = (fields, fit.rank, choice)

    for announcement in item.announcements():
        hint = announcement.profile_hint
        if hint and (named := profiles.get(hint)) is not None:
            offer(named, "named by the device", _NAMED)
        source = announcement.source.value
        for facts in announcement.facts:
            for candidate in find(source, facts, firmware):
                offer(candidate.profile, f"{source} model match", candidate.fields)
    ranked = sorted(scored.values(), key=lambda s: (-s[0], -s[1], s[2].profile.id))
    return [choice for _, _, choice in ranked]


def select_profile(
    profiles: ProfileSet,
    item: InboxItem,
    requested: str | None = None,
    *,
    candidates: CandidateFinder | None = None,
) -> ProfileChoice | None:
    """The profile to adopt `item` with: `requested` when a person names one (None if no such
    profile is loaded), else the best of `ranked_profiles` (None when nothing fits).

    Firmware never excludes a profile; a choice outside the range carries a `note`.
    """
    if requested is not None:
        profile = profiles.get(requested)
        if profile is None:
            return None
        return ProfileChoice(
            profile=profile, how="requested", fit=profile.firmware_fit(item.firmware), firmware=item.firmware
        )
    ranked = ranked_profiles(profiles, item, candidates=candidates)
    return ranked[0] if ranked else None


def _fits(facts: Mapping[str, str], rule: Mapping[str, Any]) -> bool:
    for key, wanted in rule.items():
        if key == "txt" and isinstance(wanted, Mapping):
            if not all(facts.get(k) == v for k, v in wanted.items()):
                return False
        elif facts.get(key) != wanted:
            return False
    return True


def announcement_matches(announcement: Announcement, rule: Mapping[str, Any]) -> bool:
    if announcement.source is Source.MQTT:
        topic_filter = rule.get("topic")
        topic = announcement.topic
        return (
            isinstance(topic_filter, str) and topic is not None and aiomqtt.Topic(topic).matches(topic_filter)
        )
    return any(_fits(facts, rule) for facts in announcement.facts)


def matches_declaration(item: InboxItem, declaration: Mapping[str, Sequence[Mapping[str, Any]]]) -> bool:
    """True when any of the item's announcements fits any rule of its source."""
    return declaration_score(item, declaration) > 0


def _specificity(rule: Mapping[str, Any]) -> int:
    return sum(len(v) if k == "txt" and isinstance(v, Mapping) else 1 for k, v in rule.items()) or 1


def declaration_score(item: InboxItem, declaration: Mapping[str, Sequence[Mapping[str, Any]]]) -> int:
    """How specifically a declaration claims the item: 0 for not at all, else the most fields
    any fitting rule names. A box two adapters claim goes to the more specific one: an RDK
    box with a DIAL server is the carrier adapter's (`st` + `manufacturer`), not every DIAL
    adapter's (`st` alone).
    """
    best = 0
    for announcement in item.announcements():
        for rule in declaration.get(announcement.source.value, ()):
            if announcement_matches(announcement, rule):
                best = max(best, _specificity(rule))
    return best
