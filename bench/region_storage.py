"""Bytes per row of each kind of regional record, measured in PostgreSQL, and what ten million users store.

A throwaway PostgreSQL 15 (with pg_partman) gets the regional schema and one simulated day
of `--communities` communities of `--households` households each, written through the
consumers' own `apply_batch`: status every 60 s, device health every 300 s, hourly rollups,
alerts with their transitions (0.1 per household per day, ~5 changes each), announcement
receipts, and daily health summaries for `--consenting` of the residents. The payloads have
the shapes the gateway sends (gateway/uplink/component.py, linli/wire/messages.py) at that
community size. Printed per kind: the mean row as stored (`pg_column_size` of the row) and the
table's bytes on disk per row, its indexes and TOAST included (`pg_total_relation_size` of the
region's partitions over their rows), then docs/scale.md's storage arithmetic from them.

    python bench/region_storage.py            # about 20 s here
    python bench/region_storage.py --quick    # 3 communities of 300 households, a few seconds

Headline, last: raw_events_gb_per_day=<the modelled 10 M-user day at the measured event row size>.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from linli.region.ingest import apply_batch
from linli.region.schema import SEQ_BITS, migrate
from linli.wire.messages import Envelope
from tests.postgres import PostgresCluster

REGION = "hubei"
MODELS = [f"Vendor{m}/Model-{m:02d}" for m in range(12)]


class Community:
    def __init__(self, name: str, households: int, start: float) -> None:
        self.name, self.households, self.start = name, households, start
        self.seq = 0
        self.devices = households * 6

    def envelope(self, kind: str, at: float, data: dict[str, Any]) -> Envelope:
        self.seq += 1
        return Envelope(
            id=(int(at * 1000) << SEQ_BITS) + (self.seq % 4096),
            seq=self.seq,
            kind=kind,
            region=REGION,
            community=self.name,
            gateway=f"gw-{self.name}",
            ts=at,
            data=data,
        )

    def status(self, at: float) -> Envelope:
        return self.envelope(
            "status",
            at,
            {
                "name": f"{self.name} 社区",
                "version": "0.1.0",
                "started_at": self.start,
                "households": self.households,
                "devices": self.devices,
                "devices_online": self.devices - random.randint(0, 40),
                "tvs": self.households,
                "open_alerts": {"critical": random.randint(0, 2), "warning": random.randint(0, 5)},
                "outbox": {"rows": 0, "bytes": 0, "alerts_and_receipts": 0, "oldest_s": None},
                "dropped": {},
                "clock_offset_s": round(random.uniform(-0.5, 0.5), 3),
                "uplink": {
                    "connected": True,
                    "connects": 3,
                    "published": random.randint(10_000, 90_000),
                    "delivered": random.randint(10_000, 90_000),
                    "refusals": 0,
                    "unrouted": 0,
                },
            },
        )

    def device_health(self, at: float) -> Envelope:
        per = self.devices // len(MODELS)
        offline = random.randint(5, 40)
        return self.envelope(
            "device_health",
            at,
            {
                "total": self.devices,
                "online": self.devices - offline,
                "offline": offline,
                "low_battery": random.randint(0, 30),
                "by_model": {m: {"total": per, "online": per - random.randint(0, 4)} for m in MODELS},
                "offline_sample": [f"h{random.randint(1, self.households):04d}-door-01" for _ in range(20)],
            },
        )

    def rollup(self, at: float) -> Envelope:
        return self.envelope(
            "rollup",
            at,
            {
                "from": at - 3600,
                "to": at,
                "telemetry_rows": random.randint(1000, 5000),
                "alerts_raised": {"sos": 0, "fall": random.randint(0, 1), "offline": random.randint(0, 3)},
            },
        )

    def alert(self, alert_id: int, raised: float, at: float, state: str, transitions: list[str]) -> Envelope:
        return self.envelope(
            "alert",
            at,
            {
                "alert": {
                    "id": alert_id,
                    "kind": random.choice(["sos", "fall", "smoke", "leak", "missed_checkin", "offline"]),
                    "severity": "critical",
                    "household_id": f"h{random.randint(1, self.households):04d}",
                    "title": "3号楼 2单元 501 紧急求助",
                    "count": 1,
                    "state": state,
                    "raised_at": raised,
                    "last_seen_at": at,
                    "step": len(transitions),
                    "acknowledged_at": at if state in ("acknowledged", "resolved") else None,
                    "resolved_at": at if state == "resolved" else None,
                },
                "transitions": transitions[-1:],
            },
        )

    def receipt(self, at: float, state: str) -> Envelope:
        data = {"announcement_id": "hubei-01J9Z8K4T6Q2W5E7R3Y1U0I9O8", "state": state}
        if state == "shown":
            data |= {"tvs_shown": self.households, "tvs_total": self.households}
        return self.envelope("receipt", at, data)

    def health_summary(self, at: float, household: int, resident: int) -> Envelope:
        return self.envelope(
            "health_summary",
            at,
            {
                "household_id": f"h{household:04d}",
                "resident_id": f"r{household:04d}-{resident}",
                "day": time.strftime("%Y-%m-%d", time.gmtime(at)),
                "utc_offset_min": 480,
                "readings": 3,
                "vitals": {
                    "blood_pressure": {
                        "count": 3,
                        "values": {
                            "systolic": {"min": 118, "mean": 126.3, "max": 135},
                            "diastolic": {"min": 76, "mean": 81.0, "max": 88},
                        },
                    },
                    "heart_rate": {"count": 3, "values": {"bpm": {"min": 64, "mean": 70.7, "max": 78}}},
                },
            },
        )

    def day(self, start: float, consenting: float) -> list[Envelope]:
        out: list[Envelope] = []
        for minute in range(1440):
            out.append(self.status(start + minute * 60))
            if minute % 5 == 0:
                out.append(self.device_health(start + minute * 60 + 1))
            if minute % 60 == 59:
                out.append(self.rollup(start + minute * 60 + 2))
        for n in range(max(1, self.households // 10)):  # 0.1 alerts per household per day
            raised = start + random.uniform(0, 86000)
            alert_id = (int(raised * 1000) << SEQ_BITS) + n
            steps = ["raised", "notifying", "escalated", "acknowledged", "resolved"]
            for i, state in enumerate(steps):
                current = {"raised": "active", "notifying": "active", "escalated": "active"}.get(state, state)
                out.append(self.alert(alert_id, raised, raised + i * 30, current, steps[: i + 1]))
        out += [self.receipt(start + 40_000, "received"), self.receipt(start + 40_001, "shown")]
        residents = int(self.households * 2 * consenting)
        for r in range(residents):  # summaries supersede each other through the day: the last stays
            for k in range(3):
                out.append(self.health_summary(start + 25_000 + k * 20_000 + r, r // 2 + 1, r % 2))
        out.sort(key=lambda e: e.id)
        return out


EVENT_KINDS = ("status", "device_health", "rollup", "alert", "receipt", "health_summary")


async def measure(dsn: str) -> dict[str, dict[str, float]]:
    conn = await asyncpg.connect(dsn)
    try:
        sizes: dict[str, dict[str, float]] = {}
        rows = await conn.fetch(
            "SELECT kind, count(*) AS n, avg(pg_column_size(e.*)) AS row_b, "
            "avg(pg_column_size(e.data)) AS data_b FROM events e GROUP BY kind"
        )
        for r in rows:
            sizes[f"events:{r['kind']}"] = {
                "rows": r["n"],
                "row_b": float(r["row_b"]),
                "data_b": float(r["data_b"]),
            }
        for table in ("events", "alerts", "health_summaries"):
            n = await conn.fetchval(f"SELECT count(*) FROM {table}")
            row_b = await conn.fetchval(f"SELECT avg(pg_column_size(t.*)) FROM {table} t")
            # Only the partitions holding rows: an empty one's index metapages are no cost per row.
            held = [
                r["p"]
                for r in await conn.fetch(f"SELECT DISTINCT tableoid::regclass::text AS p FROM {table}")
            ]
            disk = await conn.fetchval(
                "SELECT sum(pg_total_relation_size(p::regclass)) FROM unnest($1::text[]) AS p", held
            )
            sizes[table] = {"rows": n, "row_b": float(row_b), "disk_b": float(disk) / n if n else 0.0}
        return sizes
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--communities", type=int, default=10)
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument("--consenting", type=float, default=0.15, help="share of residents (2 a household)")
    parser.add_argument("--quick", action="store_true", help="3 communities of 300 households")
    args = parser.parse_args()
    if args.quick:
        args.communities, args.households = 3, 300
    random.seed(17)
    cluster = PostgresCluster()
    cluster.start()
    try:
        admin = await asyncpg.connect(cluster.dsn())
        await admin.execute("CREATE DATABASE storage")
        await admin.close()
        dsn = cluster.dsn("storage")
        conn = await asyncpg.connect(dsn)
        await migrate(conn, REGION)
        start = time.time() - 86400
        total = 0
        for c in range(args.communities):
            batch = Community(f"c{c:03d}", args.households, start - 7 * 86400).day(start, args.consenting)
            for i in range(0, len(batch), 2000):
                await apply_batch(conn, batch[i : i + 2000])
            total += len(batch)
        await conn.execute("VACUUM ANALYZE")
        sizes = await measure(dsn)
        # A closed month is never written again: compacted once (VACUUM FULL, or pg_repack
        # online), its superseded row versions no longer count.
        await conn.execute("VACUUM FULL")
        compacted = await measure(dsn)
        await conn.close()
    finally:
        cluster.stop()
    print(f"{args.communities} communities × {args.households} households, one day: {total} events\n")
    print(f"{'what':<24} {'rows':>8} {'row as stored (B)':>18} {'data (B)':>9} {'on disk/row (B)':>16}")
    for name, row in sizes.items():
        disk = f"{row['disk_b']:.0f}" if "disk_b" in row else ""
        print(f"{name:<24} {row['rows']:>8} {row['row_b']:>18.0f} {row.get('data_b', 0):>9.0f} {disk:>16}")
    for table in ("events", "alerts", "health_summaries"):
        print(f"{table + ', compacted':<24} {'':>8} {'':>18} {'':>9} {compacted[table]['disk_b']:>16.0f}")
    # The arithmetic of docs/scale.md: 5,000 gateways (10 M users), at the modelled rates there.
    event_b, alert_b = sizes["events"]["disk_b"], sizes["alerts"]["disk_b"]
    summary_b = compacted["health_summaries"]["disk_b"]
    events_day = 5000 * 2270 + 3_000_000  # upward events + a million residents' summaries, 3 a day
    alerts_year = 0.1 * 3.3e6 * 365
    summaries = 1e6 * 365 * 10
    day_gb = events_day * event_b / 1e9
    print(f"\nraw events: {events_day / 1e6:.1f} M a day × {event_b:.0f} B = {day_gb:.1f} GB a day")
    print(f"  kept 30 days: {events_day * event_b * 30 / 1e9:.0f} GB")
    print(
        f"alerts: {alerts_year / 1e6:.0f} M a year × {alert_b:.0f} B = {alerts_year * alert_b / 1e9:.0f} GB"
    )
    print(f"  kept 2 years: {2 * alerts_year * alert_b / 1e9:.0f} GB")
    print(f"health summaries, compacted: {summaries / 1e9:.2f} G rows in 10 years × {summary_b:.0f} B")
    print(f"  kept 10 years: {summaries * summary_b / 1e12:.2f} TB")
    print(f"raw_events_gb_per_day={day_gb:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
