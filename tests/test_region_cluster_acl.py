"""Per-gateway access rules on the three-node NATS cluster: each certificate scoped to its community.

`linli region cluster up --tls-ca …` maps every MQTT client certificate to a
user (nats-server `verify_and_map`); `linli region cluster allow COMMUNITY
--subject DN` lets one gateway in, allowed to publish only its own community's
uplink and to read only its own and the region-wide downlink; `deny` takes it
out again by reloading the running nodes. What nats-server 2.9.10 does at each
refusal is asserted as observed (linli/region/access.py sums it up).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import ssl
import stat
from pathlib import Path

import aiomqtt
import nats
import pytest

from linli.region import access, cluster
from linli.region.jetstream import MQTT_STREAM, quiet_errors, subject_of
from linli.wire import topics
from tests.brokers import refused_at_tls
from tests.regional import REGION
from tests.test_region_cluster import free_block, linli, live_nats_servers
from tests.test_uplink_tls import make_pki

REFUSED = 0x80  # SUBACK: failure


def require_nats_server() -> None:
    if shutil.which("nats-server") is None and not os.path.exists("/usr/sbin/nats-server"):
        if os.environ.get("CI"):
            pytest.fail("nats-server is missing (apt-get install nats-server; .ci/run does)")
        pytest.skip("nats-server is not installed")


def mqtt(
    pki: dict[str, str], stem: str | None, port: int, identifier: str, timeout: float = 5, **options
) -> aiomqtt.Client:
    """An MQTT 3.1.1 client over TLS with `stem`'s certificate from the test CA (None: no certificate)."""
    context = ssl.create_default_context(cafile=pki["ca"])
    if stem:
        context.load_cert_chain(pki[f"{stem}_cert"], pki[f"{stem}_key"])
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V311,
        tls_context=context,
        timeout=timeout,
        **options,
    )


def codes(granted) -> list[int]:
    return [getattr(code, "value", code) for code in granted]


