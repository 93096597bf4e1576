"""Daily times: check-in deadlines and reminders, in the gateway's local time."""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

_HHMM: Final = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(text: str) -> dt.time:
    match = _HHMM.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a time of day like '09:30'")
    return dt.time(int(match.group(1)), int(match.group(2)))


def local_day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).date().isoformat()


def at_on_day(day: str, when: dt.time) -> float:
    """The timestamp of `when` on the local calendar day `day` (YYYY-MM-DD)."""
    return dt.datetime.combine(dt.date.fromisoformat(day), when).timestamp()
