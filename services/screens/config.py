"""The `[cast]` section of the configuration: read by casting to the households' TVs (cast.py).

The component brings its section's schema and defaults with it (gateway/config.py
applies them for every configured component), so the core knows nothing of it.
"""

from __future__ import annotations

from typing import Any, Final

CONFIG_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "host": {"type": "string"},
        "port": {"type": "integer", "minimum": 0, "maximum": 65535},
        "public_url": {"type": "string", "pattern": "^https?://"},
        # The gateway's addresses on the households' segments: renderers are announced
        # (SSDP) there, each only where its household's allowed_networks include the address.
        "interfaces": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "ssdp": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "group": {"type": "string"},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "announce_s": {"type": "number", "minimum": 1},
            },
        },
        # household id (or "*" for every other household) → the networks its renderer
        # answers (e.g. its VLAN, "192.168.12.0/24"); default: loopback only.
        "allowed_networks": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string", "minLength": 1}},
        },
        "pairing_s": {"type": "number", "minimum": 1},
    },
}

CONFIG_DEFAULTS: Final[dict[str, Any]] = {}
