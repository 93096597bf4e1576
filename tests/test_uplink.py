"""The uplink: a transactional outbox, relayed in order to the region, bounded while the link is down."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import orjson
import pytest
import sqlite_utils

from linli.gateway.uplink import outbox
from linli.gateway.uplink.outbox import Retention
from tests import regional
from tests.alerting import RecordingChannel
from tests.brokers import free_port, settle
from tests.homes import add_home
from tests.regional import listening, uplink_config

region_broker = regional.region_broker

ALERTS = ["linli.services.alerts:AlertEngine"]


def outbox_rows(path: Path) -> list[tuple[int, int, str, int, bytes]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT seq, id, kind, class, payload FROM uplink_outbox ORDER BY seq").fetchall()


def enqueue_many(
    kind: str, count: int, start: int = 0, retention: Retention = Retention.KEEP, key: str | None = None
):  # type: ignore[no-untyped-def]
    def write(db: sqlite_utils.Database) -> None:
        for n in range(start, start + count):
            outbox.enqueue(db, kind, {"n": n}, retention=retention, key=key)

    return write


async def test_alert_change_and_its_outbox_row_commit_together(make_gateway, tmp_path) -> None:
    # given a gateway whose region is unreachable, so nothing leaves the outbox
    gateway = await make_gateway(components=ALERTS, uplink=uplink_config(free_port()))
    await add_home(gateway)
    engine = gateway.components["alerts"]
    # when an SOS alert is raised and then acknowledged
    alert = await engine.async_raise(kind="sos", household_id="h1", title="SOS")
    await engine.async_acknowledge(alert.id, "warden")
    # then the outbox holds the alert's changes, with the transitions, in order
    rows = outbox_rows(gateway.store.path)
    alert_rows = [orjson.loads(r[4]) for r in rows if r[2] == "alert"]
    assert alert_rows[0]["alert"]["id"] == alert.id
    assert alert_rows[0]["transitions"] == ["raised", "notifying"]  # its first step, in the same commit
    assert alert_rows[-1]["transitions"] == ["acknowledged"]
    assert alert_rows[-1]["alert"]["state"] == "acknowledged"
    assert "detail" not in alert_rows[0]["alert"]  # free text stays in the community
    assert all(r[3] == Retention.KEEP for r in rows if r[2] == "alert")
    ids = [r[1] for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)  # sortable, unique

    # when a write that enqueued for the region fails before its commit
    def fails(db: sqlite_utils.Database) -> None:
        db.conn.execute("INSERT INTO alert_policies (household_id, kind, policy) VALUES ('h1', 'x', '{}')")
        outbox.enqueue(db, "alert", {"never": True})
        raise RuntimeError("disk full")

    before = len(outbox_rows(gateway.store.path))
    with pytest.raises(RuntimeError):
        await gateway.store.async_write(fails)
    # then neither the change nor its outbox row exists
    assert len(outbox_rows(gateway.store.path)) == before
    with sqlite3.connect(gateway.store.path) as conn:
        assert conn.execute("SELECT count(*) FROM alert_policies WHERE kind = 'x'").fetchone()[0] == 0


async def test_without_uplink_no_outbox_is_kept(make_gateway) -> None:
    gateway = await make_gateway(components=ALERTS)
    await add_home(gateway)
    await gateway.components["alerts"].async_raise(kind="sos", household_id="h1", title="SOS")
    # the outbox's table is the uplink's own: a gateway without the uplink does not even have it
    with sqlite3.connect(gateway.store.path) as conn:
        assert not conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'uplink%'").fetchall()


@pytest.mark.slow
async def test_relay_delivers_in_order_and_only_a_puback_clears_a_row(make_gateway, region_broker) -> None:
    # given a gateway connected to the regional broker, and the region listening
    async with listening(region_broker.port) as region:
        gateway = await make_gateway(uplink=uplink_config(region_broker.port))
        uplink = gateway.components["uplink"]
        await uplink.relay.async_wait_connected(10)
        # when 300 events are committed in three transactions
        for start in (0, 100, 200):
            await gateway.store.async_write(enqueue_many("test", 100, start))
        # then the region receives all of them, in order, and the outbox empties
        await settle(lambda: len(region.of_kind("test")) >= 300, timeout=15)
        assert [e.data["n"] for e in region.of_kind("test")] == list(range(300))
        seqs = [e.seq for e in region.envelopes]
        assert seqs == sorted(seqs)
        assert {e.community for e in region.envelopes} == {"community"}
        await settle(lambda: not outbox_rows(gateway.store.path), timeout=5)

        # when the broker stops answering (frozen: the publishes go out, no PUBACK comes back)
        region_broker.process.send_signal(signal.SIGSTOP)
        try:
            published = uplink.relay.published
            await gateway.store.async_write(enqueue_many("test", 20, 300))
            await settle(lambda: uplink.relay.published >= published + 20, timeout=5)
            # then the rows stay in the outbox
            await asyncio.sleep(0.5)
            assert len(outbox_rows(gateway.store.path)) == 20
        finally:
            region_broker.process.send_signal(signal.SIGCONT)
        # and leave it once the broker acknowledges them
        await settle(lambda: not outbox_rows(gateway.store.path), timeout=10)
        await settle(lambda: len(region.of_kind("test")) >= 320, timeout=10)
        assert [e.data["n"] for e in region.of_kind("test")] == list(range(320))


async def test_the_relay_fails_over_to_the_next_node_of_the_region_and_resumes_in_order(
    make_gateway, region_broker, tmp_path
) -> None:
    # given a region of two nodes, and a gateway that knows both (`[uplink] servers`)
    other = regional.persistent_mosquitto(tmp_path / "second-node")
    other.start()
    servers = [f"127.0.0.1:{region_broker.port}", f"127.0.0.1:{other.port}"]
    try:
        async with listening(other.port, "node-b") as node_b:
            gateway = await make_gateway(uplink=uplink_config(region_broker.port, servers=servers))
            relay = gateway.components["uplink"].relay
            await relay.async_wait_connected(10)
            # when 50 events go up to the first node
            async with listening(region_broker.port, "node-a") as node_a:
                await gateway.store.async_write(enqueue_many("test", 50, 0))
                await settle(lambda: len(node_a.of_kind("test")) >= 50, timeout=10)
            at_a = {e.data["n"] for e in node_a.of_kind("test")}
            assert relay.stats()["server"] == servers[0]
            # and then the first node dies, and 50 more are committed
            region_broker.process.send_signal(signal.SIGKILL)
            region_broker.process.wait()
            await gateway.store.async_write(enqueue_many("test", 50, 50))
            # then the relay's next session is on the second node, and the rest arrive there in order
            await settle(lambda: len(node_b.of_kind("test")) >= 50, timeout=15)
            assert relay.stats()["server"] == servers[1]
            assert [e.data["n"] for e in node_b.of_kind("test")][-50:] == list(range(50, 100))
            # and nothing was skipped between the two nodes: every event is at one of them
            assert at_a | {e.data["n"] for e in node_b.of_kind("test")} == set(range(100))
            await settle(lambda: not outbox_rows(gateway.store.path), timeout=5)
    finally:
        other.stop()


@pytest.mark.slow
async def test_link_down_outbox_stays_bounded_keeps_alerts_and_drains_in_order(
    make_gateway, region_broker, tmp_path
) -> None:
    # given the region's listener has a persistent session, and a gateway with a small outbox bound
    async with listening(region_broker.port):
        pass
    gateway = await make_gateway(
        components=ALERTS,
        uplink=uplink_config(region_broker.port, outbox={"max_rows": 100, "check_s": 3600}),
    )
    uplink = gateway.components["uplink"]
    await uplink.relay.async_wait_connected(10)
    await add_home(gateway)
    screen = RecordingChannel()
    gateway.notifier.register(screen)
    engine = gateway.components["alerts"]
    # when the regional broker goes down
    region_broker.stop()
    await settle(lambda: not uplink.relay.connected, timeout=5)
    # and alarms are raised while 400 rollups and 50 status snapshots pile up
    alerts = [
        await engine.async_raise(kind="sos", household_id="h1", title=f"SOS {n}", dedup_key=f"sos-{n}")
        for n in range(12)
    ]
    await gateway.store.async_write(enqueue_many("rollup", 400, retention=Retention.ROLLUP))
    await gateway.store.async_write(enqueue_many("status", 50, retention=Retention.ROLLUP, key="status"))
    # then residents notice nothing: every alarm reached their screens
    await settle(lambda: {a for a, _, _ in screen.received} >= {a.id for a in alerts}, timeout=10)
    await settle(
        # each alert's raise with its first step, then the step's delivery outcomes
        lambda: len([r for r in outbox_rows(gateway.store.path) if r[2] == "alert"]) >= 24,
        timeout=10,
    )
    keep_before = [r[1] for r in outbox_rows(gateway.store.path) if r[3] == Retention.KEEP]
    # and the outbox is brought within its bound, rollups first, alerts never
    report = await uplink.async_prune()
    rows = outbox_rows(gateway.store.path)
    assert len(rows) <= 100
    assert [r[1] for r in rows if r[3] == Retention.KEEP] == keep_before
    assert len([r for r in rows if r[2] == "status"]) == 1  # superseded snapshots thinned to the newest
    assert report.thinned >= 49 and report.dropped.get("rollup", 0) > 0

    # when the broker returns, the outbox drains, in order
    region_broker.start()
    await uplink.relay.async_wait_connected(15)
    await settle(lambda: not outbox_rows(gateway.store.path), timeout=15)
    async with listening(region_broker.port) as region:
        await settle(lambda: len(region.of_kind("alert")) >= len(keep_before), timeout=10)
        seqs = [e.seq for e in region.envelopes]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        raised = {e.data["alert"]["id"] for e in region.of_kind("alert") if "raised" in e.data["transitions"]}
        assert raised == {a.id for a in alerts}


@pytest.mark.slow
async def test_gateway_stopped_between_commit_and_puback_loses_nothing(
    make_gateway, region_broker, tmp_path
) -> None:
    # given a gateway whose broker has stopped answering
    async with listening(region_broker.port) as region:
        data_dir = tmp_path / "gw"
        gateway = await make_gateway(data_dir=data_dir, uplink=uplink_config(region_broker.port))
        uplink = gateway.components["uplink"]
        await uplink.relay.async_wait_connected(10)
        # The reports made on connect went up (waiting for an empty outbox alone raced them: on a
        # loaded machine they were written after the check, published into the stopped broker,
        # and their missing PUBACKs held back the events below).
        await settle(lambda: region.of_kind("status") and region.of_kind("device_health"), timeout=10)
        await settle(lambda: not outbox_rows(data_dir / "linli.db"), timeout=5)
        region_broker.process.send_signal(signal.SIGSTOP)
        try:
            # when events are committed and published, and the gateway goes away before any PUBACK
            published = uplink.relay.published
            await gateway.store.async_write(enqueue_many("test", 10))
            await settle(lambda: uplink.relay.published >= published + 10, timeout=5)
            await gateway.async_stop()
        finally:
            region_broker.process.send_signal(signal.SIGCONT)
        assert len([r for r in outbox_rows(data_dir / "linli.db") if r[2] == "test"]) == 10
        # then the restarted gateway sends them again: every event arrives, at most twice
        gateway = await make_gateway(data_dir=data_dir, uplink=uplink_config(region_broker.port))
        await settle(lambda: not outbox_rows(data_dir / "linli.db"), timeout=10)
        await settle(lambda: {e.data["n"] for e in region.of_kind("test")} == set(range(10)), timeout=10)
        ids = [e.id for e in region.of_kind("test")]
        assert len(ids) <= 20 and len(set(ids)) == 10


async def test_a_puback_with_no_subscriber_in_the_region_is_not_a_delivery(
    make_gateway, region_broker
) -> None:
    # given a regional broker on which no consumer is subscribed (as right after it restarted)
    gateway = await make_gateway(uplink=uplink_config(region_broker.port, reconnect_max_s=0.3))
    uplink = gateway.components["uplink"]
    await uplink.relay.async_wait_connected(10)
    # when events are published and the broker answers "no matching subscribers"
    await gateway.store.async_write(enqueue_many("test", 5))
    await settle(lambda: uplink.relay.unrouted >= 1, timeout=5)
    # then they stay in the outbox
    assert len([r for r in outbox_rows(gateway.store.path) if r[2] == "test"]) == 5
    # and reach the region, in order, once a consumer subscribes
    async with listening(region_broker.port) as region:
        await settle(lambda: len(region.of_kind("test")) >= 5, timeout=10)
        assert [e.data["n"] for e in region.of_kind("test")] == list(range(5))
    await settle(lambda: not outbox_rows(gateway.store.path), timeout=5)
