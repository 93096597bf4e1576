"""A household's usual quiet, learned from the weeks before.

The day is cut into 96 quarter-hours. For every past day we know which
quarter-hours saw any activity in the home; from that, for each quarter-hour of
the day, how long the home had *already* been silent at that moment. A night's
sleep makes 06:45 look long-silent; a resident who is up by 07:30 makes 09:00
short. The usual silence at a time of day is the 90th percentile of those
across the days learned from (one lie-in a fortnight is part of the routine).

The limit at a quarter-hour allows the routine to run late: it is the longest
usual silence within the previous `tolerance` (default 2 h), carried forward to
now, plus a margin. So a resident who is always up by 07:30 is checked at about
09:45 — earlier than the fixed 4-daytime-hour rule would (11:00) — and one who
always naps after lunch is not alarmed by it. Never stricter than `floor_s`,
never looser than the overnight limit.

Days with no activity at all (away, or the gateway off) teach nothing and are
skipped; a quarter-hour with fewer than `MIN_DAYS` samples falls back to the
fixed rule.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

BUCKET_S: Final = 900
BUCKETS: Final = 96
MIN_DAYS: Final = 7
PERCENTILE: Final = 0.9


def bucket_of(ts: float) -> tuple[str, int]:
    """The local calendar day and quarter-hour of a timestamp."""
    local = dt.datetime.fromtimestamp(ts)
    return local.date().isoformat(), (local.hour * 60 + local.minute) // 15


def _previous(day: str) -> str:
    return (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]  # nearest rank


@dataclass(frozen=True, slots=True)
class Routine:
    """What was learned: the usual silence and the limit at each quarter-hour (None: not enough data)."""

    days: int
    usual_s: tuple[float | None, ...]
    limits_s: tuple[float | None, ...]

    def limit_at(self, ts: float) -> float | None:
        return self.limits_s[bucket_of(ts)[1]]

    @property
    def ready(self) -> bool:
        return any(limit is not None for limit in self.limits_s)

    def as_dict(self) -> dict[str, object]:
        return {
            "days": self.days,
            "ready": self.ready,
            "limits_h": [None if v is None else round(v / 3600, 2) for v in self.limits_s],
        }


def silences(active: Mapping[str, Iterable[int]], days: Iterable[str]) -> dict[str, list[float | None]]:
    """For each day, the silence already running at the end of each quarter-hour (None: unknown)."""
    sets = {day: set(buckets) for day, buckets in active.items()}
    result: dict[str, list[float | None]] = {}
    for day in days:
        today = sets.get(day)
        if not today:
            continue  # no activity at all: away, or nobody was watching
        before = sets.get(_previous(day))
        last: int | None = max(before) - BUCKETS if before else None
        row: list[float | None] = []
        for bucket in range(BUCKETS):
            if bucket in today:
                last = bucket
            row.append(None if last is None else (bucket - last) * BUCKET_S)
        result[day] = row
    return result


def learn(
    active: Mapping[str, Iterable[int]],
    *,
    today: str,
    weeks: int,
    cap_s: float,
    floor_s: float = 3600.0,
    tolerance_s: float = 2 * 3600.0,
    margin_s: float = 1800.0,
) -> Routine:
    """Learn the routine from the active quarter-hours of the `weeks` before `today`."""
    first = (dt.date.fromisoformat(today) - dt.timedelta(weeks=weeks)).isoformat()
    days = sorted(d for d in active if first <= d < today)
    rows = silences(active, days)
    usual: list[float | None] = []
    for bucket in range(BUCKETS):
        samples = [s for row in rows.values() if (s := row[bucket]) is not None]
        usual.append(_percentile(samples, PERCENTILE) if len(samples) >= MIN_DAYS else None)
    shift = int(tolerance_s // BUCKET_S)
    limits: list[float | None] = []
    for bucket in range(BUCKETS):
        # the routine running up to `tolerance` late: the silence usual k quarter-hours ago, k later
        carried = [
            value + k * BUCKET_S
            for k in range(shift + 1)
            if (value := usual[(bucket - k) % BUCKETS]) is not None
        ]
        if usual[bucket] is None or not carried:
            limits.append(None)
        else:
            limits.append(min(cap_s, max(floor_s, max(carried) + margin_s)))
    return Routine(days=len(rows), usual_s=tuple(usual), limits_s=tuple(limits))
