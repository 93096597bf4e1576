"""The regional tier on a three-node NATS JetStream cluster started by one command.

`linli region cluster up` starts three nats-servers (routes, JetStream, an MQTT
listener each, over mutual TLS here) and makes the uplink stream with three
replicas; a simulated gateway publishes MQTT 3.1.1 QoS 1 to one node; two real
`linli region consume` processes share one durable pull consumer and write
PostgreSQL by idempotent upsert; `cluster down` leaves no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import asyncpg
import pytest

from linli.region.broadcast import RegionLink, compose
from linli.region.config import load_region_config
from linli.region.jetstream import consumer_filters, subject_of, topic_of
from linli.region.schema import migrate
from linli.wire import messages, topics
from linli.wire.signing import Signer
from tests import postgres
from tests.brokers import free_block, refused_at_tls
from tests.homes import add_home
from tests.regional import REGION, uplink_config
from tests.test_region import settle_db
from tests.test_uplink_tls import make_pki

postgres_cluster = postgres.postgres_cluster
region_dsn = postgres.region_dsn
ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
CONSUME = [sys.executable, "-m", "linli", "region", "consume"]


@dataclass
class Row:
    """An outbox row, as the gateway's outbox hands it to linli.wire.messages.encode."""

    id: int
    seq: int
    kind: str
    ts: float
    payload: bytes


