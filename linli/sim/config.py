"""The `[demo]` section of the configuration: read by the simulated community of `linli demo`.

The component brings its section's schema and defaults with it (gateway/config.py
applies them for every configured component), so the core knows nothing of it.
"""

from __future__ import annotations

from typing import Any, Final

CONFIG_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "households": {"type": "integer", "minimum": 1, "maximum": 5000},
        "rate": {"type": "number", "minimum": 0},
        "sos_per_hour": {"type": "number", "minimum": 0},
        "tv_remote_per_hour": {"type": "number", "minimum": 0},
    },
}

CONFIG_DEFAULTS: Final[dict[str, Any]] = {}
