"""The live-event WebSocket and the `ws` delivery channel: an SOS reaches the household's phone."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from typing import Any

import pytest

from linli.gateway.context import Context
from linli.gateway.notify import Audience, Outcome
from tests.brokers import settle
from tests.homes import add_home, publish
from tests.portal_accounts import PORTAL_SERVICES, add_account, api_token, portal


async def next_of(ws: Any, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive_json()
            if message["type"] == kind:
                return message


async def drain(ws: Any, quiet_s: float = 0.3) -> list[dict[str, Any]]:
    """Every message until the socket has been quiet for `quiet_s`."""
    received = []
    while True:
        try:
            received.append(await ws.receive_json(timeout=quiet_s))
        except TimeoutError:
            return received


@pytest.mark.slow
async def test_an_sos_press_reaches_the_households_phone_and_nobody_elses(make_gateway, broker) -> None:
    # given two homes, a resident of each with the phone app open, and the manager's console
    gateway = await make_gateway(components=PORTAL_SERVICES)
    topics = await add_home(gateway, "h1")
    await add_home(gateway, "h2")
    for name, role, household in [
        ("li", "resident", "h1"),
        ("zhang", "resident", "h2"),
        ("wang", "manager", None),
    ]:
        await add_account(gateway, name, role, household)
    async with portal(gateway) as client:
        phones = {}
        for name in ("li", "zhang", "wang"):
            token = await api_token(gateway, name)
            phones[name] = await client.ws_connect("/api/v1/ws", headers={"Authorization": f"Bearer {token}"})
            hello = await next_of(phones[name], "hello")
            assert hello["user"]["name"] == name
        # when the resident of h1 presses the SOS pendant
        await publish(
            broker.port, [(topics["h1-sos"], {"sos": "idle"}), (topics["h1-sos"], {"sos": "pressed"})]
        )
        # then the h1 phone gets the alert, for the household audience
        delivered = await next_of(phones["li"], "alert")
        assert delivered["audience"] == "household"
        assert (delivered["alert"]["kind"], delivered["alert"]["household_id"]) == ("sos", "h1")
        assert isinstance(delivered["alert"]["id"], str)  # 64-bit ids survive JavaScript
        # and the manager's console hears of it only at the duty desk's step (180 s on), not now
        desk = [m for m in await drain(phones["wang"]) if m["type"].startswith("alert")]
        # and h2's phone receives nothing about it
        other = await drain(phones["zhang"])
        engine = gateway.components["alerts"]
        alert_id = int(delivered["alert"]["id"])
        timeline = await engine.async_timeline(alert_id)
        ws_rows = [e for e in timeline if e["channel"] == "ws"]
        assert ws_rows and ws_rows[0]["outcome"] == Outcome.DELIVERED.value
        for ws in phones.values():
            await ws.close()
    assert not other
    assert not desk


@pytest.mark.slow
async def test_h2_receives_none_of_h1s_events(make_gateway, broker) -> None:
    gateway = await make_gateway(components=PORTAL_SERVICES)
    topics = await add_home(gateway, "h1")
    await add_home(gateway, "h2")
    await add_account(gateway, "zhang", "resident", "h2")
    async with portal(gateway) as client:
        token = await api_token(gateway, "zhang")
        ws = await client.ws_connect("/api/v1/ws", headers={"Authorization": f"Bearer {token}"})
        await next_of(ws, "hello")
        await publish(
            broker.port,
            [
                (topics["h1-door"], {"contact": False}),
                (topics["h1-sos"], {"sos": "idle"}),
                (topics["h1-sos"], {"sos": "pressed"}),
            ],
        )
        engine = gateway.components["alerts"]
        await settle(lambda: engine.open_alerts("h1") and engine.open_alerts("h1")[0].step >= 0)
        received = await drain(ws)
        await ws.close()
    assert received == []


async def test_the_ws_channel_reports_no_recipient_when_nobody_of_the_audience_is_connected(
    make_gateway,
) -> None:
    gateway = await make_gateway(components=PORTAL_SERVICES)
    await add_home(gateway, "h1")
    async with portal(gateway):
        channel = next(c for c in gateway.notifier.channels if c.name == "ws")
        alert = {"id": 1, "household_id": "h1", "kind": "sos"}
        for audience in Audience:
            delivered = await channel.async_deliver(alert, audience, context=Context(household="h1"))
            assert delivered.outcome is Outcome.NO_RECIPIENT


async def stalled_phone(host: str, port: int, token: str) -> socket.socket:
    """A real WebSocket client that completes the handshake and then never reads again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a phone on a bad line: little buffering
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /api/v1/ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)  # byte by byte: nothing after the headers is read
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_a_stalled_client_is_dropped_without_holding_back_the_others(make_gateway) -> None:
    # given two phones of one household, one of which stops reading (its socket never drains)
    gateway = await make_gateway(components=PORTAL_SERVICES)
    await add_home(gateway, "h1")
    await add_account(gateway, "li", "resident", "h1")
    token = await api_token(gateway, "li")
    async with portal(gateway) as client:
        hub = next(c for c in gateway.notifier.channels if c.name == "ws").hub
        stalled = await stalled_phone(client.host, client.port, token)
        await settle(lambda: len(hub.household_members("h1")) == 1)
        slow = hub.household_members("h1")[0]
        reading = await client.ws_connect("/api/v1/ws", headers={"Authorization": f"Bearer {token}"})
        await next_of(reading, "hello")
        received: list[int] = []

        async def read() -> None:
            async for message in reading:
                data = message.json()
                if data["type"] == "test":
                    received.append(data["i"])

        reader = asyncio.create_task(read())
        # when events keep arriving (16 KB each, far more than the kernel buffers on the way)
        filler = "x" * 16384
        sent = 0
        while not slow.closed and sent < 4000:
            for _ in range(50):
                hub.send(hub.household_members("h1"), {"type": "test", "i": sent, "filler": filler})
                sent += 1
            await asyncio.sleep(0.01)
        # then the stalled one is closed as overflowing, and the other gets every event, in order
        assert slow.closed
        assert hub.overflows == 1
        assert slow not in hub.household_members("h1")
        await settle(lambda: len(received) == sent, timeout=20)
        assert received == list(range(sent))
        reader.cancel()
        await reading.close()
        stalled.close()


