"""What the regional dashboard shows, read from PostgreSQL.

Times that come from a gateway (an alert's `raised_at`) are corrected by that
community's clock offset to the region (reported in its status), so a gateway
whose clock is wrong does not make its alerts look hours old or not yet raised.
Acknowledgement times are differences of two gateway times: no correction needed.
"""

from __future__ import annotations

import time
from typing import Any, Final

import asyncpg
import orjson

#: The telecare targets: half of the alarms acknowledged within a minute, 95 % within three.
ACK_TARGET_P50_S: Final = 60.0
ACK_TARGET_P95_S: Final = 180.0
AGE_BUCKETS: Final = (("lt_1m", 60), ("1_5m", 300), ("5_30m", 1800), ("gt_30m", None))


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else value


async def overview(conn: asyncpg.Connection, region: str, online_after_s: float) -> dict[str, Any]:
    now = time.time()
    communities = await conn.fetch(
        """SELECT community, name, online, extract(epoch FROM last_seen)::float8 AS last_seen, clock_offset_s,
                  device_health
           FROM communities WHERE region = $1 ORDER BY community""",
        region,
    )
    online = [
        c
        for c in communities
        if c["online"] and c["last_seen"] is not None and now - c["last_seen"] < online_after_s
    ]
    offline = [c for c in communities if c not in online]
    open_rows = await conn.fetch(
        """SELECT community, severity, extract(epoch FROM now())::float8 - (raised_at + clock_offset_s) AS age
           FROM alerts WHERE region = $1 AND state <> 'resolved'""",
        region,
    )
    open_alerts: dict[str, dict[str, int]] = {}
    open_by_community: dict[str, int] = {}
    for row in open_rows:
        open_by_community[row["community"]] = open_by_community.get(row["community"], 0) + 1
        buckets = open_alerts.setdefault(row["severity"], {name: 0 for name, _ in AGE_BUCKETS} | {"total": 0})
        buckets["total"] += 1
        for name, limit in AGE_BUCKETS:
            if limit is None or row["age"] < limit:
                buckets[name] += 1
                break
    acks = await conn.fetchrow(
        """SELECT count(*) AS n,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY acknowledged_at - raised_at) AS p50,
                  percentile_cont(0.95) WITHIN GROUP (ORDER BY acknowledged_at - raised_at) AS p95,
                  avg((acknowledged_at - raised_at <= $2)::int)::float8 AS within_60,
                  avg((acknowledged_at - raised_at <= $3)::int)::float8 AS within_180
           FROM alerts
           WHERE region = $1 AND acknowledged_at IS NOT NULL
             AND raised_at + clock_offset_s > extract(epoch FROM now())::float8 - 86400""",
        region,
        ACK_TARGET_P50_S,
        ACK_TARGET_P95_S,
    )
    totals = {"devices": 0, "online": 0, "low_battery": 0}
    by_model: dict[str, dict[str, int]] = {}
    for c in communities:
        health = _json(c["device_health"]) or {}
        totals["devices"] += int(health.get("total", 0))
        totals["online"] += int(health.get("online", 0))
        totals["low_battery"] += int(health.get("low_battery", 0))
        for model, counts in (health.get("by_model") or {}).items():
            entry = by_model.setdefault(model, {"total": 0, "online": 0})
            entry["total"] += int(counts.get("total", 0))
            entry["online"] += int(counts.get("online", 0))
    rejected = await conn.fetchval(
        "SELECT count(*) FROM events "
        "WHERE region = $1 AND kind = 'rejected' AND received > now() - interval '1 day'",
        region,
    )
    health = await conn.fetchrow(
        """SELECT count(*) AS summaries, count(DISTINCT (community, household)) AS households,
                  count(DISTINCT (community, household, resident)) AS residents
           FROM health_summaries WHERE region = $1 AND day >= current_date - 7""",
        region,
    )
    return {
        "region": region,
        "communities": {
            "total": len(communities),
            "online": len(online),
            "items": [
                {
                    "community": c["community"],
                    "name": c["name"],
                    "online": c in online,
                    "devices": int((_json(c["device_health"]) or {}).get("total", 0)),
                    "devices_online": int((_json(c["device_health"]) or {}).get("online", 0)),
                    "open_alerts": open_by_community.get(c["community"], 0),
                }
                for c in communities[:500]
            ],
            "offline": [
                {"community": c["community"], "name": c["name"], "last_seen": c["last_seen"]} for c in offline
            ][:200],
        },
        "open_alerts": open_alerts,
        "ack_times_24h": {
            "count": acks["n"],
            "p50_s": acks["p50"],
            "p95_s": acks["p95"],
            "within_60s": acks["within_60"],
            "within_180s": acks["within_180"],
            "target_p50_s": ACK_TARGET_P50_S,
            "target_p95_s": ACK_TARGET_P95_S,
            "meets_targets": acks["n"] > 0
            and acks["p50"] <= ACK_TARGET_P50_S
            and acks["p95"] <= ACK_TARGET_P95_S,
        },
        "fleet": {**totals, "by_model": by_model},
        "downlink_rejections_24h": rejected,
        # Consented daily summaries of the last 7 days (the numbers only: no values on this page).
        "health_summaries_7d": dict(health),
    }


