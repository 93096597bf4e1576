"""A cable box's own changes reach the gateway as UPnP events (GENA); its listener lets in nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from async_upnp_client.client_factory import UpnpFactory

from linli.adapters.upnp import gena
from linli.adapters.upnp.gena import MAX_NOTIFY_BYTES, GenaListener
from linli.gateway.stb import wake
from linli.gateway.stb.http import BoundedUpnpRequester, Limits
from linli.sim.dial_box import XML_BOMB, DialBox
from tests.brokers import settle
from tests.stb.boxes import OPERATORS, home_with_tv, stb_gateway

RCS = "urn:schemas-upnp-org:service:RenderingControl:2"
PROPERTY_SET = (
    '<?xml version="1.0"?><e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0">'
    "<e:property><LastChange>{}</LastChange></e:property></e:propertyset>"
)


def service(box: DialBox, service_type: str) -> Any:
    assert box.device is not None
    return box.device.service(service_type)


async def notify(
    url: str,
    body: bytes | str,
    *,
    sid: str,
    source: str = "127.0.0.1",
    method: str = "NOTIFY",
    **headers: str,
) -> int:
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        sent = {"NT": "upnp:event", "NTS": "upnp:propchange", "SID": sid, "SEQ": "1", **headers}
        async with session.request(method, url, data=body, headers=sent) as response:
            return response.status


async def notify_raw(url: str, body: str, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.request("NOTIFY", url, data=body.encode(), headers=headers) as response:
            return response.status


@pytest.mark.slow
@pytest.mark.parametrize("operator", OPERATORS)
async def test_either_operators_box_reports_the_residents_own_remote_at_once(
    make_gateway, boxes, operator
) -> None:
    # given a box and no background polling (poll_s is an hour in tests)
    gateway = await stb_gateway(make_gateway)
    box = await boxes(operator, "h1-tv")
    device = await home_with_tv(gateway, "h1", box)
    await asyncio.sleep(1.1)  # past the echo window of the adoption's own reads
    # when someone turns the volume up with the box's own remote
    await box.remote_volume(61)
    # then the gateway knows at once: a Thunder event, or a UPnP NOTIFY (moderated to 0.2 s)
    await settle(lambda: device.states["volume"].value["level"] == 61, timeout=2)
    # and when they dial channel 5 on it, the channel record follows
    await box.remote_tune(5)
    await settle(lambda: (device.states["channel"].value or {}).get("lcn") == 5, timeout=2)
    assert device.states["channel"].value["name"] == "CCTV-5 体育"


async def cable_listener(make_gateway, boxes) -> tuple[GenaListener, DialBox, Any, str, str]:
    """A gateway with one cable box, once it holds the box's subscriptions.

    (listener, box, device, callback URL, the RenderingControl SID)
    """
    gateway = await stb_gateway(make_gateway)
    box = await boxes("broadcast", "h1-tv")
    device = await home_with_tv(gateway, "h1", box)
    listener: GenaListener = gateway.components["adapters"].adapter("stb_broadcast").events  # type: ignore[attr-defined]
    await settle(lambda: len(listener.held) == 2, timeout=2)  # AVTransport and RenderingControl
    [url] = listener.callback_urls
    sid = next(sid for event_url, sid in listener.held.items() if "RenderingControl" in event_url)
    await asyncio.sleep(1.1)  # past the echo window of the adoption's own reads
    return listener, box, device, url, sid


@pytest.mark.slow
async def test_a_hostile_notify_is_refused_and_kept_nowhere(make_gateway, boxes) -> None:
    # given a cable box whose changes the gateway listens to
    listener, box, device, url, sid = await cable_listener(make_gateway, boxes)
    held = dict(listener.held)
    change = PROPERTY_SET.format("&lt;Event/&gt;")
    received, refused = listener.received, sum(listener.refused.values())
    # when the LAN sends it what a box would not
    assert await notify(url, change, sid="uuid:not-ours") == 412  # a SID nobody gave out
    assert await notify(url, change, sid=sid, source="127.0.0.2") == 412  # a real SID, from another host
    assert await notify(url + "x", change, sid=sid) == 404  # not the secret path
    assert await notify(url, change, sid=sid, method="POST") == 405
    assert await notify(url, XML_BOMB, sid=sid) == 400  # entities are refused, not expanded
    assert await notify(url, "<e:propertyset><e:prop", sid=sid) == 400
    assert await notify(url, b"\xff\xfe<\x00", sid=sid) == 400
    assert await notify(url, "<html>not an event</html>", sid=sid) == 400
    assert await notify(url, "x" * (MAX_NOTIFY_BYTES + 1), sid=sid) == 413
    assert await notify(url, change, sid=sid, NT="upnp:other") == 412
    # then each was refused and counted, none was taken for an event, and what is held is unchanged
    assert listener.received == received and listener.early == 0
    assert sum(listener.refused.values()) - refused == 10
    assert listener.held == held
    # and a well-formed event the way some renderers write it (lower-case headers, a byte-order
    # mark) is taken in
    real = await notify_raw(
        url, "\ufeff" + change, {"nt": "upnp:event", "nts": "upnp:propchange", "sid": sid, "seq": "2"}
    )
    assert real == 200 and listener.received == received + 1
    # and the box's own change still gets through
    await box.remote_volume(7)
    await settle(lambda: device.states["volume"].value["level"] == 7, timeout=2)


@pytest.mark.slow
async def test_nobody_on_the_lan_can_write_the_error_log_or_hold_the_listeners_sockets(
    make_gateway, boxes, caplog, monkeypatch
) -> None:
    # given a listener whose idle connections close after 0.3 s
    monkeypatch.setattr(gena, "IDLE_S", 0.3)
    listener, *_, url = (await cable_listener(make_gateway, boxes))[:4]
    host, port = url.split("//")[1].split("/")[0].split(":")
    caplog.set_level(logging.DEBUG)
    # when a LAN host sends requests no HTTP parser accepts
    for junk in (b"NOTIFY /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n", b"\x16\x03\x01\x02\x00\r\n\r\n"):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(junk)
        await writer.drain()
        await reader.read()  # answered 400 and closed
        writer.close()
    # then the gateway logs nothing above debug for them
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    # and a connection that sends nothing is closed, not held
    reader, writer = await asyncio.open_connection(host, int(port))
    assert await asyncio.wait_for(reader.read(), timeout=2) == b""
    writer.close()


@pytest.mark.slow
async def test_a_notify_that_overtakes_its_subscribe_answer_is_taken_and_dropped(make_gateway, boxes) -> None:
    # given the gateway waiting for a box's answer to a SUBSCRIBE
    listener, box, device, url, sid = await cable_listener(make_gateway, boxes)
    listener.subscribing["127.0.0.1"] += 1
    received, refused = listener.received, sum(listener.refused.values())
    # when the box's first NOTIFY, with the SID its answer will carry, comes first
    status = await notify(url, PROPERTY_SET.format(""), sid="uuid:in-the-answer")
    # then it is answered 200 (a 412 makes some renderers cancel the subscription), and dropped
    assert status == 200 and listener.early == 1
    assert (listener.received, sum(listener.refused.values())) == (received, refused)
    # and from another address, or with no SUBSCRIBE on its way, it is refused as before
    assert await notify(url, PROPERTY_SET.format(""), sid="uuid:in-the-answer", source="127.0.0.2") == 412
    listener.subscribing["127.0.0.1"] -= 1
    assert await notify(url, PROPERTY_SET.format(""), sid="uuid:in-the-answer") == 412


@contextlib.asynccontextmanager
async def fast_listener(box: DialBox) -> AsyncIterator[tuple[GenaListener, Any]]:
    """A listener that looks for due renewals every 0.05 s, retries after 0.2 s and asks for 1 s;
    and the box's RenderingControl, as a control point reads it from the box's description."""
    listener = GenaListener(
        limits=Limits(timeout_s=0.5),
        log=logging.getLogger("test"),
        subscription_s=1,
        tick_s=0.05,
        retry_s=0.2,
    )
    await listener.async_start()
    try:
        async with aiohttp.ClientSession() as session:
            device = await UpnpFactory(BoundedUpnpRequester(session, Limits())).async_create_device(box.url)
            yield listener, device.service(RCS)
    finally:
        await listener.async_stop()


@pytest.mark.slow
async def test_a_rebooted_box_is_subscribed_afresh_and_a_removed_one_unsubscribed(boxes) -> None:
    box: DialBox = await boxes("broadcast", "h1-tv")
    async with fast_listener(box) as (listener, rc):
        events: list[int] = []
        listener.watch(rc, lambda: events.append(1))
        await settle(lambda: rc.event_sub_url in listener.held, timeout=2)
        first_sid = listener.held[rc.event_sub_url]
        # when the box is unplugged (the renewals go unanswered, the SID is kept) and comes back
        # without the subscription
        await box.async_power_off()
        await asyncio.sleep(0.8)
        assert listener.held[rc.event_sub_url] == first_sid
        await wake.async_wake(box.mac, "127.0.0.1", box.wake_port)
        await settle(lambda: box.screen.power and box.device is not None, timeout=3)
        # then the renewal it refuses becomes a new subscription, and its changes arrive again
        await settle(lambda: listener.held.get(rc.event_sub_url) not in (None, first_sid), timeout=5)
        before = len(events)
        await box.remote_volume(33)
        await settle(lambda: len(events) > before, timeout=2)
        # and when the gateway lets go of it, the box is told
        listener.unwatch(rc)
        await settle(lambda: not service(box, RCS)._subscribers, timeout=2)


@pytest.mark.slow
async def test_a_box_that_does_not_answer_its_first_subscribe_is_asked_again(boxes) -> None:
    box: DialBox = await boxes("broadcast", "h1-tv")
    async with fast_listener(box) as (listener, rc):
        # given a box that is off when the gateway first asks for its events
        await box.async_power_off()
        listener.watch(rc, lambda: None)
        await asyncio.sleep(0.5)
        assert rc.event_sub_url not in listener.held
        # when it is back
        await wake.async_wake(box.mac, "127.0.0.1", box.wake_port)
        # then a later try takes the subscription out
        await settle(lambda: rc.event_sub_url in listener.held, timeout=5)
        # (settled too: a 1 s subscription the box saw lapse under load is renewed or taken out again)
        await settle(lambda: len(service(box, RCS)._subscribers) == 1, timeout=5)
    # and a stopped listener takes nothing more out
    listener.watch(rc, lambda: None)
    assert listener.held == {} and listener.callback_urls == []


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("gateway.local", "not an IP address"),
        ("300.1.1.1", "not an IP address"),
        ("0.0.0.0", "cannot call back"),
        ("239.255.255.250", "cannot call back"),
    ],
)
def test_the_callback_host_must_be_an_address_a_box_can_call(host: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        GenaListener(limits=Limits(), log=logging.getLogger("test"), host=host)
