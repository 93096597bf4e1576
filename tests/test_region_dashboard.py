"""The regional dashboard: what an operator sees, and an emergency broadcast with its delivery report."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from linli.common import throttle
from linli.region import operators
from linli.region.consumer import Consumer
from linli.region.dashboard import create_app
from linli.wire.signing import Signer
from tests import postgres, regional
from tests.brokers import settle
from tests.regional import REGION, add_tv, tv_profiles, uplink_config
from tests.test_region import region_config

region_broker = regional.region_broker
postgres_cluster = postgres.postgres_cluster
region_dsn = postgres.region_dsn


@pytest.fixture
async def region(region_broker, region_dsn, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """A consumer and the dashboard (with the region's key), on the test broker and database,
    with one operator, `duty`, whose API token the helpers below send."""
    signer = Signer.generate()
    config = region_config(region_dsn, region_broker.port)
    config["region"]["data_dir"] = str(tmp_path / "region")
    config["dashboard"]["clock_interval_s"] = 1
    consumer = Consumer(config, 0)
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(consumer.connected.wait(), 10)
    client = TestClient(TestServer(create_app(config, signer)))
    await client.start_server()
    conn = await asyncpg.connect(region_dsn)
    try:
        duty = await operators.add(conn, REGION, "duty", by="test")
    finally:
        await conn.close()
    TOKENS[client] = duty.token
    try:
        yield {"client": client, "signer": signer, "consumer": consumer, "duty": duty, "config": config}
    finally:
        TOKENS.pop(client, None)
        await client.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.async_close()


TOKENS: dict[TestClient, str] = {}


async def api(client: TestClient, method: str, path: str, **kw: Any) -> Any:
    response = await client.request(method, path, headers={"Authorization": f"Bearer {TOKENS[client]}"}, **kw)
    assert response.status < 300, await response.text()
    return await response.json()


async def until(client: TestClient, path: str, predicate: Any, timeout: float = 10.0) -> Any:
    async with asyncio.timeout(timeout):
        while not predicate(data := await api(client, "GET", path)):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    return data


async def sign_in(client: TestClient, name: str, password: str) -> str:
    """Sign in through the form, as a browser does; returns the session's CSRF token from a page."""
    response = await client.post("/login", data={"name": name, "password": password}, allow_redirects=False)
    assert response.status == 303, await response.text()
    page = await (await client.get("/announcements")).text()
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "the composer form carries the session's CSRF token"
    return found.group(1)


async def test_operator_sees_the_region_and_an_emergency_reaches_every_tv(
    make_gateway, region_broker, region, tmp_path
) -> None:
    client: TestClient = region["client"]
    # given a community whose gateway trusts the region's key, with a TV, and an SOS acknowledged in 42 s
    gateway = await make_gateway(
        components=["linli.services.alerts:AlertEngine"],
        uplink=uplink_config(region_broker.port, region["signer"]),
        profiles={"paths": tv_profiles(tmp_path / "profiles")},
    )
    shown = await add_tv(gateway)
    engine = gateway.components["alerts"]
    clock = {"now": 1_800_000_000.0}
    engine.clock = lambda: clock["now"]
    sos = await engine.async_raise(kind="sos", household_id="h1", title="SOS 紧急呼叫")
    clock["now"] += 42
    await engine.async_acknowledge(sos.id, "warden")
    await engine.async_raise(kind="water_leak", household_id="h1", title="Leak", severity="high")
    await gateway.components["uplink"].async_report_status()
    await gateway.components["uplink"].async_report_device_health()

    # when the operator opens the overview
    overview = await until(
        client, "/api/v1/overview", lambda d: d["ack_times_24h"]["count"] == 1 and "high" in d["open_alerts"]
    )
    # then the community is online, the alerts are counted by severity, the ack time is measured
    assert overview["communities"]["total"] == overview["communities"]["online"] == 1
    assert overview["open_alerts"]["critical"]["total"] == 1  # acknowledged, not yet resolved
    assert overview["open_alerts"]["high"]["total"] == 1
    assert overview["ack_times_24h"]["p50_s"] == 42
    assert overview["ack_times_24h"]["meets_targets"] is True
    assert overview["fleet"]["devices"] == 1
    drill = await api(client, "GET", "/api/v1/communities/community")
    assert {a["kind"] for a in drill["alerts"]} == {"sos", "water_leak"}

    # when the operator sends an emergency broadcast to that community
    sent = await api(
        client,
        "POST",
        "/api/v1/announcements",
        json={
            "kind": "emergency",
            "title": "暴雨预警",
            "body": "Flood: leave the car park now",
            "targets": ["community"],
        },
    )
    # then the TV shows it as an alarm, and the delivery report counts the gateway and the TV
    await settle(lambda: len(shown) == 1, timeout=10)
    assert shown[0]["level"] == "alarm" and shown[0]["text"] == "Flood: leave the car park now"
    report = await until(client, f"/api/v1/announcements/{sent['id']}", lambda d: d["tvs_shown"] == 1)
    assert (report["gateways_targeted"], report["gateways_confirmed"], report["tvs_total"]) == (1, 1, 1)
    assert report["not_confirmed"] == []
    # and the region's signed clock reached the gateway
    await settle(lambda: gateway.components["uplink"]._clock_issued > 0, timeout=5)

    # and the pages a person reads say the same
    await sign_in(client, "duty", region["duty"].password)
    page = await (await client.get("/")).text()
    assert "Communities online" in page and "42 s" in page
    page = await (await client.get("/communities/community")).text()
    assert "SOS 紧急呼叫" in page
    page = await (await client.get(f"/announcements/{sent['id']}")).text()
    assert "EMERGENCY" in page and "1 / 1" in page


async def test_the_dashboard_refuses_strangers_and_bad_broadcasts(region) -> None:
    client: TestClient = region["client"]
    token = region["duty"].token
    assert (await client.get("/api/v1/overview")).status == 401
    assert (await client.get("/", headers={"Authorization": "Bearer wrong"})).status == 401
    # a person without a session is sent to the sign-in page; the old shared-token link is gone
    response = await client.get("/", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/login")
    assert (await client.get(f"/login?token={token}", allow_redirects=False)).status == 200
    assert (await client.get("/", allow_redirects=False)).status == 303
    # a cross-site form post with the operator's session cookie is refused, and so is a missing CSRF token
    csrf = await sign_in(client, "duty", region["duty"].password)
    response = await client.post(
        "/announcements",
        data={"body": "hi", "kind": "announcement", "csrf": csrf},
        headers={"Origin": "http://evil.example"},
    )
    assert response.status == 403
    response = await client.post("/announcements", data={"body": "hi", "kind": "announcement"})
    assert response.status == 403 and (await response.json())["error"]["code"] == "csrf_failed"
    # unknown targets and empty bodies are refused with a reason
    response = await client.post(
        "/api/v1/announcements",
        json={"kind": "announcement", "body": "hi", "targets": ["nowhere"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 400 and (await response.json())["error"]["code"] == "unknown_target"
    response = await client.post(
        "/api/v1/announcements",
        json={"kind": "announcement", "body": ""},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 400
    assert REGION in await (await client.get("/announcements")).text()
    # the composer form, from the dashboard itself, signs and sends, then shows the delivery report
    response = await client.post(
        "/announcements",
        data={
            "kind": "announcement",
            "title": "停水通知",
            "body": "Water off 9–11 tomorrow",
            "ttl_min": "30",
            "csrf": csrf,
        },
        headers={"Origin": f"http://{client.host}:{client.port}"},
        allow_redirects=False,
    )
    assert response.status == 303
    report = await client.get(response.headers["Location"])
    assert report.status == 200 and "停水通知" in await report.text()
    assert "by duty" in await report.text()


def region_cli(config_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "linli", "region", *args, "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )


async def test_named_operators_sign_in_and_the_audit_log_says_who_sent_what(
    region, region_dsn, tmp_path
) -> None:
    client: TestClient = region["client"]
    config_file = tmp_path / "region.toml"
    config_file.write_text(f'[region]\nid = "{REGION}"\n[database]\ndsn = "{region_dsn}"\n')
    # given an operator made with the CLI, which prints the password and the token once
    made = await asyncio.to_thread(region_cli, config_file, "operator", "add", "alice")
    assert made.returncode == 0, made.stderr
    password = re.search(r"password .*:\s+(\S+)", made.stdout)
    token = re.search(r"API token .*:\s+(\S+)", made.stdout)
    assert password is not None and token is not None, made.stdout
    again = await asyncio.to_thread(region_cli, config_file, "operator", "add", "alice")
    assert again.returncode == 1 and "already" in again.stderr
    assert password.group(1) not in again.stdout + again.stderr
    listed = await asyncio.to_thread(region_cli, config_file, "operator", "list")
    assert "alice" in listed.stdout and "duty" in listed.stdout
    # and nothing in the database could give them back
    conn = await asyncpg.connect(region_dsn)
    try:
        stored = await conn.fetchrow("SELECT * FROM operators WHERE name = 'alice'")
        assert stored["password_hash"].startswith("$argon2id$")
        assert password.group(1) not in str(dict(stored)) and token.group(1) not in str(dict(stored))

        # when alice mistypes her password, then signs in and sends a broadcast from the composer
        response = await client.post("/login", data={"name": "alice", "password": "wrong-password"})
        assert response.status == 401
        csrf = await sign_in(client, "alice", password.group(1))
        response = await client.post(
            "/announcements",
            data={"kind": "announcement", "body": "Lift maintenance at 10:00", "csrf": csrf},
            allow_redirects=False,
        )
        assert response.status == 303
        # and a script sends one with her token, claiming to be someone else
        sent = await client.post(
            "/api/v1/announcements",
            json={"kind": "emergency", "title": "Storm", "body": "Stay indoors", "by": "mallory"},
            headers={"Authorization": f"Bearer {token.group(1)}"},
        )
        assert sent.status == 201
        sent_id = (await sent.json())["id"]
        # then each announcement is hers, and the audit log says who signed in and who sent what
        report = await api(client, "GET", f"/api/v1/announcements/{sent_id}")
        assert report["created_by"] == "alice"
        audit = (await api(client, "GET", "/api/v1/audit"))["items"]
        trail = [(a["operator"], a["action"], a["outcome"]) for a in reversed(audit)]
        assert trail[-4:] == [
            ("alice", "signin", "failed"),
            ("alice", "signin", "ok"),
            ("alice", "broadcast.announcement", "ok"),
            ("alice", "broadcast.emergency", "ok"),
        ]
        assert [a["target"] for a in audit if a["action"] == "broadcast.emergency"] == [sent_id]
        assert any(a["action"] == "operator.added" and a["target"] == "alice" for a in audit)
        page = await (await client.get("/audit")).text()
        assert "broadcast.emergency" in page and sent_id in page and "alice" in page
        # and the log cannot be rewritten
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("UPDATE audit_log SET operator = 'nobody'")
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("DELETE FROM audit_log")

        # when she signs out, her session cookie no longer works
        await client.post("/logout", data={"csrf": csrf})
        assert (await client.get("/", allow_redirects=False)).status == 303
        # when she is disabled, her token stops working at once
        disabled = await asyncio.to_thread(region_cli, config_file, "operator", "disable", "alice")
        assert disabled.returncode == 0, disabled.stderr
        gone = await client.get("/api/v1/overview", headers={"Authorization": f"Bearer {token.group(1)}"})
        assert gone.status == 401
        assert (
            await client.post("/login", data={"name": "alice", "password": password.group(1)})
        ).status == 401
    finally:
        await conn.close()


async def test_wrong_passwords_lock_an_operator_out_even_with_the_right_one(region, region_dsn) -> None:
    client: TestClient = region["client"]
    conn = await asyncpg.connect(region_dsn)
    try:
        other = await operators.add(conn, REGION, "night", by="test")
    finally:
        await conn.close()
    for _ in range(throttle.FREE_FAILURES):
        assert (await client.post("/login", data={"name": "duty", "password": "guess-1234"})).status == 401
    right = await client.post("/login", data={"name": "duty", "password": region["duty"].password})
    assert right.status == 429 and "locked" in await right.text()
    # the operator's API token still works: the lockout is against guessing the password
    assert (await api(client, "GET", "/api/v1/overview"))["region"] == REGION
    # and another operator, from the same address, is not locked out with it
    night = await client.post(
        "/login", data={"name": "night", "password": other.password}, allow_redirects=False
    )
    assert night.status == 303
    # and a name with no operator locks out the same way: the answers do not tell which names exist
    for _ in range(throttle.FREE_FAILURES):
        assert (await client.post("/login", data={"name": "nobody", "password": "guess-1234"})).status == 401
    ghost = await client.post("/login", data={"name": "nobody", "password": "guess-1234"})
    assert ghost.status == 429 and "locked" in await ghost.text()


async def test_one_address_guessing_many_names_does_not_lock_out_the_operators_behind_it(
    region, region_dsn
) -> None:
    client: TestClient = region["client"]
    conn = await asyncpg.connect(region_dsn)
    try:
        newcomer = await operators.add(conn, REGION, "newcomer", by="test")
    finally:
        await conn.close()
    # given an operator who signed in from this address before (the region office's NAT)
    await sign_in(client, "duty", region["duty"].password)
    # when someone at the same address sprays a password over many names, to the limit
    for n in range(throttle.ADDRESS_LIMIT):
        answer = await client.post("/login", data={"name": f"guess{n}", "password": "guess-1234"})
        assert answer.status == 401
    # then a name it tried is refused from that address, with the time to wait
    again = await client.post("/login", data={"name": "guess0", "password": "guess-1234"})
    assert again.status == 429 and "Too many failed sign-ins from your address" in await again.text()
    # but the operator known here signs in as ever
    right = await client.post("/login", data={"name": "duty", "password": region["duty"].password})
    assert right.status == 200 and "Overview" in await right.text()
    # and an operator signing in from here for the first time is slowed at most, never shut out
    first = await client.post("/login", data={"name": "newcomer", "password": newcomer.password})
    if first.status == 429:
        await asyncio.sleep(throttle.PACE_S)
        first = await client.post("/login", data={"name": "newcomer", "password": newcomer.password})
    assert first.status == 200, await first.text()
    # while the sprayer's new names are held to one per PACE_S (the newcomer's slot was just used)
    paced = await client.post("/login", data={"name": "guess-new", "password": "guess-1234"})
    assert paced.status == 429 and "slowed" in await paced.text()
    # and from another address, even a name it tried is only refused for its own account's reasons
    elsewhere = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0)))
    async with elsewhere:
        answer = await elsewhere.post(client.make_url("/login"), data={"name": "guess0", "password": "x" * 8})
        assert answer.status == 401


async def test_a_hostile_gateway_or_community_name_is_shown_as_text_never_run(region, region_dsn) -> None:
    client: TestClient = region["client"]
    # given a gateway that reports a community name, its own name and a version with markup in them
    hostile = '<script>alert("name")</script>'
    conn = await asyncpg.connect(region_dsn)
    try:
        await conn.execute(
            "INSERT INTO communities (region, community, gateway, name, online, status) "
            "VALUES ($1, $2, $3, $4, true, $5::jsonb)",
            REGION,
            'evil"><script>',
            "<img src=x onerror=alert(1)>",
            hostile,
            '{"version": "<script>v</script>"}',
        )
    finally:
        await conn.close()
    # when an operator looks at the overview and at the community's own page
    overview = await (await client.get("/", headers={"Authorization": f"Bearer {TOKENS[client]}"})).text()
    detail = await (
        await client.get(
            "/communities/evil%22%3E%3Cscript%3E", headers={"Authorization": f"Bearer {TOKENS[client]}"}
        )
    ).text()
    # then every one of them is on the page as text, and no markup of theirs is
    for page in (overview, detail):
        assert "<script" not in page and "<img" not in page
        assert "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;" in page
    assert 'href="/communities/evil%22%3E%3Cscript%3E"' in overview
    assert "&lt;img src=x onerror=alert(1)&gt;" in detail and "&lt;script&gt;v&lt;/script&gt;" in detail


async def test_behind_a_trusted_proxy_each_operator_is_their_own_address_and_no_one_else_can_claim_one(
    region, region_dsn
) -> None:
    # given the dashboard behind a reverse proxy on 127.0.0.1, named in dashboard.trusted_proxies
    config = {
        **region["config"],
        "dashboard": {**region["config"]["dashboard"], "trusted_proxies": ["127.0.0.1"]},
    }
    proxied = TestClient(TestServer(create_app(config, region["signer"])))
    await proxied.start_server()
    try:
        # when someone behind the proxy sprays passwords, to the limit
        sprayer = {"X-Forwarded-For": "203.0.113.7"}
        for n in range(throttle.ADDRESS_LIMIT):
            answer = await proxied.post(
                "/login", data={"name": f"g{n}", "password": "guess-1234"}, headers=sprayer
            )
            assert answer.status == 401
        # then that address is refused
        again = await proxied.post("/login", data={"name": "g0", "password": "guess-1234"}, headers=sprayer)
        assert again.status == 429
        # and the operator at another address behind the same proxy signs in, over the proxy's TLS
        duty = {"X-Forwarded-For": "203.0.113.8", "X-Forwarded-Proto": "https"}
        signed = await proxied.post(
            "/login",
            data={"name": "duty", "password": region["duty"].password},
            headers=duty,
            allow_redirects=False,
        )
        assert signed.status == 303
        assert "secure" in signed.headers["Set-Cookie"].lower()  # the cookie never travels in clear
        # and the audit log names the operator's own address, not the proxy's
        conn = await asyncpg.connect(region_dsn)
        try:
            ip = await conn.fetchval(
                "SELECT ip FROM audit_log WHERE operator = 'duty' AND action = 'signin' AND outcome = 'ok' "
                "ORDER BY id DESC LIMIT 1"
            )
        finally:
            await conn.close()
        assert ip == "203.0.113.8"
    finally:
        await proxied.close()
    # while without trusted proxies (the fixture's dashboard) the header is a client's claim, ignored:
    # changing it does not dodge the throttle
    client: TestClient = region["client"]
    for n in range(throttle.ADDRESS_LIMIT):
        forged = {"X-Forwarded-For": f"198.51.100.{n}"}
        await client.post("/login", data={"name": f"h{n}", "password": "guess-1234"}, headers=forged)
    refused = await client.post(
        "/login", data={"name": "h0", "password": "guess-1234"}, headers={"X-Forwarded-For": "198.51.100.200"}
    )
    assert refused.status == 429
