"""Applying a batch of upward messages to PostgreSQL: idempotent, order-insensitive.

One transaction per batch:

1. every envelope is inserted into `events` keyed by (region, community, id)
   (and `at`, the time in the id, which the table is partitioned by: linli/region/schema.py)
   with ON CONFLICT DO NOTHING; only the rows that were new go further, so a
   redelivered event changes nothing at all;
2. the new events update the derived tables — alerts, community status and
   device health, announcement receipts, consented health summaries — each
   guarded by the gateway's `seq`, so the newest snapshot wins whatever order
   two consumers commit in (a shared subscription spreads one community's
   messages over the consumers).

Health summaries are kept only while the household consents: a
`health_withdrawn` event deletes the household's summaries (and their raw
events) and bars any older one (by `seq`) that still arrives — a redelivery,
or another consumer's batch — from being stored again; summaries sent after a
new consent (higher `seq`) are.

Presence (`online`/`offline`, retained birth and last will) carries no event
id; it is applied by its connection's timestamp, newest wins, and `offline`
wins a tie (the will of the same connection as the birth).

Two consumers commit concurrently, so every statement takes its row locks in
key order and the tables in one order (events, communities, alerts, receipts,
then each household's health rows behind a lock on the household), with one
statement per table: no two transactions can wait on each other in a cycle.
A deadlock PostgreSQL still reports is retried by the consumer.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg
import orjson

from linli.wire.messages import (
    ALERT,
    DEVICE_HEALTH,
    HEALTH_SUMMARY,
    HEALTH_WITHDRAWN,
    RECEIPT,
    STATUS,
    Envelope,
    Presence,
)

_INSERT_EVENTS: Final = """
    INSERT INTO events (region, community, id, at, seq, kind, gateway_ts, data)
    SELECT r, c, i, to_timestamp((i >> 22) / 1000.0), s, k, t, d::jsonb
    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::float8[], $7::text[])
         AS u(r, c, i, s, k, t, d)
    ORDER BY r, c, i
    ON CONFLICT DO NOTHING
    RETURNING region, community, id
"""

# Status, device health and presence of each community in one statement (one row lock each).
_UPSERT_COMMUNITIES: Final = """
    INSERT INTO communities AS cm (region, community, gateway, name, clock_offset_s, status, status_seq,
                                   device_health, device_health_seq, online, presence_ts, last_seen)
    SELECT r, c, g, st::jsonb->>'name', coalesce((st::jsonb->>'clock_offset_s')::float8, 0), st::jsonb, ss,
           dh::jsonb, hs, coalesce(onl, false), pts, now()
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[],
                $8::bool[], $9::float8[]) AS u(r, c, g, st, ss, dh, hs, onl, pts)
    ORDER BY r, c
    ON CONFLICT (region, community) DO UPDATE SET
        gateway = excluded.gateway,
        status = CASE WHEN excluded.status_seq > cm.status_seq THEN excluded.status ELSE cm.status END,
        name = CASE WHEN excluded.status_seq > cm.status_seq THEN excluded.name ELSE cm.name END,
        clock_offset_s = CASE WHEN excluded.status_seq > cm.status_seq
                              THEN excluded.clock_offset_s ELSE cm.clock_offset_s END,
        status_seq = greatest(cm.status_seq, excluded.status_seq),
        device_health = CASE WHEN excluded.device_health_seq > cm.device_health_seq
                             THEN excluded.device_health ELSE cm.device_health END,
        device_health_seq = greatest(cm.device_health_seq, excluded.device_health_seq),
        online = CASE WHEN excluded.presence_ts > cm.presence_ts
                        OR (excluded.presence_ts = cm.presence_ts AND excluded.presence_ts > 0
                            AND NOT excluded.online)
                      THEN excluded.online ELSE cm.online END,
        presence_ts = greatest(cm.presence_ts, excluded.presence_ts),
        last_seen = now()
    WHERE excluded.status_seq > cm.status_seq
       OR excluded.device_health_seq > cm.device_health_seq
       OR excluded.presence_ts > cm.presence_ts
       OR (excluded.presence_ts = cm.presence_ts AND excluded.presence_ts > 0
           AND NOT excluded.online AND cm.online)
