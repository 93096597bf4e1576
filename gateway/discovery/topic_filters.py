"""State topics that are MQTT filters, and which household may take them.

OpenMQTTGateway (and Theengs Gateway) announce a BLE device's state topic as
`+/+/BTtoMQTT/<MAC>`: any of its gateways, whatever its base topic and name,
may report the device. A filter is not a topic anybody owns, so adopting one
has rules of its own (no I/O here; the inbox and the MQTT device adapter apply
them):

* `+` only, as a whole level, and the last level a literal (the device's MAC):
  never `#`, which would take every topic below it (schemas.py refuses both).
* A filter that can match under another household's bridge base, and under no
  bridge of the adopting household, is that other household's device:
  `wrong_household`; so is one that matches a device another household has. Nor may
  it lie under Linli's own `linli/…` topics or a discovery prefix, and the adapter
  never takes a message under `linli/v1/` through a filter.
* Where the adopting household has a bridge the filter can match under, the
  registry keeps the filter narrowed to that bridge's base (`home/OMG_h0101/
  BTtoMQTT/<MAC>`); otherwise a plain stand-in (each `+` as `_`), on which nobody
  publishes: the registry keys devices by a plain topic, and the device itself
  reads the filter.
* Messages on a matching topic are taken only from topics no other household
  owns (`foreign`), now and for bridges added later.
* No device credential is ever issued for a filter (gateway/mqtt/credentials.py):
  the gateway that hears the device connects as the household's bridge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from linli.gateway.mqtt.acl import topic_under

#: What a `+` level becomes in the registry's stand-in topic (nobody publishes there).
STAND_IN_LEVEL: Final = "_"


class FilterRefused(ValueError):
    """A filter that cannot be adopted into that household; `code` and the message say why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def is_filter(topic: str | None) -> bool:
    return topic is not None and ("+" in topic or "#" in topic)


def matches(topic_filter: str, topic: str) -> bool:
    """Does `topic` match a filter of whole-level `+` wildcards (no `#`)?"""
    levels, parts = topic_filter.split("/"), topic.split("/")
    return len(levels) == len(parts) and all(f in ("+", p) for f, p in zip(levels, parts, strict=True))


def narrow(topic_filter: str, base: str) -> str | None:
    """The filter with its leading levels fixed to `base`, if a topic under `base` can match it.

    `narrow("+/+/BTtoMQTT/A4C1", "home/OMG_h0101")` → `"home/OMG_h0101/BTtoMQTT/A4C1"`;
    `narrow("+/+/BTtoMQTT/A4C1", "zigbee2mqtt/x/y/z")` → None.
    """
    levels, fixed = topic_filter.split("/"), base.rstrip("/").split("/")
    if len(fixed) > len(levels):
        return None
    for i, part in enumerate(fixed):
        if levels[i] not in ("+", part):
            return None
    return "/".join([*fixed, *levels[len(fixed) :]])


def stand_in(topic_filter: str) -> str:
    """A plain topic standing for the filter in the registry (each `+` as `_`)."""
    return "/".join(STAND_IN_LEVEL if level == "+" else level for level in topic_filter.split("/"))


def stands_for(topic_filter: str, topic: str) -> bool:
    """Is `topic` what the registry keeps for `topic_filter` (its stand-in or a narrowing)?"""
    return topic == stand_in(topic_filter) or matches(topic_filter, topic)


@dataclass(frozen=True, slots=True)
class Bridge:
    """A household's bridge: it publishes only under `base`."""

    base: str
    household_id: str


def registry_topic(
    topic_filter: str,
    household_id: str,
    bridges: Iterable[Bridge],
    *,
    reserved: Iterable[str] = (),
    foreign_topics: Iterable[tuple[str, str]] = (),
) -> str:
    """The plain topic the registry keeps for a device adopted with `topic_filter` into
    `household_id`; FilterRefused when the filter is another household's (or lies under a
    `reserved` base). `foreign_topics`: (topic, household) of registered devices."""
    for base in reserved:
        if topic_under(topic_filter, base):
            raise FilterRefused(
                "not_adoptable",
                f"its state topic filter {topic_filter!r} lies under {base!r}, where no device "
                "announced by discovery may publish: it cannot be adopted with that filter",
            )
    own: list[str] = []
    foreign: list[Bridge] = []
    for bridge in bridges:
        narrowed = narrow(topic_filter, bridge.base)
        if narrowed is None:
            continue
        if bridge.household_id == household_id:
            own.append(narrowed)
        else:
            foreign.append(bridge)
    if foreign and not own:
        owners = sorted({b.household_id for b in foreign})
        bases = ", ".join(sorted(repr(b.base) for b in foreign))
        raise FilterRefused(
            "wrong_household",
            f"its state topic filter {topic_filter!r} is reported under the bridge base {bases} of "
            f"household {', '.join(map(repr, owners))}, and under no bridge of {household_id!r}: "
            f"adopt it into {owners[0]!r}, or give the gateway that hears it in {household_id!r} "
            "its own bridge credential",
        )
    for topic, owner in foreign_topics:
        if owner != household_id and matches(topic_filter, topic):
            raise FilterRefused(
                "wrong_household",
                f"its state topic filter {topic_filter!r} covers {topic!r}, a device of household "
                f"{owner!r}: it can only be adopted into {owner!r}",
            )
    plain = sorted(t for t in own if not is_filter(t))
    return plain[0] if plain else stand_in(topic_filter)


def under_any(topic: str, bases: Iterable[str]) -> bool:
    return any(topic_under(topic, base) for base in bases)
