"""The regional consumers reach the broker over TLS with their own client certificates, by configuration."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from linli.region.consumer import Consumer
from linli.region.schema import LATEST
from tests import postgres
from tests.homes import add_home
from tests.infrastructure import require_mosquitto
from tests.regional import uplink_config
from tests.test_region import region_config, settle_db
from tests.test_uplink_tls import make_pki, tls_broker

postgres_cluster = postgres.postgres_cluster
region_dsn = postgres.region_dsn


async def test_consumers_over_mutual_tls_store_what_a_gateway_sends(
    make_gateway, region_dsn, tmp_path
) -> None:
    require_mosquitto()
    # given a regional broker that speaks only TLS and requires a client certificate from the CA
    pki = make_pki(tmp_path / "pki")
    broker = tls_broker(tmp_path / "region-tls", pki)
    broker.start()
    config = region_config(region_dsn, broker.port)
    config["broker"]["tls"] = {
        "ca_file": pki["ca"],
        "cert_file": pki["consumer_cert"],
        "key_file": pki["consumer_key"],
    }
    # and a consumer configured like the others but without a certificate of its own
    stranger_config = region_config(region_dsn, broker.port)
    stranger_config["broker"]["tls"] = {"ca_file": pki["ca"]}
    stranger_config["broker"]["client_prefix"] = "stranger"
    consumers = [Consumer(config, 0), Consumer(config, 1), Consumer(stranger_config, 0)]
    tasks = [asyncio.create_task(c.run()) for c in consumers]
    conn = await asyncpg.connect(region_dsn)
    try:
        # when the two with certificates connect and a gateway (mutual TLS too) raises an alert
        for c in consumers[:2]:
            await asyncio.wait_for(c.connected.wait(), 10)
        gateway = await make_gateway(
            components=["linli.services.alerts:AlertEngine"],
            uplink=uplink_config(
                broker.port,
                tls={"ca_file": pki["ca"], "cert_file": pki["gateway_cert"], "key_file": pki["gateway_key"]},
            ),
        )
        await add_home(gateway)
        engine = gateway.components["alerts"]
        sos = await engine.async_raise(kind="sos", household_id="h1", title="SOS")
        await engine.async_acknowledge(sos.id, "warden")
        await gateway.components["uplink"].async_report_status()
        # then the events arrive in PostgreSQL through the TLS consumers
        await settle_db(conn, "SELECT count(*) FROM alerts WHERE state = 'acknowledged'", 1)
        await settle_db(conn, "SELECT count(*) FROM communities WHERE online AND status IS NOT NULL", 1)
        assert sum(c.applied for c in consumers[:2]) >= 3
        assert await conn.fetchval("SELECT max(version) FROM region_schema") == LATEST
        # and the consumer without a certificate was refused by the broker and took nothing
        assert not consumers[2].connected.is_set()
        assert consumers[2].received == 0
    finally:
        await conn.close()
        for task in tasks:
            task.cancel()
        for task, c in zip(tasks, consumers, strict=True):
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await c.async_close()
        broker.stop()