@pytest.mark.slow
async def test_each_gateway_certificate_is_scoped_to_its_own_community(tmp_path) -> None:
    require_nats_server()
    pki = make_pki(tmp_path / "pki", {"east": "linli-gw-east", "west": "linli-gw-west"})
    folder = (tmp_path / "cluster").resolve()
    base = free_block(12)
    config = tmp_path / "region.toml"
    config.write_text(
        f'[region]\nid = "{REGION}"\n[broker]\nengine = "jetstream"\n[jetstream]\ndurable = "acl"\n'
    )
    dirs = ["--dir", str(folder), "--config", str(config)]
    mqtt_port = base + 6
    try:
        # given the cluster over mutual TLS with the region's CA, and no gateway allowed yet
        up = linli(
            "cluster", "up", *dirs, "--port", str(base), "--cluster-port", str(base + 3),
            "--mqtt-port", str(mqtt_port), "--http-port", str(base + 9),
            "--tls-cert", pki["server_cert"], "--tls-key", pki["server_key"], "--tls-ca", pki["ca"],
        )  # fmt: skip
        assert up.returncode == 0, up.stderr
        assert f'password_file = "{folder}/region-nats.secret"' in up.stdout
        secret = (folder / "region-nats.secret").read_text().strip()
        assert secret not in up.stdout + up.stderr  # the path is shown, never the password
        for i in range(3):  # and the nodes hold only its bcrypt hash, which they verify
            node_conf = (folder / f"node{i}" / "nats-server.conf").read_text()
            assert secret not in node_conf and 'user: "linli-region", password: "$2b$11$' in node_conf
        pids = json.loads((folder / "cluster.json").read_text())["pids"]
        # when the operator allows east's certificate and the dashboard's
        allowed = linli("cluster", "allow", "east", "--subject", "CN=linli-gw-east", *dirs)
        assert allowed.returncode == 0, allowed.stderr
        assert "3 running node(s) reloaded" in allowed.stdout
        dashboard = linli("cluster", "allow", "--dashboard", "--subject", "CN=linli-region-consumer", *dirs)
        assert dashboard.returncode == 0, dashboard.stderr
        # and a second community may not reuse a certificate: one certificate is one user
        reused = linli("cluster", "allow", "west", "--subject", "CN=linli-gw-east", *dirs)
        assert reused.returncode == 1 and "one certificate maps to one user" in reused.stderr
        status = linli("cluster", "status", *dirs)
        assert status.returncode == 0, status.stderr
        assert "access: per-gateway" in status.stdout and "CN=linli-gw-east" in status.stdout

        async with mqtt(pki, "east", mqtt_port, "gw-east", clean_session=False) as east:
            # then east publishes QoS 1 to its own uplink and presence (retained)
            await east.publish(topics.up_topic(REGION, "east", "alert"), b'{"n": 1}', qos=1)
            await east.publish(topics.presence_topic(REGION, "east"), b"online", qos=1, retain=True)
            # and may read its own downlink, not west's, nor the server's internal deliveries
            assert codes(await east.subscribe(topics.down_filters(REGION, "east")[0], qos=1)) == [1]
            assert codes(await east.subscribe(topics.down_filters(REGION, "east")[1], qos=1)) == [1]
            assert codes(await east.subscribe(topics.down_filters(REGION, "west")[0], qos=1)) == [REFUSED]
            assert codes(await east.subscribe("$MQTT/sub/#", qos=1)) == [REFUSED]
            for wider in (f"linli/v1/{REGION}/+/down/#", f"linli/v1/{REGION}/+/up/#", "#"):
                assert codes(await east.subscribe(wider, qos=1)) == [REFUSED], wider
            # and its publish into west's uplink is dropped: nats-server 2.9.10 still PUBACKs it and
            # keeps the connection open (it logs a "Publish Violation"), so the gateway is not told
            await east.publish(topics.up_topic(REGION, "west", "alert"), b'{"forged": true}', qos=1)
            await east.publish(topics.presence_topic(REGION, "west"), b"offline", qos=1, retain=True)
            await east.publish(topics.up_topic(REGION, "east", "alert"), b'{"n": 2}', qos=1)
            # and the dashboard's certificate publishes east's downlink (and may not publish uplink)
            async with mqtt(pki, "consumer", mqtt_port + 1, "region-dashboard") as region:
                await region.publish(topics.down_topic(REGION, "east"), b"signed announcement", qos=1)
                await region.publish(topics.up_topic(REGION, "west", "alert"), b'{"forged": true}', qos=1)
            async with asyncio.timeout(10):
                async for message in east.messages:
                    assert message.topic.value == topics.down_topic(REGION, "east")
                    assert message.payload == b"signed announcement"
                    break

        # and the region's consumers (their user and password on the NATS port) find east's only
        nc = await nats.connect(
            f"nats://127.0.0.1:{base}", user="linli-region", password=secret, allow_reconnect=False
        )
        try:
            js = nc.jetstream()
            events = await (await js.pull_subscribe_bind("acl", stream=MQTT_STREAM)).fetch(10, timeout=2)
            assert [m.subject for m in events] == [subject_of(topics.up_topic(REGION, "east", "alert"))] * 2
            assert [m.data for m in events] == [b'{"n": 1}', b'{"n": 2}']
            presence = await (await js.pull_subscribe_bind("acl-presence", stream=MQTT_STREAM)).fetch(
                10, timeout=2
            )
            assert [m.subject for m in presence] == [subject_of(topics.presence_topic(REGION, "east"))]
        finally:
            await nc.close()
        # and the NATS port wants the region's password
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(f"nats://127.0.0.1:{base}", allow_reconnect=False, error_cb=quiet_errors)

        # and a certificate from the CA that is not allowed is refused at CONNECT…
        with pytest.raises(aiomqtt.MqttError, match="Not authorized"):
            async with mqtt(pki, "west", mqtt_port, "gw-west"):
                pass
        # …even with the region user's name and password: that user cannot connect over MQTT
        with pytest.raises(aiomqtt.MqttError, match="Not authorized"):
            async with mqtt(pki, "west", mqtt_port, "gw-west", username="linli-region", password=secret):
                pass
        # and a client with no certificate at the TLS handshake
        assert await refused_at_tls(mqtt_port, pki["ca"])
        west = (pki["west_cert"], pki["west_key"])
        assert not await refused_at_tls(mqtt_port, pki["ca"], west)  # the check passes a known certificate

        # when east is denied while connected (its retained presence held by every node)
        async with mqtt(pki, "east", mqtt_port + 2, "gw-east-2") as east:
            await east.subscribe(topics.down_filters(REGION, "east")[0], qos=1)
            denied = linli("cluster", "deny", "east", *dirs)
            assert denied.returncode == 0, denied.stderr
            # then the reloaded node closes its connection…
            with pytest.raises(aiomqtt.MqttError):
                async with asyncio.timeout(5):
                    async for _ in east.messages:
                        pass
        # …and refuses it from then on, without any node having restarted
        with pytest.raises(aiomqtt.MqttError, match="Not authorized"):
            async with mqtt(pki, "east", mqtt_port, "gw-east"):
                pass
        assert json.loads((folder / "cluster.json").read_text())["pids"] == pids
        status = linli("cluster", "status", *dirs)
        assert "denied, cannot connect:  CN=linli-gw-east (was east)" in status.stdout
        # and the publishes the nodes dropped, which no gateway was told of, are there for the operator
        forged = topics.presence_topic(REGION, "west")
        assert f"refused publishes by CN=linli-gw-east: 2, the last to {forged}" in status.stdout
        assert "refused publishes by CN=linli-region-consumer: 1" in status.stdout
        # and its certificate is never handed to another community
        moved = linli("cluster", "allow", "west", "--subject", "CN=linli-gw-east", *dirs)
        assert moved.returncode == 1 and "never moved to another community" in moved.stderr
        assert sorted(live_nats_servers(folder)) == sorted(pids)

        # and every change is in the audit log, with who made it; the secrets are the owner's alone
        audit = [json.loads(line) for line in (folder / "audit.jsonl").read_text().splitlines()]
        assert [(a["action"], a["community"], a["subject"]) for a in audit] == [
            ("allow", "east", "CN=linli-gw-east"),
            ("allow", "(dashboard)", "CN=linli-region-consumer"),
            ("deny", "east", "CN=linli-gw-east"),
        ]
        assert all(a["who"].startswith("cli:") and a["at"] for a in audit)
        private = [
            "region-nats.secret",
            "gateways.json",
            "audit.jsonl",
            *(f"node{i}/nats-server.conf" for i in range(3)),
        ]
        assert {name: stat.S_IMODE((folder / name).stat().st_mode) for name in private} == dict.fromkeys(
            private, 0o600
        )
    finally:
        down = linli("cluster", "down", "--dir", str(folder))
    assert down.returncode == 0, down.stderr
    assert live_nats_servers(folder) == []


