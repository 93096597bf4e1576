"""Stable identity keys: how the same box found by two sources becomes one inbox entry.

Each source turns what a device says about itself into keys of one normal form:

    uuid:<32 hex>       a UPnP UDN, a Chromecast's TXT `id` (the same UUID, without dashes)
    mac:<12 hex>        an AirPlay/HomeKit `deviceid`, a Tasmota/ESPHome identifier, an MQTT connection
    ieee:<16 hex>       a Zigbee IEEE address (Zigbee2MQTT identifiers)
    linli:<id>          a native Linli device's id
    mqtt:<identifier>   any other MQTT discovery identifier or unique_id
    zeroconf:<name>     a service instance without any id of its own
    topic:<topic>       an MQTT discovery config topic (ties unusable input to its device)
    ssdp:<location>     an SSDP device whose USN is unusable

Keys are compared as strings; the more specific kinds come first in an
announcement, and the first key names a new inbox item.
"""

from __future__ import annotations

import re
import uuid
from typing import Final

_UUID: Final = re.compile(
    r"([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})", re.IGNORECASE
)
_MAC: Final = re.compile(r"^([0-9a-f]{2})[:-]?(?:([0-9a-f]{2})[:-]?){4}([0-9a-f]{2})$", re.IGNORECASE)
_IEEE: Final = re.compile(r"0x([0-9a-f]{16})", re.IGNORECASE)
_KIND_ORDER: Final = ("linli", "uuid", "ieee", "mac", "mqtt", "zeroconf", "ssdp", "topic")
MAX_KEY_CHARS: Final = 300


def uuid_key(text: str | None) -> str | None:
    """`uuid:…` for a UUID with or without dashes (also inside `uuid:…::urn:…`)."""
    if not text:
        return None
    match = _UUID.search(text)
    return f"uuid:{''.join(match.groups()).lower()}" if match else None


def mac_key(text: str | None) -> str | None:
    """`mac:…` for `AA:BB:CC:DD:EE:FF`, `aa-bb-…` or 12 bare hex digits; None otherwise."""
    if not text:
        return None
    text = text.strip()
    if not _MAC.match(text):
        return None
    digits = re.sub(r"[:-]", "", text).lower()
    return f"mac:{digits}" if len(digits) == 12 else None


def ieee_key(text: str | None) -> str | None:
    if not text:
        return None
    match = _IEEE.search(text)
    return f"ieee:{match.group(1).lower()}" if match else None


def identifier_keys(identifier: str, fallback_kind: str = "mqtt") -> list[str]:
    """The keys an opaque device identifier stands for (most specific first)."""
    keys = [k for k in (ieee_key(identifier), mac_key(identifier), uuid_key(identifier)) if k]
    if not keys:
        keys.append(f"{fallback_kind}:{identifier[:MAX_KEY_CHARS]}")
    return keys


def ordered(keys: list[str]) -> tuple[str, ...]:
    """Deduplicated, most specific kind first, original order within a kind."""
    seen: dict[str, None] = {}
    for key in keys:
        seen.setdefault(key[:MAX_KEY_CHARS], None)

    def rank(key: str) -> int:
        kind = key.partition(":")[0]
        return _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)

    return tuple(sorted(seen, key=rank))


def renderer_udn(gateway_id: str, household_id: str) -> str:
    """The UDN of a household's virtual DLNA renderer (services/screens/cast.py): stable across
    restarts, so phones know it again; discovery uses it to ignore the gateway's own."""
    return f"uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'linli:{gateway_id}:{household_id}')}"
