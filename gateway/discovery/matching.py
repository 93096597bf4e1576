"""Does an inbox item fit what an adapter declares it discovers?

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

from collections.abc import Mapping, Sequence
from typing import Any

import aiomqtt

from gateway.discovery.model import Announcement, InboxItem, Source


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