async def community(conn: asyncpg.Connection, region: str, community_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        """SELECT community, name, gateway, online, extract(epoch FROM last_seen)::float8 AS last_seen,
                  clock_offset_s, status, device_health
           FROM communities WHERE region = $1 AND community = $2""",
        region,
        community_id,
    )
    if row is None:
        return None
    alerts = await conn.fetch(
        """SELECT alert_id, household, kind, severity, state, title, count, step, raised_at,
                  acknowledged_at, resolved_at, acknowledged_at - raised_at AS ack_s,
                  extract(epoch FROM now())::float8 - (raised_at + clock_offset_s) AS age_s
           FROM alerts WHERE region = $1 AND community = $2
           ORDER BY state = 'resolved', raised_at DESC LIMIT 200""",
        region,
        community_id,
    )
    recent = await conn.fetch(
        """SELECT id, seq, kind, extract(epoch FROM received)::float8 AS received, data
           FROM events WHERE region = $1 AND community = $2 ORDER BY arrival DESC LIMIT 50""",
        region,
        community_id,
    )
    return {
        "community": row["community"],
        "name": row["name"],
        "gateway": row["gateway"],
        "online": row["online"],
        "last_seen": row["last_seen"],
        "clock_offset_s": row["clock_offset_s"],
        "status": _json(row["status"]),
        "device_health": _json(row["device_health"]),
        "alerts": [dict(a) for a in alerts],
        "recent_events": [dict(r) | {"data": _json(r["data"])} for r in recent],
    }


async def communities(conn: asyncpg.Connection, region: str) -> list[str]:
    return [
        r["community"]
        for r in await conn.fetch("SELECT community FROM communities WHERE region = $1", region)
    ]


async def delivery_report(conn: asyncpg.Connection, announcement_id: str) -> dict[str, Any] | None:
    """How many targeted gateways confirmed an announcement, and how many TVs showed it."""
    row = await conn.fetchrow("SELECT * FROM announcements WHERE id = $1", announcement_id)
    if row is None:
        return None
    receipts = await conn.fetch(
        "SELECT community, state, tvs_shown, tvs_total FROM announcement_receipts WHERE announcement_id = $1",
        announcement_id,
    )
    targets = _json(row["targets"])
    confirmed = {r["community"] for r in receipts}
    expected = targets if isinstance(targets, list) else await communities(conn, row["region"])
    return {
        "id": row["id"],
        "kind": row["kind"],
        "title": row["title"],
        "body": row["body"],
        "targets": targets,
        "issued_at": row["issued_at"],
        "expires_at": row["expires_at"],
        "created_by": row["created_by"],
        "gateways_targeted": row["gateways_targeted"],
        "gateways_confirmed": len(confirmed),
        "gateways_shown": sum(1 for r in receipts if r["state"] == "shown"),
        "tvs_shown": sum(r["tvs_shown"] for r in receipts),
        "tvs_total": sum(r["tvs_total"] for r in receipts),
        "not_confirmed": sorted(set(expected) - confirmed)[:500],
    }


async def announcements(conn: asyncpg.Connection, region: str, limit: int = 20) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT a.id, a.kind, a.title, a.issued_at, a.gateways_targeted,
                  count(r.community) AS confirmed, coalesce(sum(r.tvs_shown), 0) AS tvs_shown,
                  coalesce(sum(r.tvs_total), 0) AS tvs_total
           FROM announcements a LEFT JOIN announcement_receipts r ON r.announcement_id = a.id
           WHERE a.region = $1 GROUP BY a.id ORDER BY a.issued_at DESC LIMIT $2""",
        region,
        limit,
    )
    return [dict(r) for r in rows]