"""

_UPSERT_ALERTS: Final = """
    INSERT INTO alerts AS a (region, community, alert_id, raised, household, kind, severity, state, title,
                             count, step, raised_at, acknowledged_at, resolved_at, clock_offset_s, last_seq)
    SELECT u.r, u.c, u.i, to_timestamp((u.i >> 22) / 1000.0), u.h, u.k, u.sev, u.st, u.ti, u.n, u.step,
           u.ra, u.ack, u.res,
           coalesce(cm.clock_offset_s, 0), u.seq
    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
                $8::text[], $9::int[], $10::int[], $11::float8[], $12::float8[], $13::float8[], $14::bigint[])
         AS u(r, c, i, h, k, sev, st, ti, n, step, ra, ack, res, seq)
    LEFT JOIN communities cm ON cm.region = u.r AND cm.community = u.c
    ORDER BY u.r, u.c, u.i
    ON CONFLICT (region, community, alert_id, raised) DO UPDATE SET
        state = excluded.state, severity = excluded.severity, title = excluded.title,
        count = excluded.count, step = excluded.step, acknowledged_at = excluded.acknowledged_at,
        resolved_at = excluded.resolved_at, last_seq = excluded.last_seq, updated = now()
    WHERE a.last_seq < excluded.last_seq
"""

_UPSERT_RECEIPTS: Final = """
    INSERT INTO announcement_receipts AS rc (announcement_id, region, community, state, tvs_shown, tvs_total)
    SELECT a, r, c, st, sh, tt
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[])
         AS u(a, r, c, st, sh, tt)
    ORDER BY a, r, c
    ON CONFLICT (announcement_id, region, community) DO UPDATE SET
        state = CASE WHEN rc.state = 'shown' OR excluded.state = 'shown' THEN 'shown' ELSE excluded.state END,
        tvs_shown = greatest(rc.tvs_shown, excluded.tvs_shown),
        tvs_total = greatest(rc.tvs_total, excluded.tvs_total),
        received = now()
"""

# Summaries and withdrawals of one household are applied one transaction at a time, so that
# a withdrawal and an older summary committed by two consumers at once cannot both win.
_LOCK_HOUSEHOLDS: Final = """
    SELECT count(pg_advisory_xact_lock(1279870540, k))
    FROM (SELECT DISTINCT hashtext(r || '/' || c || '/' || h) AS k
          FROM unnest($1::text[], $2::text[], $3::text[]) AS u(r, c, h) ORDER BY k) AS keys
"""

_UPSERT_WITHDRAWALS: Final = """
    INSERT INTO health_withdrawals AS w (region, community, household, seq)
    SELECT r, c, h, s FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(r, c, h, s)
    ORDER BY r, c, h
    ON CONFLICT (region, community, household) DO UPDATE SET seq = excluded.seq, received = now()
    WHERE w.seq < excluded.seq
"""

_FORGET_WITHDRAWN: Final = """
    DELETE FROM health_summaries hs USING health_withdrawals w,
         unnest($1::text[], $2::text[], $3::text[]) AS u(r, c, h)
    WHERE hs.region = u.r AND hs.community = u.c AND hs.household = u.h
      AND w.region = u.r AND w.community = u.c AND w.household = u.h AND hs.seq < w.seq
"""

# The raw events go too: the region keeps nothing of a household's health after a withdrawal.
_FORGET_WITHDRAWN_EVENTS: Final = """
    DELETE FROM events e USING unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(r, c, h, s)
    WHERE e.region = u.r AND e.community = u.c AND e.kind = 'health_summary'
      AND e.data->>'household_id' = u.h AND e.seq < u.s
"""

_DROP_BARRED_EVENTS: Final = """
    DELETE FROM events e
    USING unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS u(r, c, h, i, s),
          health_withdrawals w
    WHERE e.region = u.r AND e.community = u.c AND e.id = u.i
      AND w.region = u.r AND w.community = u.c AND w.household = u.h AND w.seq > u.s
"""

_UPSERT_HEALTH: Final = """
    INSERT INTO health_summaries AS hs (region, community, household, resident, day, vitals, readings,
                                        seq, event_id)
    SELECT u.r, u.c, u.h, u.p, u.d, u.v::jsonb, u.n, u.s, u.i
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::date[], $6::text[], $7::int[],
                $8::bigint[], $9::bigint[]) AS u(r, c, h, p, d, v, n, s, i)
    LEFT JOIN health_withdrawals w ON w.region = u.r AND w.community = u.c AND w.household = u.h
    WHERE w.seq IS NULL OR w.seq < u.s
    ORDER BY u.r, u.c, u.h, u.p, u.d
    ON CONFLICT (region, community, household, resident, day) DO UPDATE SET
        vitals = excluded.vitals, readings = excluded.readings, seq = excluded.seq,
        event_id = excluded.event_id, updated = now()
    WHERE hs.seq < excluded.seq
