"""The regional dashboard's HTML: server-rendered, no script, readable on any operator's browser.

Each function takes what `queries.py` returned and renders one of the
Jinja2 templates in `templates/` (base.html holds the head and navigation).
The environment autoescapes, so every value from the database or a gateway —
a community's name, an announcement's title, an operator's name — is escaped
where the template puts it, and nothing here builds HTML by hand. Undefined
names fail loudly (StrictUndefined): a template that asks for a field the
query no longer gives is an error, not an empty cell.
"""

from __future__ import annotations

import datetime
import functools
import urllib.parse
from dataclasses import dataclass
from typing import Any

import jinja2

from linli.region.queries import AGE_BUCKETS

_AGE_LABELS = {"lt_1m": "< 1 min", "1_5m": "1–5 min", "5_30m": "5–30 min", "gt_30m": "> 30 min"}
_SEVERITIES = ("critical", "high", "warning", "info")


@dataclass(slots=True, frozen=True)
class Who:
    """The signed-in operator, and the CSRF token every form of theirs carries."""

    name: str
    csrf: str = ""


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} s"


@functools.cache
def _environment() -> jinja2.Environment:
    # Loaded from the package (pyproject's package-data ships templates/*), so an installed
    # wheel renders the same pages as a checkout.
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("linli.region", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )
    env.filters["when"] = _when
    env.filters["seconds"] = _seconds
    # A value put into a URL path as one segment: "/" and everything else outside [A-Za-z0-9_.-~] quoted.
    env.filters["segment"] = functools.partial(urllib.parse.quote, safe="")
    return env


def _render(
    template: str, *, title: str, region: str, who: Who | None, refresh_s: int | None = None, **data: Any
) -> str:
    return (
        _environment()
        .get_template(template)
        .render(title=title, region=region, who=who, refresh_s=refresh_s, **data)
    )


def overview(data: dict[str, Any], who: Who) -> str:
    open_alerts = sorted(
        data["open_alerts"].items(), key=lambda kv: _SEVERITIES.index(kv[0]) if kv[0] in _SEVERITIES else 9
    )
    models = sorted(data["fleet"]["by_model"].items(), key=lambda kv: -kv[1]["total"])[:15]
    return _render(
        "overview.html",
        title="Overview",
        region=data["region"],
        who=who,
        refresh_s=15,
        data=data,
        open_alerts=open_alerts,
        models=models,
        age_buckets=[(name, _AGE_LABELS[name]) for name, _ in AGE_BUCKETS],
    )


def community(region: str, data: dict[str, Any], who: Who) -> str:
    return _render("community.html", title=data["community"], region=region, who=who, refresh_s=15, data=data)


def announcements(
    region: str, items: list[dict[str, Any]], communities: list[str], who: Who, error: str = ""
) -> str:
    return _render(
        "announcements.html",
        title="Announcements",
        region=region,
        who=who,
        items=items,
        communities=sorted(communities),
        error=error,
    )


def report(region: str, data: dict[str, Any], who: Who) -> str:
    return _render("report.html", title=data["id"], region=region, who=who, refresh_s=5, data=data)


def login(region: str, error: str = "") -> str:
    return _render("login.html", title="Sign in", region=region, who=None, error=error)


def audit(region: str, items: list[dict[str, Any]], who: Who) -> str:
    return _render("audit.html", title="Audit", region=region, who=who, items=items)
