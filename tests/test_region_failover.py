"""A node of the regional cluster dies: gateways and the dashboard carry on through the other two.

A real gateway lists the three nodes in `[uplink] servers`, the dashboard's
downlink lists them in `[broker] servers`; node 0, the one both are connected
to, is SIGKILLed. The gateway's next session goes to another node and what it
raises after the kill reaches PostgreSQL; an announcement composed after the
kill reaches the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time

import asyncpg
import pytest

from linli.region.broadcast import RegionLink, compose
from linli.region.cluster import kill_node
from linli.region.config import load_region_config
from linli.region.schema import migrate
from linli.wire.signing import Signer
from tests import postgres
from tests.homes import add_home
from tests.regional import REGION, uplink_config
from tests.test_region import settle_db
from tests.test_region_cluster import CONSUME, ROOT, free_block, linli, live_nats_servers

postgres_cluster = postgres.postgres_cluster
region_dsn = postgres.region_dsn
pytestmark = pytest.mark.slow


async def test_a_dead_node_costs_the_gateway_and_the_dashboard_one_reconnect_and_nothing_else(
    make_gateway, region_dsn, tmp_path
) -> None:
    signer = Signer.generate()
    folder = tmp_path / "cluster"
    base = free_block(12)
    mqtt = [base + 6 + i for i in range(3)]
    servers = ", ".join(f'"nats://127.0.0.1:{base + i}"' for i in range(3))
    listeners = ", ".join(f'"127.0.0.1:{port}"' for port in mqtt)
    config_file = tmp_path / "region.toml"
    config_file.write_text(
        f'[region]\nid = "{REGION}"\n[broker]\nengine = "jetstream"\nclient_prefix = "test-failover"\n'
        f"servers = [{listeners}]\n"
        f'[jetstream]\nservers = [{servers}]\ndurable = "test-region"\nack_wait_s = 5\n'
        f'[database]\ndsn = "{region_dsn}"\n[consumer]\nbatch = 50\nbatch_ms = 5\n'
    )
    consumer: subprocess.Popen[bytes] | None = None
    try:
        # given a three-node cluster (plain loopback: access rules are another test's)
        up = linli(
            "cluster", "up", "--dir", str(folder), "--config", str(config_file),
            "--port", str(base), "--cluster-port", str(base + 3),
            "--mqtt-port", str(base + 6), "--http-port", str(base + 9),
        )  # fmt: skip
        assert up.returncode == 0, up.stderr
        # (whose stores hold what gateways send: readable by the region's user alone)
        assert all((folder / f"node{i}").stat().st_mode & 0o077 == 0 for i in range(3))
        consumer = subprocess.Popen(
            [*CONSUME, "--config", str(config_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        # and a gateway and the dashboard's downlink, both knowing all three nodes, both on node 0
        gateway = await make_gateway(
            components=["linli.services.alerts:AlertEngine"],
            community={"id": "west"},
            uplink=uplink_config(
                mqtt[0], signer, mqtt_version="3.1.1", servers=[f"127.0.0.1:{p}" for p in mqtt]
            ),
        )
        uplink = gateway.components["uplink"]
        await uplink.relay.async_wait_connected(15)
        assert uplink.relay.stats()["server"] == f"127.0.0.1:{mqtt[0]}"
        await add_home(gateway)
        link = RegionLink(load_region_config(config_file, environ={}), signer)
        link_task = asyncio.create_task(link.run())
        conn = await asyncpg.connect(region_dsn)
        try:
            await migrate(conn, REGION)
            await asyncio.wait_for(link.connected.wait(), 15)
            alerts = gateway.components["alerts"]
            await alerts.async_raise(kind="sos", household_id="h1", title="SOS before", dedup_key="before")
            await settle_db(conn, "SELECT count(*) FROM alerts WHERE community = 'west'", 1, timeout=20)

            # when node 0 is SIGKILLed
            kill_node(folder, 0)
            assert len(live_nats_servers(folder)) == 2
            # and the gateway raises another SOS while it is gone
            await alerts.async_raise(kind="sos", household_id="h1", title="SOS after", dedup_key="after")

            # then the gateway's next session is on another node, and its SOS reaches PostgreSQL
            await settle_db(conn, "SELECT count(*) FROM alerts WHERE community = 'west'", 2, timeout=30)
            assert uplink.relay.stats()["server"] in {f"127.0.0.1:{p}" for p in mqtt[1:]}
            # and an announcement composed now reaches the gateway through another node too
            composing = time.monotonic()
            await compose(
                conn, link, kind="announcement", title="Lift", body="Lift 2 serviced at 10:00",
                targets=None, ttl_s=600, by="test",
            )  # fmt: skip
            async with asyncio.timeout(20):
                while uplink.announcements < 1:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            print(f"announcement reached the gateway {time.monotonic() - composing:.1f} s after compose")
        finally:
            link_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await link_task
            await conn.close()
    finally:
        if consumer is not None:
            consumer.terminate()
            consumer.wait(10)
        linli("cluster", "down", "--dir", str(folder), "--config", str(config_file))
