"""Does an inbox item fit what an adapter declares it discovers?

Adapters declare, in their manifest's `discovery` block, what their devices
look like (adapters never scan):

    {"ssdp": [{"st": "urn:dial-multiscreen-org:service:dial:1"}, {"manufacturer": "Acme"}],
     "zeroconf": [{"type": "_googlecast._tcp.local.", "txt": {"md": "..."}}],
     "mqtt": [{"topic": "zigbee2mqtt/+"}]}

Each rule's fields must all equal what the source learned (an SSDP `st` matches
any type the device announced, answered a search for, or lists in its
description; an MQTT `topic` is a filter on the device's state topic). An
adapter passes `lambda item: matches_declaration(item, manifest.discovery)` to
`Inbox.register_adopter`.
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
    for announcement in item.announcements():
        for rule in declaration.get(announcement.source.value, ()):
            if announcement_matches(announcement, rule):
                return True
    return False
