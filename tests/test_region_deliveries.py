"""The delivery ledger: duplicates and reorderings are counted as delivered, not as rows."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiomqtt
import asyncpg
import orjson
import pytest

from linli.region.consumer import Consumer
from linli.region.deliveries import Counts, Ledger, log_path, logs, replay
from linli.wire import topics
from tests import postgres, regional
from tests.regional import REGION

region_broker = regional.region_broker
postgres_cluster = postgres.postgres_cluster
region_dsn = postgres.region_dsn


def counts(**figures: int) -> Counts:
    return Counts(**figures)


# -- the ledger on its own --------------------------------------------------------------


def test_a_duplicate_and_a_late_message_are_told_apart() -> None:
    ledger = Ledger()
    # when gateway a delivers 1, 3, 3 again, then 2; and gateway b 1, 2 in order
    for gateway, seq in (("a", 1), ("a", 3), ("a", 3), ("a", 2), ("b", 1), ("b", 2)):
        ledger.record(gateway, seq, 0.0)
    ledger.absorbed([("a", 3)])
    # then a's second 3 is a duplicate (not also an inversion), 2 after 3 is an inversion
    assert ledger.gateways()["a"] == counts(deliveries=4, distinct=3, duplicates=1, absorbed=1, inversions=1)
    assert ledger.gateways()["b"] == counts(deliveries=2, distinct=2)
    assert ledger.counts() == counts(deliveries=6, distinct=5, duplicates=1, absorbed=1, inversions=1)


def test_a_redelivery_older_than_the_window_still_counts_as_a_duplicate() -> None:
    ledger = Ledger(window=10)
    for seq in range(1, 100):
        ledger.record("a", seq, 0.0)
    # the seen set was trimmed to the window, and a redelivery of seq 5 is still no new message
    assert ledger.record("a", 5, 0.0) is True
    assert ledger.counts() == counts(deliveries=100, distinct=99, duplicates=1)


def test_two_processes_logs_are_merged_by_arrival_time(tmp_path: Path) -> None:
    # given two consumers of one group, each logging its share of gateway a's messages
    first, second = Ledger(log_path(tmp_path, "c-0")), Ledger(log_path(tmp_path, "c-1"))
    first.record("a", 1, 1.0)
    second.record("a", 3, 2.0)
    first.record("a", 2, 3.0)  # after 3, in the other process: an inversion neither sees alone
    second.record("a", 1, 4.0)  # the first consumer's message delivered again to the second
    second.absorbed([("a", 1)])
    first.close()
    second.close()
    # alone, neither sees the duplicate, and neither sees 2 arrive after 3
    assert first.counts() == counts(deliveries=2, distinct=2)
    assert second.counts() == counts(deliveries=2, distinct=2, absorbed=1, inversions=1)  # 1 after 3
    # when the drill replays both logs
    region = replay(logs(tmp_path, "c-"))
    # then the region saw one duplicate (absorbed) and one inversion
    assert region.counts() == counts(deliveries=4, distinct=3, duplicates=1, absorbed=1, inversions=1)


def test_a_rotated_log_is_still_replayed_whole(tmp_path: Path) -> None:
    ledger = Ledger(log_path(tmp_path, "c-0"), rotate_bytes=64)
    for seq in (1, 2, 4, 3, 4):
        ledger.record("a", seq, float(seq))
    ledger.close()
    assert log_path(tmp_path, "c-0").with_suffix(".jsonl.1").exists()
    assert replay(logs(tmp_path)).counts() == counts(deliveries=5, distinct=4, duplicates=1, inversions=1)


# -- through a real broker, a real consumer and PostgreSQL --------------------------------------


def envelope(gateway: str, community: str, seq: int) -> bytes:
    return orjson.dumps(
        {
            "v": 1,
            "id": 1_000_000 + seq,
            "seq": seq,
            "kind": "rollup",
            "region": REGION,
            "community": community,
            "gateway": gateway,
            "ts": 1.8e9 + seq,
            "data": {"n": seq},
        }
    )


def consumer_config(dsn: str, port: int, data_dir: Path) -> dict[str, Any]:
    from linli.region.config import load_region_config

    return load_region_config(
        None,
        environ={},
        overrides={
            "region": {"id": REGION, "data_dir": str(data_dir)},
            "broker": {"port": port, "client_prefix": "test-ledger"},
            "database": {"dsn": dsn},
            "consumer": {"batch": 200, "batch_ms": 10},
        },
    )


@pytest.mark.slow
async def test_a_doubled_and_a_reordered_delivery_are_counted_and_stored_once(
    region_broker, region_dsn, tmp_path: Path
) -> None:
    # given a regional consumer, logging its deliveries in the region's data_dir
    consumer = Consumer(consumer_config(region_dsn, region_broker.port, tmp_path), 0)
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(consumer.connected.wait(), 10)
        # when gateway east publishes seq 2 before seq 1, and seq 1 twice (a redelivery);
        # and gateway west publishes 1, 2, 3 once each, in order
        sent = [("gw-east", "east", 2), ("gw-east", "east", 1), ("gw-east", "east", 1)]
        sent += [("gw-west", "west", 1), ("gw-west", "west", 2), ("gw-west", "west", 3)]
        async with aiomqtt.Client(
            "127.0.0.1", region_broker.port, identifier="test-gateways", protocol=aiomqtt.ProtocolVersion.V5
        ) as client:
            for gateway, community, seq in sent:
                await client.publish(
                    topics.up_topic(REGION, community, "rollup"), envelope(gateway, community, seq), qos=1
                )
        async with asyncio.timeout(15):
            while consumer.ledger.counts().deliveries < 6 or consumer.ledger.counts().absorbed < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        # then the ledger counts exactly one duplicate, absorbed, and one inversion, both east's
        assert consumer.ledger.gateways() == {
            "gw-east": counts(deliveries=3, distinct=2, duplicates=1, absorbed=1, inversions=1),
            "gw-west": counts(deliveries=3, distinct=3),
        }
        # and PostgreSQL has each message once
        conn = await asyncpg.connect(region_dsn)
        try:
            rows = await conn.fetch(
                "SELECT community, seq, count(*) AS n FROM events GROUP BY 1, 2 ORDER BY 1, 2"
            )
        finally:
            await conn.close()
        assert [tuple(r) for r in rows] == [
            ("east", 1, 1),
            ("east", 2, 1),
            ("west", 1, 1),
            ("west", 2, 1),
            ("west", 3, 1),
        ]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.async_close()
    # and the log a drill reads says the same
    assert replay(logs(tmp_path, "test-ledger")).counts() == counts(
        deliveries=6, distinct=5, duplicates=1, absorbed=1, inversions=1
    )
