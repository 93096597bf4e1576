"""Sessions: how long they live, and that losing access closes the live connections at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from aiohttp import WSMsgType

from gateway import users
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
