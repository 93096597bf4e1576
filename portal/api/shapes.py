"""Public JSON shapes of core objects, as API clients and pages receive them.

Alert ids are 64-bit integers (`gateway/ids.py`); JavaScript numbers hold 53
bits, so a page would round them and acknowledge the wrong alert. The API and
the WebSocket therefore send every alert id as a decimal string; paths accept it.
"""

from __future__ import annotations

from typing import Any


def public_alert(alert: dict[str, Any]) -> dict[str, Any]:
    return {**alert, "id": str(alert["id"])}