def linli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "linli", "region", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def live_nats_servers(folder: Path) -> list[int]:
    """nats-server processes of this cluster that still run (zombies awaiting their reaper do not)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            state = next(x for x in (proc / "status").read_text().splitlines() if x.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if "nats-server" in cmdline and str(folder) in cmdline and "Z" not in state.split()[1]:
            found.append(int(proc.name))
    return found


def test_topics_map_to_the_subjects_nats_server_stores_qos1_publishes_under() -> None:
    topic = topics.up_topic(REGION, "east", "alert")
    assert subject_of(topic) == f"$MQTT.msgs.linli.v1.{REGION}.east.up.alert"
    assert topic_of(subject_of(topic)) == topic
    config = {"region": {"id": REGION}, "jetstream": {"durable": "r"}}
    assert consumer_filters(config) == {
        "r": f"$MQTT.msgs.linli.v1.{REGION}.*.up.>",
        "r-presence": f"$MQTT.msgs.linli.v1.{REGION}.*.presence",
    }


async def test_a_gateway_on_one_node_reaches_postgresql_through_the_clusters_consumer_group(
    make_gateway, region_dsn, tmp_path
) -> None:
    if shutil.which("nats-server") is None and not os.path.exists("/usr/sbin/nats-server"):  # noqa: ASYNC240
        if os.environ.get("CI"):
            pytest.fail("nats-server is missing (apt-get install nats-server; .ci/run does)")
        pytest.skip("nats-server is not installed")
    pki = make_pki(tmp_path / "pki", {"west": "linli-gw-west"})
    signer = Signer.generate()
    folder = tmp_path / "cluster"
    base = free_block(12)
    config_file = tmp_path / "region.toml"
    servers = ", ".join(f'"nats://127.0.0.1:{base + i}"' for i in range(3))
    config_file.write_text(
        f'[region]\nid = "{REGION}"\n[broker]\nengine = "jetstream"\nclient_prefix = "test-js"\n'
        f'[jetstream]\nservers = [{servers}]\ndurable = "test-region"\nack_wait_s = 5\n'
        f'user = "linli-region"\npassword_file = "{folder.resolve()}/region-nats.secret"\n'
        f'[database]\ndsn = "{region_dsn}"\n[consumer]\nbatch = 50\nbatch_ms = 5\n'
    )
    consumers: list[subprocess.Popen[bytes]] = []
    try:
        # given the cluster started by one command, MQTT over mutual TLS with the region's CA
        up = linli(
            "cluster", "up", "--dir", str(folder), "--config", str(config_file),
            "--port", str(base), "--cluster-port", str(base + 3),
            "--mqtt-port", str(base + 6), "--http-port", str(base + 9),
            "--tls-cert", pki["server_cert"], "--tls-key", pki["server_key"], "--tls-ca", pki["ca"],
        )  # fmt: skip
        assert up.returncode == 0, up.stderr
        assert "(3 replicas)" in up.stdout
        # (and says which region's topics its consumers take: a gateway of another region is not kept)
        assert f"region {REGION!r} (from {config_file})" in up.stdout
        assert topics.region_up_filters(REGION)[0] in up.stdout
        # (and, since the config names the NATS ports but not the MQTT ones, which lines it lacks)
        assert "[jetstream]\nservers" not in up.stdout
        mqtt_servers = ", ".join(f'"127.0.0.1:{base + 6 + i}"' for i in range(3))
        assert f"[broker]\nservers = [{mqtt_servers}]" in up.stdout
        # and each community's gateway certificate, and the dashboard's, allowed in (access rules)
        where = ["--dir", str(folder), "--config", str(config_file)]
        for who, subject in (("east", "linli-up-community"), ("west", "linli-gw-west")):
            allowed = linli("cluster", "allow", who, "--subject", f"CN={subject}", *where)
            assert allowed.returncode == 0, allowed.stderr
        allowed = linli("cluster", "allow", "--dashboard", "--subject", "CN=linli-region-consumer", *where)
        assert allowed.returncode == 0, allowed.stderr
        status = linli("cluster", "status", "--dir", str(folder), "--config", str(config_file))
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("running") == 3
        assert f"consumer test-region ({topics.region_up_filters(REGION)[0]}): 0 waiting" in status.stdout
        # and two consumer processes sharing the durable consumer
        for index in (0, 1):
            consumers.append(
                subprocess.Popen(
                    [*CONSUME, "--config", str(config_file), "--index", str(index)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                )
            )
        # when a gateway (its client certificate from the CA) publishes 40 events to node 1, one twice
        context = ssl.create_default_context(cafile=pki["ca"])
        context.load_cert_chain(pki["gateway_cert"], pki["gateway_key"])
        rows = [
            Row(5000 + n, n, "rollup", 1.8e9 + n, json.dumps({"n": n, "telemetry_rows": n}).encode())
            for n in range(1, 41)
        ]
        async with aiomqtt.Client(
            "127.0.0.1",
            base + 7,
            identifier="gw-east",
            protocol=aiomqtt.ProtocolVersion.V311,
            clean_session=False,
            tls_context=context,
            timeout=10,
        ) as gateway:
            for row in [*rows, rows[7]]:
                payload = messages.encode(row, region=REGION, community="east", gateway="gw-east")
                await gateway.publish(topics.up_topic(REGION, "east", row.kind), payload, qos=1)
            presence = messages.encode_presence(messages.ONLINE, gateway="gw-east", ts=1.8e9)
            await gateway.publish(topics.presence_topic(REGION, "east"), presence, qos=1, retain=True)
        # and a real gateway, its uplink speaking MQTT 3.1.1 (mutual TLS), raises an SOS through node 2
        gateway = await make_gateway(
            components=["linli.services.alerts:AlertEngine"],
            community={"id": "west"},
            uplink=uplink_config(
                base + 8,
                signer,
                mqtt_version="3.1.1",
                tls={"ca_file": pki["ca"], "cert_file": pki["west_cert"], "key_file": pki["west_key"]},
            ),
        )
        await add_home(gateway)
        await gateway.components["alerts"].async_raise(kind="sos", household_id="h1", title="SOS")
        # then every event is in PostgreSQL once, and the presence too
        conn = await asyncpg.connect(region_dsn)
        try:
            await migrate(conn, REGION)  # the consumers do it too: here so the query below has its table
            try:
                await settle_db(conn, "SELECT count(*) FROM events WHERE community = 'east'", 40, timeout=30)
            except TimeoutError:
                for process in consumers:
                    process.terminate()
                raise AssertionError(
                    "consumers: "
                    + " | ".join(p.communicate(timeout=10)[1].decode()[-1500:] for p in consumers)
                ) from None
            await settle_db(conn, "SELECT count(*) FROM communities WHERE community = 'east' AND online", 1)
            assert await conn.fetchval("SELECT count(DISTINCT id) FROM events WHERE community = 'east'") == 40
            # and the real gateway's alert too
            await settle_db(conn, "SELECT count(*) FROM alerts WHERE state = 'raised'", 1)
            # and the region's signed downlink, published to node 0, reaches the gateway on node 2
            link_config = load_region_config(
                config_file,
                environ={},
                overrides={
                    "broker": {
                        "port": base + 6,
                        "tls": {
                            "ca_file": pki["ca"],
                            "cert_file": pki["consumer_cert"],
                            "key_file": pki["consumer_key"],
                        },
                    }
                },
            )
            link = RegionLink(link_config, signer)
            link_task = asyncio.create_task(link.run())
            try:
                await asyncio.wait_for(link.connected.wait(), 15)
                await compose(
                    conn, link, kind="announcement", title="Water", body="Off at noon",
                    targets=None, ttl_s=600, by="test",
                )  # fmt: skip
                uplink = gateway.components["uplink"]
                async with asyncio.timeout(15):
                    while uplink.announcements < 1:  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
            finally:
                link_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await link_task
        finally:
            await conn.close()
        # and a client that has no certificate from the CA is refused at the TLS handshake
        assert await refused_at_tls(base + 6, pki["ca"])
    finally:
        for process in consumers:
            process.terminate()
        for process in consumers:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        down = linli("cluster", "down", "--dir", str(folder))
    # and `cluster down` stopped all three nodes: none is left running
    assert down.returncode == 0, down.stderr
    assert "3 node(s) stopped" in down.stdout
    assert live_nats_servers(folder.resolve()) == []
    assert all(p.returncode is not None for p in consumers)
