"""Public JSON shapes of core objects, as API clients and pages receive them.

Alert ids are 64-bit integers (`gateway/ids.py`); JavaScript numbers hold 53
bits, so a page would round them and acknowledge the wrong alert. The API and
the WebSocket therefore send every alert id as a decimal string; paths accept it.

Device state of a health kind (blood pressure, SpO2…) is health data: whoever may
not read the household's health readings gets such a capability with a null
value and `"redacted": "consent_required"` (see `redact_capability`).
"""

from __future__ import annotations

from typing import Any, Final


def public_alert(alert: dict[str, Any]) -> dict[str, Any]:
    return {**alert, "id": str(alert["id"])}


#: The marker a capability carries when its value is withheld (its value, times are null).
REDACTED: Final = "consent_required"


def redact_capability(capability: dict[str, Any]) -> dict[str, Any]:
    """A capability as shown to someone who may not see its value: listed, but without value or times.

    The times go too: when a cuff last reported says when someone measured their blood pressure.
    """
    return {
        **capability,
        "value": None,
        "last_changed": None,
        "last_reported": None,
        "redacted": REDACTED,
    }
