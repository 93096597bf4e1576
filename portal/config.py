"""The `[portal]` section of the gateway's configuration: read by the portal (portal/app.py).

The component brings its section's schema and defaults with it (gateway/config.py
applies them for every configured component), so the core knows nothing of it.
"""

from __future__ import annotations

from typing import Any, Final

from linli.common.forwarded import parse_networks

CONFIG_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "host": {"type": "string"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "enabled": {"type": "boolean"},
        "public_url": {"type": "string", "pattern": "^https?://"},
        # The read-only community views (/, /api/v1/status, households, devices)
        # without signing in, for this machine's own browser only. `linli demo`
        # turns it on for its simulated community; never for a real one.
        "open_local_views": {"type": "boolean"},
        "session_hours": {"type": "number", "minimum": 0.1, "maximum": 720},
        # Forced on; otherwise cookies are Secure whenever the client used TLS.
        "secure_cookies": {"type": "boolean"},
        # Reverse proxies (addresses or networks) whose X-Forwarded-For/-Proto are believed.
        "trusted_proxies": {"type": "array", "items": {"type": "string", "minLength": 1}},
    },
}

CONFIG_DEFAULTS: Final[dict[str, Any]] = {
    "host": "127.0.0.1",
    "port": 8080,
    "enabled": True,
    "open_local_views": False,
    "session_hours": 12,
    "secure_cookies": False,  # forced Secure cookies; TLS (or a trusted proxy's https) sets them anyway
    "trusted_proxies": [],  # e.g. ["127.0.0.1"] behind a local nginx; none: the peer is the client
}


def check_config(section: dict[str, Any]) -> list[str]:
    """What the schema cannot say: each trusted proxy is an address or a network."""
    errors = []
    try:
        parse_networks(section["trusted_proxies"])
    except ValueError as exc:
        errors.append(f"config: {exc}; name only the reverse proxies in front of the portal")
    return errors
