"""Discovery: zeroconf, SSDP/UPnP/DIAL and MQTT discovery, all feeding one inbox.

Nothing joins a household unasked: every device found waits in the inbox for
a person to approve it (into a household, with room and name), reject it or
ignore it. See inbox.py for the states, and each source's module for what it
reads from the network.
"""

from linli.gateway.component import ComponentKey
from linli.gateway.discovery.adopters import FoundDevice
from linli.gateway.discovery.component import Discovery
from linli.gateway.discovery.events import InboxChanged
from linli.gateway.discovery.inbox import Adopter, Adoption, Inbox, InboxError, check_actor
from linli.gateway.discovery.matching import declaration_score, matches_declaration
from linli.gateway.discovery.model import (
    Announcement,
    Decision,
    InboxItem,
    InboxStatus,
    ProposedCapability,
    Rejection,
    Source,
)

#: This component, for typed lookup by its peers: `api.peer(DISCOVERY)` is a Discovery.
DISCOVERY: ComponentKey[Discovery] = ComponentKey("discovery", Discovery)

__all__ = [
    "DISCOVERY",
    "Adopter",
    "Adoption",
    "Announcement",
    "Decision",
    "Discovery",
    "FoundDevice",
    "Inbox",
    "InboxChanged",
    "InboxError",
    "InboxItem",
    "InboxStatus",
    "ProposedCapability",
    "Rejection",
    "Source",
    "check_actor",
    "declaration_score",
    "matches_declaration",
]