async def test_a_cluster_without_a_ca_stays_open_and_says_so(tmp_path: Path) -> None:
    # given a cluster's layout with TLS but no CA (or no TLS at all, as the benchmarks run it)
    folder = tmp_path / "cluster"
    folder.mkdir()
    for tls in ({}, {"cert_file": "/srv/server.pem", "key_file": "/srv/server.key"}):
        layout = cluster.Layout(tls=tls, pids=[0, 0, 0])
        (folder / cluster.STATE).write_text(json.dumps(dataclasses.asdict(layout)))
        # then its nodes get no authorization block, as before: any client may do anything
        assert "authorization" not in cluster.node_config(folder, layout, 0)
        assert "verify_and_map" not in cluster.node_config(folder, layout, 0)
        # and `status` says so
        report = await cluster.status(folder, {"jetstream": {"durable": "r"}})
        assert report["access"]["mode"].startswith("open: no --tls-ca")
        # and there is nothing to allow: no client identity
        with pytest.raises(cluster.ClusterError, match="without --tls-ca"):
            cluster.change_access(folder, REGION, "east", "CN=linli-gw-east")
    assert not (folder / access.REGISTRY).exists() and not (folder / access.AUDIT).exists()


def test_the_registry_refuses_what_nats_server_could_not_take(tmp_path: Path) -> None:
    access.allow(tmp_path, REGION, "east", "CN=gw-east,O=Linli")
    # a subject that would end the quoted string in the nodes' config
    for subject in ('CN=x" }, { user: "y', "CN=a\\b", "CN=line\nbreak", ""):
        with pytest.raises(access.AccessError, match="RFC 2253"):
            access.allow(tmp_path, REGION, "west", subject)
    # the reserved region-wide level, a community id nats would split, the region's own user
    for community in (topics.ALL, "a.b", "a b"):
        with pytest.raises(access.AccessError, match="letters, digits"):
            access.allow(tmp_path, REGION, community, "CN=gw-x")
    with pytest.raises(access.AccessError, match="own NATS user"):
        access.allow(tmp_path, REGION, "west", access.REGION_USER)
    # another region's config
    with pytest.raises(access.AccessError, match="pass the region's --config"):
        access.allow(tmp_path, "elsewhere", "west", "CN=gw-west")
    # a new certificate for east retires the old one, which stays a user that cannot connect
    access.allow(tmp_path, REGION, "east", "CN=gw-east-2")
    block = access.authorization_block(tmp_path, REGION)
    assert 'user: "CN=gw-east-2", allowed_connection_types: ["MQTT"]' in block
    assert 'user: "CN=gw-east,O=Linli", allowed_connection_types: ["LEAFNODE"]' in block
    audit = [json.loads(line) for line in (tmp_path / access.AUDIT).read_text().splitlines()]
    assert audit[-1]["replaced"] == "CN=gw-east,O=Linli"
