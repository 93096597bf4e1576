"""Daily and weekly summaries of a resident's readings: what the phone and TV pages chart.

Periods are the resident's local calendar days (midnight to midnight in the
gateway's time zone) and ISO weeks (Monday to Monday). Every period in the
range is present, with count 0 and no values where nothing was measured, so a
chart shows the gap instead of joining across it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any, Final

from linli.services.health.readings import VITALS, Reading


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"


#: How many periods a trend covers when the caller does not say.
DEFAULT_SPAN: Final = {Period.DAY: 14, Period.WEEK: 12}


@dataclass(slots=True, kw_only=True)
class Stats:
    min: float
    mean: float
    max: float

    def as_dict(self) -> dict[str, float]:
        return {"min": self.min, "mean": self.mean, "max": self.max}


@dataclass(slots=True, kw_only=True)
class TrendPoint:
    """One period's summary of one kind."""

    period: Period
    start: date  # the local day, or the Monday of the week
    start_ts: float
    end_ts: float
    count: int
    values: dict[str, Stats] = field(default_factory=dict)  # per quantity; empty when count == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period.value,
            "start": self.start.isoformat(),
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "count": self.count,
            "values": {name: stats.as_dict() for name, stats in self.values.items()},
        }


def parse_period(period: str) -> Period:
    try:
        return Period(period)
    except ValueError:
        raise ValueError(f"period {period!r} is not one of {[p.value for p in Period]}") from None


def period_start(ts: float, period: Period, tz: tzinfo) -> date:
    """The local day (or the Monday of the ISO week) that `ts` falls in."""
    day = datetime.fromtimestamp(ts, tz).date()
    return day - timedelta(days=day.weekday()) if period is Period.WEEK else day


def _midnight(day: date, tz: tzinfo) -> float:
    return datetime.combine(day, time(0), tz).timestamp()


def default_range(now: float, period: Period, tz: tzinfo) -> tuple[float, float]:
    """The last DEFAULT_SPAN periods, the current one included."""
    step = timedelta(days=7 if period is Period.WEEK else 1)
    current = period_start(now, period, tz)
    first = current - step * (DEFAULT_SPAN[period] - 1)
    return _midnight(first, tz), _midnight(current + step, tz)


def summarise(
    readings: Iterable[Reading], kind: str, period: Period, since: float, until: float, tz: tzinfo
) -> list[TrendPoint]:
    """Min, mean, max and count per period between `since` and `until`."""
    spec = VITALS[kind]
    names = list(spec.components) if spec.components else [kind]
    decimals = spec.quantity.decimals + 1
    step = timedelta(days=7 if period is Period.WEEK else 1)
    buckets: dict[date, dict[str, list[float]]] = {}
    counts: dict[date, int] = {}
    for reading in readings:
        if reading.kind != kind or not since <= reading.ts < until:
            continue
        key = period_start(reading.ts, period, tz)
        counts[key] = counts.get(key, 0) + 1
        series = buckets.setdefault(key, {name: [] for name in names})
        for name, value in reading.parameters().items():
            if name in series:
                series[name].append(value)
    points = []
    day = period_start(since, period, tz)
    while _midnight(day, tz) < until:
        series = buckets.get(day, {})
        points.append(
            TrendPoint(
                period=period,
                start=day,
                start_ts=_midnight(day, tz),
                end_ts=_midnight(day + step, tz),
                count=counts.get(day, 0),
                values={
                    name: Stats(min=min(vals), mean=round(sum(vals) / len(vals), decimals), max=max(vals))
                    for name, vals in series.items()
                    if vals
                },
            )
        )
        day += step
    return points
