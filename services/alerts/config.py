"""The `[alerts]` section of the gateway's configuration: read by the alert engine (services/alerts).

The component brings its section's schema and defaults with it (gateway/config.py
applies them for every configured component), so the core knows nothing of it.
"""

from __future__ import annotations

from typing import Any, Final

CONFIG_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "webhooks": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "url", "secret"],
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z0-9_-]{1,40}$"},
                    "url": {"type": "string", "pattern": "^https?://"},
                    "secret": {"type": "string", "minLength": 16},
                    "audiences": {
                        "type": "array",
                        "items": {"enum": ["household", "carers", "duty_desk", "emergency"]},
                    },
                    "households": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}

CONFIG_DEFAULTS: Final[dict[str, Any]] = {}
