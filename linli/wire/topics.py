"""The regional topic layout (documented in README.md, "Regional uplink").

Up, gateway → region (QoS 1, in outbox order):

    linli/v1/<region>/<community>/up/<kind>        one outbox event, JSON envelope
    linli/v1/<region>/<community>/presence         online | offline, retained (birth / last will)

Down, region → gateways (QoS 1, each message signed by the region with Ed25519):

    linli/v1/<region>/<community>/down/announcement  to one community
    linli/v1/<region>/_all/down/announcement         region-wide
    linli/v1/<region>/_all/down/clock                the region's signed time, retained

The regional consumers subscribe to `$share/<group>/linli/v1/<region>/+/up/#` and
`$share/<group>/linli/v1/<region>/+/presence`, so that each message goes to one
consumer of the group. The community id `_all` is reserved.
"""

from __future__ import annotations

from typing import Final

ROOT: Final = "linli/v1"
ALL: Final = "_all"  # the reserved "every community" level of the downlink
UP: Final = "up"
DOWN: Final = "down"
PRESENCE: Final = "presence"
ANNOUNCEMENT: Final = "announcement"
CLOCK: Final = "clock"


def up_topic(region: str, community: str, kind: str) -> str:
    return f"{ROOT}/{region}/{community}/{UP}/{kind}"


def presence_topic(region: str, community: str) -> str:
    return f"{ROOT}/{region}/{community}/{PRESENCE}"


def down_topic(region: str, community: str, what: str = ANNOUNCEMENT) -> str:
    """`community` is a community id or ALL."""
    return f"{ROOT}/{region}/{community}/{DOWN}/{what}"


def down_filters(region: str, community: str) -> list[str]:
    """What one gateway subscribes to: its own downlink and the region-wide one."""
    return [f"{ROOT}/{region}/{community}/{DOWN}/#", f"{ROOT}/{region}/{ALL}/{DOWN}/#"]


def shared(group: str, topic_filter: str) -> str:
    """An MQTT 5 shared subscription: each message to one member of `group`."""
    return f"$share/{group}/{topic_filter}"


def region_up_filters(region: str) -> list[str]:
    """What the regional consumers subscribe to (inside a shared subscription)."""
    return [f"{ROOT}/{region}/+/{UP}/#", f"{ROOT}/{region}/+/{PRESENCE}"]


def parse_up(topic: str) -> tuple[str, str, str] | None:
    """`linli/v1/r/c/up/alert` → ("r", "c", "alert"); presence → ("r", "c", "presence")."""
    parts = topic.split("/")
    if len(parts) == 6 and parts[0] == "linli" and parts[1] == "v1" and parts[4] == UP:
        return parts[2], parts[3], parts[5]
    if len(parts) == 5 and parts[0] == "linli" and parts[1] == "v1" and parts[4] == PRESENCE:
        return parts[2], parts[3], PRESENCE
    return None