"""


@dataclass(slots=True)
class BatchResult:
    new: int = 0
    duplicates: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    #: The deliveries that changed no row (a redelivery, or a second copy within the batch).
    absorbed: list[Envelope] = field(default_factory=list)


def _newest(envelopes: list[Envelope], key: Any) -> dict[Any, Envelope]:
    """One envelope per key, the highest seq (ON CONFLICT may touch a row once per statement)."""
    best: dict[Any, Envelope] = {}
    for env in envelopes:
        k = key(env)
        if k not in best or best[k].seq < env.seq:
            best[k] = env
    return best


async def apply_batch(
    conn: asyncpg.Connection, envelopes: list[Envelope], presence: list[Presence] | None = None
) -> BatchResult:
    """Apply one batch in one transaction (the caller acknowledges the messages after it returns)."""
    result = BatchResult()
    # A message redelivered inside one batch is one row.
    unique = list({(e.region, e.community, e.id): e for e in envelopes}.values())
    async with conn.transaction():
        fresh: list[Envelope] = []
        if unique:
            inserted = await conn.fetch(
                _INSERT_EVENTS,
                [e.region for e in unique],
                [e.community for e in unique],
                [e.id for e in unique],
                [e.seq for e in unique],
                [e.kind for e in unique],
                [e.ts for e in unique],
                [orjson.dumps(e.data).decode() for e in unique],
            )
            fresh_keys = {(r["region"], r["community"], r["id"]) for r in inserted}
            fresh = [e for e in unique if (e.region, e.community, e.id) in fresh_keys]
        result.new = len(fresh)
        result.duplicates = len(envelopes) - len(fresh)
        first = {(e.region, e.community, e.id) for e in fresh}
        for env in envelopes:  # one copy of each new row applied; every other copy was absorbed
            key = (env.region, env.community, env.id)
            if key in first:
                first.discard(key)
            else:
                result.absorbed.append(env)
        for env in fresh:
            result.by_kind[env.kind] = result.by_kind.get(env.kind, 0) + 1
        await _apply_communities(conn, fresh, presence or [])
        await _apply_alerts(conn, fresh)
        await _apply_receipts(conn, fresh)
        await _apply_health(conn, fresh)
    return result


async def _apply_communities(
    conn: asyncpg.Connection, fresh: list[Envelope], presence: list[Presence]
) -> None:
    def where(e: Envelope) -> tuple[str, str]:
        return (e.region, e.community)

    status = _newest([e for e in fresh if e.kind == STATUS], where)
    health = _newest([e for e in fresh if e.kind == DEVICE_HEALTH], where)
    seen: dict[tuple[str, str], Presence] = {}
    for p in presence:
        key = (p.region, p.community)
        old = seen.get(key)
        if old is None or (p.ts, not p.online) > (old.ts, not old.online):
            seen[key] = p
    keys = sorted({*status, *health, *seen})
    if not keys:
        return
    rows = []
    for key in keys:
        st, dh, pr = status.get(key), health.get(key), seen.get(key)
        source = st or dh
        gateway = source.gateway if source is not None else (pr.gateway if pr is not None else "")
        rows.append(
            (
                key[0],
                key[1],
                gateway,
                orjson.dumps(st.data).decode() if st else None,
                st.seq if st else 0,
                orjson.dumps(dh.data).decode() if dh else None,
                dh.seq if dh else 0,
                pr.online if pr else None,
                pr.ts if pr else 0.0,
            )
        )
    await conn.execute(_UPSERT_COMMUNITIES, *(list(column) for column in zip(*rows, strict=True)))


async def _apply_alerts(conn: asyncpg.Connection, fresh: list[Envelope]) -> None:
    candidates = [
        e
        for e in fresh
        if e.kind == ALERT
        and isinstance(e.data.get("alert"), dict)
        and isinstance(e.data["alert"].get("id"), int)
    ]
    newest = _newest(candidates, lambda e: (e.region, e.community, e.data["alert"]["id"]))
    alerts = [newest[k] for k in sorted(newest)]
    if not alerts:
        return
    snap = [e.data["alert"] for e in alerts]
    await conn.execute(
        _UPSERT_ALERTS,
        [e.region for e in alerts],
        [e.community for e in alerts],
        [a["id"] for a in snap],
        [a.get("household_id") for a in snap],
        [str(a.get("kind")) for a in snap],
        [str(a.get("severity")) for a in snap],
        [str(a.get("state")) for a in snap],
        [a.get("title") for a in snap],
        [int(a.get("count") or 1) for a in snap],
        [a.get("step") for a in snap],
        [float(a.get("raised_at") or 0) for a in snap],
        [a.get("acknowledged_at") for a in snap],
        [a.get("resolved_at") for a in snap],
        [e.seq for e in alerts],
    )


async def _apply_receipts(conn: asyncpg.Connection, fresh: list[Envelope]) -> None:
    receipts = [e for e in fresh if e.kind == RECEIPT and isinstance(e.data.get("announcement_id"), str)]
    if not receipts:
        return
    folded: dict[tuple[str, str, str], tuple[str, int, int]] = {}
    for e in receipts:
        key = (e.data["announcement_id"], e.region, e.community)
        state = str(e.data.get("state", "received"))
        shown, total = int(e.data.get("tvs_shown") or 0), int(e.data.get("tvs_total") or 0)
        if key in folded:
            old = folded[key]
            state = "shown" if "shown" in (state, old[0]) else state
            shown, total = max(shown, old[1]), max(total, old[2])
        folded[key] = (state, shown, total)
    keys = sorted(folded)
    await conn.execute(
        _UPSERT_RECEIPTS,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [folded[k][0] for k in keys],
        [folded[k][1] for k in keys],
        [folded[k][2] for k in keys],
    )


def _summary_key(e: Envelope) -> tuple[str, str, str, str, datetime.date] | None:
    """(region, community, household, resident, day) of a well-formed summary, else None."""
    d = e.data
    household, resident, day = d.get("household_id"), d.get("resident_id"), d.get("day")
    if not isinstance(household, str) or not isinstance(d.get("vitals"), dict) or not isinstance(day, str):
        return None
    if resident is not None and not isinstance(resident, str):
        return None
    try:
        parsed = datetime.date.fromisoformat(day)
    except ValueError:
        return None
    return (e.region, e.community, household, resident or "", parsed)


async def _apply_health(conn: asyncpg.Connection, fresh: list[Envelope]) -> None:
    withdrawn = _newest(
        [e for e in fresh if e.kind == HEALTH_WITHDRAWN and isinstance(e.data.get("household_id"), str)],
        lambda e: (e.region, e.community, e.data["household_id"]),
    )
    keyed = [(k, e) for e in fresh if e.kind == HEALTH_SUMMARY and (k := _summary_key(e)) is not None]
    summaries: dict[tuple[str, str, str, str, datetime.date], Envelope] = {}
    for key, env in keyed:
        if key not in summaries or summaries[key].seq < env.seq:
            summaries[key] = env
    households = sorted({*withdrawn, *((k[0], k[1], k[2]) for k in summaries)})
    if not households:
        return
    await conn.fetchval(_LOCK_HOUSEHOLDS, *(list(column) for column in zip(*households, strict=True)))
    if withdrawn:
        keys = sorted(withdrawn)
        columns = [list(column) for column in zip(*keys, strict=True)]
        seqs = [withdrawn[k].seq for k in keys]
        await conn.execute(_UPSERT_WITHDRAWALS, *columns, seqs)
        await conn.execute(_FORGET_WITHDRAWN, *columns)
        await conn.execute(_FORGET_WITHDRAWN_EVENTS, *columns, seqs)
    if summaries:
        keys = sorted(summaries)
        envs = [summaries[k] for k in keys]
        await conn.execute(
            _UPSERT_HEALTH,
            *(list(column) for column in zip(*keys, strict=True)),
            [orjson.dumps(e.data["vitals"]).decode() for e in envs],
            [int(e.data.get("readings") or 0) for e in envs],
            [e.seq for e in envs],
            [e.id for e in envs],
        )
        # A summary older than its household's withdrawal (late, or redelivered) is not kept at all.
        late = [(k, e) for k, e in keyed]
        await conn.execute(
            _DROP_BARRED_EVENTS,
            [k[0] for k, _ in late],
            [k[1] for k, _ in late],
            [k[2] for k, _ in late],
            [e.id for _, e in late],
            [e.seq for _, e in late],
        )