@pytest.mark.slow
async def test_a_care_change_tells_that_households_screens_to_redraw_and_nobody_elses(make_gateway) -> None:
    # given the TV of h1 and a phone of h2, both listening
    gateway = await make_gateway(components=PORTAL_SERVICES)
    await add_home(gateway, "h1")
    await add_home(gateway, "h2")
    await add_account(gateway, "li.tv", "resident", "h1")
    await add_account(gateway, "zhang", "resident", "h2")
    async with portal(gateway) as client:
        tv = await client.ws_connect(
            "/api/v1/ws", headers={"Authorization": f"Bearer {await api_token(gateway, 'li.tv')}"}
        )
        other = await client.ws_connect(
            "/api/v1/ws", headers={"Authorization": f"Bearer {await api_token(gateway, 'zhang')}"}
        )
        await next_of(tv, "hello")
        await next_of(other, "hello")
        care = gateway.components["eldercare"]
        # when a carer adds a reminder for h1 (on the phone, through the API), or h1 checks in
        await care.async_add_reminder("h1", title="降压药 1 片", times=["08:00"])
        assert (await next_of(tv, "care_changed"))["what"] == "reminders"
        await care.async_check_in("h1", by="li.tv")
        assert (await next_of(tv, "care_changed"))["what"] == "check_in"
        # then h1's screens redraw, and h2 hears nothing of it
        assert await drain(other) == []
        await tv.close()
        await other.close()
