"""Pairing a TV with its remote alone (RFC 8628's device flow), the screen credential, and revoking it.

The API tests drive the flow as the TV page and the phone app do, over real
sockets against a real gateway; the last test does it end to end in two real
headless Chromium pages (the TV and the admin's phone).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from linli.gateway import users
from linli.gateway.component import ComponentApi
from linli.portal.app import create_app
from linli.portal.auth import pairing
from tests.homes import add_home
from tests.portal_accounts import PORTAL_SERVICES, add_account, sign_in
from tests.test_portal_browser import PHONE, TV, at, browser_page, portal_gateway
from tests.test_portal_browser import sign_in as sign_in_page


@contextlib.asynccontextmanager
async def browsers(gateway: Any, count: int) -> AsyncIterator[list[TestClient[Any, Any]]]:
    """`count` clients (each its own cookie jar: a TV, a phone…) of one portal server."""
    server = TestServer(create_app(ComponentApi(gateway, "portal")), host="127.0.0.1")
    await server.start_server()
    clients = [TestClient(server) for _ in range(count)]
    try:
        for client in clients:
            await client.start_server()
        yield clients
    finally:
        for client in clients:
            await client.close()
        await server.close()


async def _setup(make_gateway: Any, *extra: str) -> Any:
    gateway = await make_gateway(components=[*PORTAL_SERVICES, *extra])
    await add_home(gateway, "h1")
    await add_home(gateway, "h2")
    return gateway


async def _admin(client: Any, gateway: Any, name: str = "li.admin", household: str = "h1") -> dict[str, str]:
    password = await add_account(gateway, name, "household_admin", household)
    return await sign_in(client, name, password)


def _no_wait(client: Any) -> None:
    """Let the next poll through at once (the interval is the TV's to keep; these tests poll on cue)."""
    for item in client.app[pairing.PAIRINGS]._by_device.values():
        item.last_poll = None


async def test_the_tv_gets_a_short_code_and_a_qr_code_and_waits(make_gateway) -> None:
    gateway = await _setup(make_gateway)
    async with browsers(gateway, 1) as (tv,):
        # given a TV that is not signed in, when it asks to pair
        response = await tv.post("/api/v1/tv/pairings")
        assert response.status == 200
        body = await response.json()
        # then it gets a user code of 8 letters from the unambiguous alphabet, grouped for reading
        code = body["user_code"]
        assert len(code) == 9 and code[4] == "-"
        assert set(code.replace("-", "")) <= set(pairing.ALPHABET)
        assert body["verification_uri_complete"].endswith(f"/app/pair?code={code}")
        assert body["qr_svg"].startswith("data:image/svg+xml;base64,")
        assert (body["expires_in"], body["interval"]) == (600, 5)
        # and polling before anyone confirmed says so (RFC 8628 §3.5), with the interval
        poll = await tv.post("/api/v1/tv/pairings/token", json={"device_code": body["device_code"]})
        error = (await poll.json())["error"]
        assert (poll.status, error["code"], error["interval"]) == (400, "authorization_pending", 5)
        # polling again at once is too fast: slow_down, and the interval grows by 5 s
        poll = await tv.post("/api/v1/tv/pairings/token", json={"device_code": body["device_code"]})
        error = (await poll.json())["error"]
        assert (error["code"], error["interval"]) == ("slow_down", 10)
        # the TV cannot read anything meanwhile
        assert (await tv.get("/api/v1/alerts")).status == 401


async def test_an_admin_confirms_the_code_and_the_tv_sees_only_its_household(make_gateway) -> None:
    gateway = await _setup(make_gateway)
    async with browsers(gateway, 2) as (tv, phone):
        started = await (await tv.post("/api/v1/tv/pairings")).json()
        headers = await _admin(phone, gateway)
        # when the household admin types the code (lower case, without the dash)
        typed = started["user_code"].replace("-", "").lower()
        confirm = await phone.post("/api/v1/screens/pair", json={"user_code": typed}, headers=headers)
        assert confirm.status == 200, await confirm.text()
        assert (await confirm.json())["household_id"] == "h1"
        # then the TV's next poll gets the screen credential as an HttpOnly cookie
        poll = await tv.post("/api/v1/tv/pairings/token", json={"device_code": started["device_code"]})
        assert poll.status == 200, await poll.text()
        assert (await poll.json())["household_id"] == "h1"
        cookie = poll.cookies["linli_screen"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        # and the TV sees its household, and only what the TV needs
        me = await (await tv.get("/api/v1/auth/me")).json()
        assert (me["user"]["household_id"], me["user"]["via"]) == ("h1", "screen")
        assert (await tv.get("/api/v1/households/h1")).status == 200
        assert (await tv.get("/api/v1/households/h2")).status == 404  # not another household
        csrf = {"X-CSRF-Token": tv.session.cookie_jar.filter_cookies(tv.make_url("/"))["linli_csrf"].value}
        assert (await tv.post("/api/v1/households/h1/care/check-in", json={}, headers=csrf)).status == 200
        for method, path in [
            ("GET", "/api/v1/households/h1/members"),  # account administration
            ("GET", "/api/v1/users"),
            ("GET", "/api/v1/audit"),
            ("PATCH", "/api/v1/auth/me"),
            ("POST", "/api/v1/auth/password"),
            ("GET", "/api/v1/households/h1/paired-screens"),
        ]:
            refused = await tv.request(method, path, json={}, headers=csrf)
            assert refused.status == 403, (method, path, refused.status)
        # the pairing and the confirmation are in the audit log
        actions = [e["action"] for e in await gateway.store.async_read(lambda c: users.query_audit(c)[0])]
        assert "screen.confirm" in actions and "screen.pair" in actions


@pytest.mark.parametrize("case", ["denied", "expired", "reused", "unknown"])
async def test_the_device_flow_refuses_what_it_must(make_gateway, case) -> None:
    gateway = await _setup(make_gateway)
    async with browsers(gateway, 2) as (tv, phone):
        started = await (await tv.post("/api/v1/tv/pairings")).json()
        device_code, code = started["device_code"], started["user_code"]
        headers = await _admin(phone, gateway)
        if case == "denied":
            # when the admin refuses the code, the TV hears access_denied
            await phone.post("/api/v1/screens/pair/deny", json={"user_code": code}, headers=headers)
            expected = "access_denied"
        elif case == "expired":
            # when nobody confirms within expires_in, the TV hears expired_token (and shows a new code)
            for item in tv.app[pairing.PAIRINGS]._by_device.values():
                item.expires = 0
            expected = "expired_token"
        elif case == "reused":
            # a device code exchanged once cannot be exchanged again (a copied code pairs nothing)
            await phone.post("/api/v1/screens/pair", json={"user_code": code}, headers=headers)
            first = await tv.post("/api/v1/tv/pairings/token", json={"device_code": device_code})
            assert first.status == 200
            tv.session.cookie_jar.clear()  # the copy is tried from another device
            _no_wait(tv)
            expected = "invalid_grant"
        else:
            device_code = "made-up-device-code"
            expected = "invalid_grant"
        poll = await tv.post("/api/v1/tv/pairings/token", json={"device_code": device_code})
        assert (poll.status, (await poll.json())["error"]["code"]) == (400, expected)


async def test_codes_are_for_household_admins_of_their_own_household_and_guessing_is_throttled(
    make_gateway,
) -> None:
    gateway = await _setup(make_gateway)
    async with browsers(gateway, 3) as (tv, phone, other):
        started = await (await tv.post("/api/v1/tv/pairings")).json()
        code = started["user_code"]
        # a resident (not an admin) may not pair a TV
        password = await add_account(gateway, "li.resident", "resident", "h1")
        resident = await sign_in(other, "li.resident", password)
        refused = await other.post("/api/v1/screens/pair", json={"user_code": code}, headers=resident)
        assert refused.status == 403
        # the admin of another household pairs the TV to *their* household, never to h1
        headers = await _admin(phone, gateway, "zhang.admin", "h2")
        await phone.post("/api/v1/screens/pair", json={"user_code": code}, headers=headers)
        poll = await tv.post("/api/v1/tv/pairings/token", json={"device_code": started["device_code"]})
        assert (await poll.json())["household_id"] == "h2"
        assert (await tv.get("/api/v1/households/h1")).status == 404
        # guessing codes: wrong ones answer not_found, then the account must wait
        statuses = []
        for _ in range(pairing.WRONG_CODES + 1):
            wrong = await phone.post("/api/v1/screens/pair", json={"user_code": "BBBB-BBBB"}, headers=headers)
            statuses.append(wrong.status)
        assert statuses[:-1] == [404] * pairing.WRONG_CODES and statuses[-1] == 429


async def test_the_admin_lists_and_revokes_a_screen_and_it_stops_at_once(make_gateway) -> None:
    gateway = await _setup(make_gateway)
    async with browsers(gateway, 2) as (tv, phone):
        started = await (await tv.post("/api/v1/tv/pairings")).json()
        headers = await _admin(phone, gateway)
        await phone.post("/api/v1/screens/pair", json={"user_code": started["user_code"]}, headers=headers)
        await tv.post("/api/v1/tv/pairings/token", json={"device_code": started["device_code"]})
        assert (await tv.get("/api/v1/households/h1")).status == 200  # resolved, and now cached
        listed = await (await phone.get("/api/v1/households/h1/paired-screens")).json()
        [screen] = listed["items"]
        # when the admin revokes it
        gone = await phone.delete(f"/api/v1/households/h1/paired-screens/{screen['id']}", headers=headers)
        assert gone.status == 200
        # then the TV is signed out on its very next request (no cache grace), and the list is empty
        assert (await tv.get("/api/v1/households/h1")).status == 401
        assert (await (await phone.get("/api/v1/households/h1/paired-screens")).json())["items"] == []
        actions = [e["action"] for e in await gateway.store.async_read(lambda c: users.query_audit(c)[0])]
        assert "screen.revoke" in actions


async def test_an_adopted_box_opens_the_tv_page_already_paired_once(make_gateway) -> None:
    gateway = await _setup(make_gateway)
    async with browsers(gateway, 2) as (box, stranger):
        # given the one-time grant the gateway puts in the URL it opens on the household's box
        url = box.app[pairing.PAIRINGS].tv_url("h1")
        assert "/tv/?grant=" in url
        path = url[url.index("/tv/") :]
        # when the box opens it, it is sent on to /tv/ signed in as the household's screen
        opened = await box.get(path, allow_redirects=False)
        assert opened.status == 302 and opened.headers["Location"] == "/tv/"
        assert "linli_screen" in opened.cookies
        me = await (await box.get("/api/v1/auth/me")).json()
        assert me["user"]["household_id"] == "h1"
        # and the same URL opened again (copied from a log, say) pairs nothing
        again = await stranger.get(path, allow_redirects=False)
        assert again.status == 302 and "linli_screen" not in again.cookies
        assert (await stranger.get("/api/v1/auth/me")).status == 401


async def test_pairing_end_to_end_tv_shows_code_admin_confirms_tv_shows_the_household(
    make_gateway, tmp_path
) -> None:
    gateway, base = await portal_gateway(make_gateway)
    await add_home(gateway, "h1")
    password = await add_account(gateway, "li.admin", "household_admin", "h1")
    async with browser_page(tmp_path, TV) as tv, browser_page(tmp_path, PHONE) as phone:
        # given a TV that is not signed in: /tv shows a code and a QR code, no login form
        await tv.goto(f"{base}/tv")
        await tv.wait_for_selector("#pair-code")
        assert tv.url.endswith("/tv")
        code = (await tv.inner_text("#pair-code")).strip()
        assert len(code) == 9
        assert await tv.evaluate("document.querySelector('#pair-qr').naturalWidth > 0")
        # when the admin scans the QR code (its URL) on the phone, signs in and confirms
        qr_url = await tv.get_attribute("#pair-qr", "data-url")
        path = qr_url[qr_url.index("/app/pair") :]
        await sign_in_page(phone, base, "li.admin", password, "/app/pair")
        await phone.goto(f"{base}{path}")
        await phone.wait_for_selector("#pair-input")
        assert await phone.input_value("#pair-input") == code
        await phone.click("#pair-confirm")
        await phone.wait_for_selector("#pair-done")
        # then the TV signs itself in and shows the household (its tiles), with the remote untouched
        await tv.wait_for_selector("#tile-check-in", timeout=20_000)
        assert "h1 home" in await tv.inner_text("#title")
        # and the admin sees the TV in the list of screens
        await phone.reload()
        await phone.wait_for_selector("#screens-list li[data-screen]")
        assert await phone.locator("#screens-list li[data-screen]").count() == 1
        assert at("/app/pair")(phone.url)
