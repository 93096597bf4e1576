"""Sessions: how long they live, and that losing access closes the live connections at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType

from linli.gateway import users
from tests.homes import add_home
from tests.portal_accounts import PORTAL_SERVICES, add_account, api_token, portal, sign_in

CLOSE_WITHIN_S = 2.0


async def hello(ws: Any) -> dict[str, Any]:
    async with asyncio.timeout(5):
        message = await ws.receive_json()
    assert message["type"] == "hello", message
    return message


async def closed(ws: Any, within: float = CLOSE_WITHIN_S) -> bool:
    """Whether the server closes the socket within `within` seconds (other messages skipped)."""
    try:
        async with asyncio.timeout(within):
            while True:
                message = await ws.receive()
                if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                    return True
    except TimeoutError:
        return False


async def session_token(gateway: Any, name: str) -> users.Token:
    def read(conn: Any) -> users.Token:
        user = users.get_user(conn, name=name)
        assert user is not None
        live = [t for t in users.list_tokens(conn, users.TokenKind.SESSION) if t.user_id == user.id]
        assert len(live) == 1, live
        return live[0]

    return await gateway.store.async_read(read)


async def test_session_hours_set_the_sessions_lifetime_on_the_server(make_gateway) -> None:
    # given a portal configured for 2-hour sessions
    gateway = await make_gateway(components=PORTAL_SERVICES, portal={"session_hours": 2})
    await add_home(gateway, "h1")
    password = await add_account(gateway, "li", "resident", "h1")
    async with portal(gateway) as client:
        # when the resident signs in
        before = time.time()
        response = await client.post("/api/v1/auth/login", json={"name": "li", "password": password})
        assert response.status == 200
        # then the session token itself expires in 2 hours (not the default 12), and the cookie with it
        token = await session_token(gateway, "li")
        assert token.expires is not None
        assert before + 2 * 3600 - 1 <= token.expires <= time.time() + 2 * 3600 + 1
        cookie = response.cookies["linli_session"]
        assert int(cookie["max-age"]) == 2 * 3600


@pytest.mark.slow
async def test_a_socket_closes_when_its_session_expires_and_the_session_is_refused(make_gateway) -> None:
    # given a resident signed in, whose session is about to end
    gateway = await make_gateway(components=PORTAL_SERVICES)
    await add_home(gateway, "h1")
    password = await add_account(gateway, "li", "resident", "h1")
    async with portal(gateway) as client:
        await sign_in(client, "li", password)
        token = await session_token(gateway, "li")
        soon = time.time() + 1.0
        await gateway.store.async_write(
            lambda db: db.conn.execute("UPDATE tokens SET expires = ? WHERE id = ?", (soon, token.id))
        )
        ws = await client.ws_connect("/api/v1/ws")
        await hello(ws)
        # when its expiry passes, with the socket open
        # then the server closes the socket, and the session is refused from then on
        assert await closed(ws, within=3.0)
        assert time.time() >= soon - 0.05
        assert (await client.get("/api/v1/auth/me")).status == 401


@pytest.mark.slow
async def test_disabling_an_account_closes_its_open_sockets_at_once(make_gateway) -> None:
    # given a resident with the app open on the phone (cookie) and a script (token), and the manager
    gateway = await make_gateway(components=PORTAL_SERVICES)
    await add_home(gateway, "h1")
    password = await add_account(gateway, "li", "resident", "h1")
    await add_account(gateway, "zhao", "resident", "h1")
    await add_account(gateway, "wang", "manager")
    manager = await api_token(gateway, "wang")
    async with portal(gateway) as client:
        await sign_in(client, "li", password)
        phone = await client.ws_connect("/api/v1/ws")
        await hello(phone)
        script = await client.ws_connect(
            "/api/v1/ws", headers={"Authorization": f"Bearer {await api_token(gateway, 'li')}"}
        )
        await hello(script)
        neighbour = await client.ws_connect(
            "/api/v1/ws", headers={"Authorization": f"Bearer {await api_token(gateway, 'zhao')}"}
        )
        await hello(neighbour)
        li = await gateway.store.async_read(lambda c: users.get_user(c, name="li"))
        # when the manager disables the account
        disabled = await client.patch(
            f"/api/v1/users/{li.id}", json={"disabled": True}, headers={"Authorization": f"Bearer {manager}"}
        )
        assert disabled.status == 200, await disabled.text()
        # then both of its sockets close at once; the other resident's stays open
        assert await closed(phone)
        assert await closed(script)
        assert not await closed(neighbour, within=0.3)
        # and reconnecting is refused
        again = await client.get("/api/v1/ws")
        assert again.status == 401


@pytest.mark.slow
async def test_a_password_change_closes_the_users_other_sockets_but_not_this_sessions(make_gateway) -> None:
    gateway = await make_gateway(components=PORTAL_SERVICES)
    await add_home(gateway, "h1")
    password = await add_account(gateway, "li", "resident", "h1")
    async with (
        portal(gateway) as laptop,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as phone,
    ):
        # given the same user signed in on a laptop and a phone, each with the live stream open
        csrf = await sign_in(laptop, "li", password)
        signed = await phone.post(
            laptop.make_url("/api/v1/auth/login"), json={"name": "li", "password": password}
        )
        assert signed.status == 200
        laptop_ws = await laptop.ws_connect("/api/v1/ws")
        await hello(laptop_ws)
        phone_ws = await phone.ws_connect(laptop.make_url("/api/v1/ws"))
        await hello(phone_ws)
        # when the password is changed on the laptop
        changed = await laptop.post(
            "/api/v1/auth/password", json={"current": password, "new": "a-new-pass-2026"}, headers=csrf
        )
        assert changed.status == 200, await changed.text()
        # then the phone's stream ends at once; the laptop's goes on
        assert await closed(phone_ws)
        assert not await closed(laptop_ws, within=0.3)
        await laptop_ws.close()


@pytest.mark.slow
async def test_signing_out_and_revoking_a_provider_key_close_their_sockets(make_gateway) -> None:
    gateway = await make_gateway(components=PORTAL_SERVICES)
    await add_home(gateway, "h1")
    password = await add_account(gateway, "li", "resident", "h1")
    async with portal(gateway) as client:
        # given a resident's page with its live stream
        csrf = await sign_in(client, "li", password)
        ws = await client.ws_connect("/api/v1/ws")
        await hello(ws)
        # when the resident signs out in that browser
        assert (await client.post("/api/v1/auth/logout", headers=csrf)).status == 200
        # then the stream ends with the session
        assert await closed(ws)
        # given a provider's system with its live stream open, issued by the manager
        manager = await add_account(gateway, "wang", "manager")
        client.session.cookie_jar.clear()
        csrf = await sign_in(client, "wang", manager)
        issued = await client.post(
            "/api/v1/provider-keys",
            json={"provider": "care-centre", "households": ["h1"], "kinds": ["contact"]},
            headers=csrf,
        )
        assert issued.status == 201, await issued.text()
        key = await issued.json()
        provider = await client.ws_connect("/api/v1/ws", headers={"Authorization": f"Bearer {key['secret']}"})
        await hello(provider)
        manager_ws = await client.ws_connect("/api/v1/ws")
        await hello(manager_ws)
        # when the manager revokes the key
        revoked = await client.delete(f"/api/v1/provider-keys/{key['key']['id']}", headers=csrf)
        assert revoked.status == 200, await revoked.text()
        # then the provider's stream ends at once; the manager's goes on
        assert await closed(provider)
        assert not await closed(manager_ws, within=0.3)


# -- the client's address and TLS, through trusted proxies only ---------------------------------


async def login_audit_ips(gateway: Any) -> list[str | None]:
    entries = await gateway.store.async_read(lambda c: users.query_audit(c, action="login")[0])
    return [e["ip"] for e in reversed(entries)]


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(make_gateway) -> None:
    # given a portal with no trusted proxy, reached directly
    gateway = await make_gateway(components=PORTAL_SERVICES)
    await add_home(gateway, "h1")
    password = await add_account(gateway, "li", "resident", "h1")
    spoof = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    async with portal(gateway) as client:
        # when a client claims another address and TLS
        bad = await client.post(
            "/api/v1/auth/login", json={"name": "li", "password": "wrong-pass-1"}, headers=spoof
        )
        assert bad.status == 401
        good = await client.post(
            "/api/v1/auth/login", json={"name": "li", "password": password}, headers=spoof
        )
        assert good.status == 200
        # then the audit has the peer's own address, and the cookie is not marked TLS-only
        assert await login_audit_ips(gateway) == ["127.0.0.1", "127.0.0.1"]
        assert not good.cookies["linli_session"]["secure"]


async def test_behind_a_trusted_proxy_the_client_address_and_tls_come_from_its_headers(make_gateway) -> None:
    # given a portal behind a reverse proxy on this machine, named as trusted
    gateway = await make_gateway(components=PORTAL_SERVICES, portal={"trusted_proxies": ["127.0.0.0/8"]})
    await add_home(gateway, "h1")
    password = await add_account(gateway, "li", "resident", "h1")
    async with portal(gateway) as client:
        # when the proxy forwards a TLS client at 203.0.113.7, which itself claimed to be 6.6.6.6
        via_tls = {"X-Forwarded-For": "6.6.6.6, 203.0.113.7", "X-Forwarded-Proto": "https"}
        bad = await client.post(
            "/api/v1/auth/login", json={"name": "li", "password": "wrong-pass-1"}, headers=via_tls
        )
        assert bad.status == 401
        good = await client.post(
            "/api/v1/auth/login", json={"name": "li", "password": password}, headers=via_tls
        )
        assert good.status == 200
        # then audit entries name the client the proxy saw (not the client's own claim)
        assert await login_audit_ips(gateway) == ["203.0.113.7", "203.0.113.7"]
        # and the session cookies travel only over TLS
        assert good.cookies["linli_session"]["secure"] and good.cookies["linli_csrf"]["secure"]
        assert good.cookies["linli_session"]["httponly"]
        # and a client the proxy reached over plain HTTP gets cookies without Secure
        client.session.cookie_jar.clear()
        plain = await client.post(
            "/api/v1/auth/login",
            json={"name": "li", "password": password},
            headers={"X-Forwarded-For": "198.51.100.9", "X-Forwarded-Proto": "http"},
        )
        assert plain.status == 200 and not plain.cookies["linli_session"]["secure"]


async def test_a_trusted_proxy_that_is_not_an_address_is_a_config_error() -> None:
    from linli.gateway.config import ConfigError, load_config

    try:
        load_config(
            environ={},
            overrides={
                "components": ["linli.portal.app:Portal"],  # the portal's section is judged by the portal
                "portal": {"trusted_proxies": ["127.0.0.1", "nginx.local"]},
            },
        )
    except ConfigError as exc:
        assert "portal.trusted_proxies[1]" in str(exc) and "nginx.local" in str(exc)
    else:
        raise AssertionError("a host name was accepted as a trusted proxy")


# -- login throttling that does not lock out a whole network ------------------------------------


async def attempt(client: Any, name: str, password: str, address: str) -> tuple[int, dict[str, Any]]:
    client.session.cookie_jar.clear()  # each attempt from a fresh browser
    response = await client.post(
        "/api/v1/auth/login",
        json={"name": name, "password": password},
        headers={"X-Forwarded-For": address},
    )
    return response.status, await response.json()


@pytest.mark.slow
async def test_a_sprayer_behind_the_same_address_does_not_lock_the_residents_out(make_gateway) -> None:
    from linli.common import throttle

    # given residents who share one public address (the community's NAT) with an attacker;
    # li signed in from there before, zhao never did
    gateway = await make_gateway(components=PORTAL_SERVICES, portal={"trusted_proxies": ["127.0.0.1"]})
    await add_home(gateway, "h1")
    li = await add_account(gateway, "li", "resident", "h1")
    zhao = await add_account(gateway, "zhao", "resident", "h1")
    nat, elsewhere = "203.0.113.7", "198.51.100.9"
    async with portal(gateway) as client:
        assert (await attempt(client, "li", li, nat))[0] == 200
        # when the attacker sprays one password over many names from that address, to the limit
        for n in range(throttle.ADDRESS_LIMIT):
            status, _ = await attempt(client, f"guess{n}", "spring-2026!", nat)
            assert status == 401
        # then a name it tried is refused from that address, with the time to wait
        status, body = await attempt(client, "guess0", "spring-2026!", nat)
        assert (status, body["error"]["code"]) == (429, "too_many_attempts")
        assert body["error"]["retry_after_s"] > 60
        # but the resident who signs in from there signs in at once, again and again
        for _ in range(3):
            assert (await attempt(client, "li", li, nat))[0] == 200
        # and a neighbour signing in for the first time is slowed at most, never shut out
        status, body = await attempt(client, "zhao", zhao, nat)
        if status == 429:
            assert body["error"]["retry_after_s"] <= throttle.PACE_S
            await asyncio.sleep(body["error"]["retry_after_s"])
            status, body = await attempt(client, "zhao", zhao, nat)
        assert status == 200, body
        # while the attacker's new names are held to one per PACE_S (zhao's slot passed first)
        await asyncio.sleep(throttle.PACE_S)
        first, _ = await attempt(client, "guess-new-1", "spring-2026!", nat)
        second, body = await attempt(client, "guess-new-2", "spring-2026!", nat)
        assert (first, second) == (401, 429), body
        # and from another address, the same name is only refused for its own account's reasons
        assert (await attempt(client, "guess0", "spring-2026!", elsewhere))[0] == 401


def test_the_address_rules_step_by_step() -> None:
    from linli.common.throttle import AddressThrottle

    # given a throttle of 3 failures an address, 2 a name, in 100 s, pacing new names every 5 s
    t = AddressThrottle(limit=3, window_s=100, pair_limit=2, pace_s=5, known_s=1000)
    t.succeed("nat", "li", now=0)
    # a name guessed twice from one address waits out the window there, other names do not
    t.fail("nat", "x", now=1)
    t.fail("nat", "x", now=2)
    assert t.check("nat", "x", now=3).reason == "name" and t.retry_after("nat", "x", now=3) == 98
    assert t.check("nat", "X ", now=3).reason == "name"  # the same name, however typed
    assert t.check("nat", "y", now=3).allowed and t.check("other", "x", now=3).allowed
    # over the address limit: failed names refused, known names free, new names paced
    t.fail("nat", "y", now=4)
    assert t.check("nat", "y", now=5).reason == "address"
    assert all(t.check("nat", "li", now=5 + i / 10).allowed for i in range(5))
    assert t.check("nat", "zhao", now=6).allowed
    assert t.check("nat", "wu", now=7).reason == "paced"
    assert t.check("nat", "wu", now=11).allowed
    # and when the window has passed, everything is as before
    assert t.check("nat", "x", now=200).allowed and t.check("nat", "y", now=200).allowed
