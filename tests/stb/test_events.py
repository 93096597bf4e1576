"""A cable box's own changes reach the gateway as UPnP events (GENA); its listener lets in nothing else."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest
from async_upnp_client.client_factory import UpnpFactory

from adapters.sim.dial_box import XML_BOMB, DialBox
from gateway.stb import wake
from gateway.stb.gena import MAX_NOTIFY_BYTES, GenaListener
from gateway.stb.http import BoundedUpnpRequester, Limits
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


async def test_a_hostile_notify_is_refused_and_kept_nowhere(make_gateway, boxes) -> None:
    # given a cable box whose changes the gateway listens to
    gateway = await stb_gateway(make_gateway)
    box = await boxes("broadcast", "h1-tv")
    device = await home_with_tv(gateway, "h1", box)
    listener: GenaListener = gateway.components["adapters"].adapter("stb_broadcast").events  # type: ignore[attr-defined]
    [url] = listener.callback_urls
    sid = next(iter(listener.by_sid))
    handler = listener.by_sid[sid].endpoint.handler
    change = PROPERTY_SET.format("&lt;Event/&gt;")
    await asyncio.sleep(1.1)
    received, refused = listener.received, sum(listener.refused.values())
    # when the LAN sends it what a box would not
    assert await notify(url, change, sid="uuid:not-ours") == 412  # a SID nobody gave out
    assert await notify(url, change, sid=sid, source="127.0.0.2") == 412  # a real SID, from another host
    assert await notify(url + "x", change, sid=sid) == 404  # not the secret path
    assert await notify(url, change, sid=sid, method="POST") == 405
    assert await notify(url, XML_BOMB, sid=sid) == 400  # entities are refused, not expanded
    assert await notify(url, "<e:propertyset><e:prop", sid=sid) == 400
    assert await notify(url, b"\xff\xfe<\x00", sid=sid) == 400
    assert await notify(url, "x" * (MAX_NOTIFY_BYTES + 1), sid=sid) == 413
    assert await notify(url, change, sid=sid, NT="upnp:other") == 412
    # then each was refused, counted, and nothing of them kept for later
    assert listener.received == received
    assert sum(listener.refused.values()) - refused == 9
    assert handler._backlog == {}
    # and a well-formed event the way some renderers write it (lower-case headers, a byte-order
    # mark) is taken in
    real = await notify_raw(
        url, "\ufeff" + change, {"nt": "upnp:event", "nts": "upnp:propchange", "sid": sid, "seq": "2"}
    )
    assert real == 200 and listener.received == received + 1
    # and the box's own change still gets through
    await box.remote_volume(7)
    await settle(lambda: device.states["volume"].value["level"] == 7, timeout=2)


async def test_a_rebooted_box_is_subscribed_afresh_and_a_removed_one_unsubscribed(boxes) -> None:
    # given a listener that renews every 0.2 s what it holds for 1 s
    box: DialBox = await boxes("broadcast", "h1-tv")
    limits = Limits(timeout_s=1)
    listener = GenaListener(limits=limits, log=logging.getLogger("test"), renew_every_s=0.2, subscription_s=1)
    await listener.async_start()
    async with aiohttp.ClientSession() as session:
        device = await UpnpFactory(BoundedUpnpRequester(session, limits)).async_create_device(box.url)
        rc = device.service(RCS)
        events: list[int] = []
        await listener.async_subscribe(rc, lambda: events.append(1))
        first_sid = listener.by_sid and next(iter(listener.by_sid))
        # when the box is unplugged and comes back without the subscription
        await box.async_power_off()
        await wake.async_wake(box.mac, "127.0.0.1", box.wake_port)
        await settle(lambda: box.screen.power and box.device is not None, timeout=3)
        # then the renewal that it refuses becomes a new subscription, and its changes arrive again
        await settle(lambda: listener.by_sid and next(iter(listener.by_sid)) != first_sid, timeout=3)
        before = len(events)
        await box.remote_volume(33)
        await settle(lambda: len(events) > before, timeout=2)
        # and when the gateway lets go of it, the box is told
        listener.unsubscribe(rc)
        await settle(lambda: not service(box, RCS)._subscribers, timeout=2)
    await listener.async_stop()


@pytest.mark.parametrize("host", ["gateway.local", "300.1.1.1"])
def test_the_callback_host_must_be_an_address(host: str) -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        GenaListener(limits=Limits(), log=logging.getLogger("test"), host=host)
