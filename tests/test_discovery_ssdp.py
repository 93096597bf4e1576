"""SSDP / UPnP / DIAL with real packets on loopback multicast and description servers on 127.0.0.1.

Each test uses its own SSDP port (tests/discovering.py), so parallel runs never
hear each other. The boxes are linli/sim/upnp_box.py: async-upnp-client's
server side (NOTIFY, byebye, M-SEARCH answers) and an aiohttp description
server, replaced by hostile ones where a test says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from linli.gateway.discovery import (
    Adoption,
    InboxError,
    InboxItem,
    InboxStatus,
    matches_declaration,
)
from linli.gateway.registry import Device
from linli.sim.upnp_box import SimUpnpDevice
from tests.brokers import settle
from tests.discovering import inbox_of, item_for, rejected_view, start

MEDIA_RENDERER = "urn:schemas-upnp-org:device:MediaRenderer:1"
RENDERER_SERVICES = (
    "urn:schemas-upnp-org:service:AVTransport:1",
    "urn:schemas-upnp-org:service:RenderingControl:1",
)

BoxFactory = Callable[..., Awaitable[SimUpnpDevice]]


@pytest.fixture
async def boxes() -> AsyncIterator[BoxFactory]:
    """Start simulated UPnP devices; each stops (byebye) at the end of the test."""
    started: list[SimUpnpDevice] = []

    async def factory(gateway, **kwargs) -> SimUpnpDevice:  # type: ignore[no-untyped-def]
        kwargs.setdefault("udn", f"uuid:{uuid.uuid4()}")
        kwargs.setdefault("device_type", MEDIA_RENDERER)
        kwargs.setdefault("friendly_name", "Living room TV")
        kwargs.setdefault("manufacturer", "Acme")
        kwargs.setdefault("model_name", "TV 55")
        box = SimUpnpDevice(ssdp_port=gateway.config["discovery"]["ssdp"]["port"], **kwargs)
        await box.async_start()
        started.append(box)
        return box

    yield factory
    for box in started:
        with contextlib.suppress(Exception):
            await box.async_stop()


def key_of(box: SimUpnpDevice) -> str:
    return "uuid:" + box.udn.removeprefix("uuid:").replace("-", "")


async def test_dial_set_top_box_is_recognised_with_its_application_url(make_gateway, boxes) -> None:
    gateway = await start(make_gateway, "ssdp")
    inbox = inbox_of(gateway)
    # when a cable set-top box announces itself (NOTIFY alive) with DIAL and DLNA rendering
    box = await boxes(
        gateway,
        friendly_name="客厅有线机顶盒",
        manufacturer="Acme Cable",
        model_name="DVB-C HD 9",
        firmware="3.2.1",
        services=RENDERER_SERVICES,
        dial=True,
    )
    item = await item_for(inbox, key_of(box))
    # then the inbox knows what it is and how to reach its DIAL server
    assert item.status is InboxStatus.PENDING
    assert (item.name, item.manufacturer, item.model, item.firmware) == (
        "客厅有线机顶盒",
        "Acme Cable",
        "DVB-C HD 9",
        "3.2.1",
    )
    details = item.sources["ssdp"].announcement.details
    assert details["categories"] == ["set_top_box", "dial", "dlna_renderer"]
    assert details["application_url"] == f"http://127.0.0.1:{box.port}/apps/"
    assert details["boot_id"] == "1"
    assert {c.kind for c in item.capabilities} == {"app", "media", "volume"}
    assert item.address == f"127.0.0.1:{box.port}"


@pytest.mark.slow
async def test_device_that_only_answers_searches_is_found_within_the_first_m_search_round(
    make_gateway, boxes
) -> None:
    # given a renderer that never NOTIFYs, only answers M-SEARCH (within MX = 1 s)
    gateway = await start(make_gateway, "ssdp")
    box = await boxes(gateway, announce=False, services=RENDERER_SERVICES)
    started = time.monotonic()
    # when the gateway searches (it does at start, periodically, and on demand)
    assert gateway.components["discovery"].async_scan()
    item = await item_for(inbox_of(gateway), key_of(box), timeout=3.0)
    # then it is in the inbox within the round (MX) plus the description fetch
    assert time.monotonic() - started < 1.0 + 1.0
    assert item.category == "dlna_renderer"


async def test_byebye_makes_it_unavailable_and_a_new_bootid_refreshes_it(make_gateway, boxes) -> None:
    gateway = await start(make_gateway, "ssdp")
    inbox = inbox_of(gateway)
    box = await boxes(gateway, firmware="1.0.0", dial=True)
    item = await item_for(inbox, key_of(box))
    assert item.firmware == "1.0.0"
    # when the box reboots into new firmware: byebye, then alive with the next BOOTID
    requests = box.requests
    await box.async_reboot(firmware="1.1.0")
    await settle(lambda: item.firmware == "1.1.0")
    assert box.requests == requests + 1  # the new BOOTID made the gateway read the description again
    assert item.sources["ssdp"].announcement.details["boot_id"] == "2"
    assert item.available
    # when it goes away for good
    await box.async_stop()
    await settle(lambda: not item.available)
    assert item.sources["ssdp"].gone_reason == "ssdp:byebye"
    assert inbox.get(item.id) is item


# -- hostile descriptions: each rejected with a reason, the next device still found --

ENTITY_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE root [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<root xmlns="urn:schemas-upnp-org:device-1-0"><device>
 <deviceType>urn:schemas-upnp-org:device:MediaRenderer:1</deviceType>
 <friendlyName>&lol9;</friendlyName><UDN>uuid:00000000-0000-0000-0000-000000000000</UDN>
</device></root>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE root [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<root xmlns="urn:schemas-upnp-org:device-1-0"><device>
 <deviceType>urn:schemas-upnp-org:device:MediaRenderer:1</deviceType>
 <friendlyName>&xxe;</friendlyName><manufacturer>Evil</manufacturer>
</device></root>"""


def serving(body: bytes) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="text/xml")

    return handler


async def never_answering(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(30)  # the gateway gives up long before; the box's stop cancels this
    return web.Response(status=204)


async def fifty_megabytes(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/xml"})  # chunked: no length declared
    await response.prepare(request)
    chunk = b"<!-- " + b"x" * (1024 * 1024 - 9) + b" -->"
    with contextlib.suppress(ConnectionError):
        await response.write(b'<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0">')
        for _ in range(50):
            await response.write(chunk)
    return response


async def _hostile_description_is_rejected(
    make_gateway, boxes, caplog, handler: Callable[[web.Request], Awaitable[web.StreamResponse]], reason: str
) -> list[dict]:
    gateway = await start(make_gateway, "ssdp")
    inbox = inbox_of(gateway)
    # when a hostile device announces itself, and then an honest one
    hostile = await boxes(gateway, friendly_name="Hostile", description=handler)
    honest = await boxes(gateway, friendly_name="Honest TV", services=RENDERER_SERVICES)
    # then the honest one is found, and discovery goes on
    assert (await item_for(inbox, key_of(honest))).name == "Honest TV"
    # and the hostile one is in the rejected view with the reason, and in the log
    await settle(lambda: inbox.find(key_of(hostile)) is not None, timeout=5)
    rejected = [r for r in await rejected_view(gateway) if key_of(hostile) in r["keys"]]
    assert rejected and reason in rejected[0]["reason"], rejected
    assert rejected[0]["address"] == f"127.0.0.1:{hostile.port}"
    assert any(reason in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    return rejected


async def test_description_with_an_entity_bomb_is_rejected(make_gateway, boxes, caplog) -> None:
    await _hostile_description_is_rejected(
        make_gateway, boxes, caplog, serving(ENTITY_BOMB), "EntitiesForbidden"
    )


@pytest.mark.slow
async def test_description_with_an_external_entity_is_rejected(make_gateway, boxes, caplog) -> None:
    rejected = await _hostile_description_is_rejected(
        make_gateway, boxes, caplog, serving(EXTERNAL_ENTITY), "EntitiesForbidden"
    )
    assert "root:" not in str(rejected)  # nothing of /etc/passwd was read


@pytest.mark.slow
async def test_description_url_that_never_answers_is_rejected(make_gateway, boxes, caplog) -> None:
    await _hostile_description_is_rejected(
        make_gateway, boxes, caplog, never_answering, "did not arrive within 1 s"
    )


async def test_description_of_fifty_megabytes_is_rejected(make_gateway, boxes, caplog) -> None:
    await _hostile_description_is_rejected(
        make_gateway, boxes, caplog, fifty_megabytes, "over the 65536-byte limit"
    )


async def test_an_adapter_adopts_the_set_top_boxes_its_manifest_declares(make_gateway, boxes) -> None:
    # given an adapter that declares DIAL boxes (as a manifest's discovery block does)
    gateway = await start(make_gateway, "ssdp")
    await _household(gateway)
    inbox = inbox_of(gateway)
    declared = {"ssdp": [{"st": "urn:dial-multiscreen-org:service:dial:1"}]}
    adopted: list[tuple[str, str]] = []

    async def adopt(item: InboxItem, adoption: Adoption) -> Device:
        location = item.sources["ssdp"].announcement.details["location"]
        adopted.append((location, adoption.by))
        return await gateway.registry.async_add_device(
            adoption.device_id or "h1-stb",
            household_id=adoption.household_id,
            name=adoption.name or item.name,
            room=adoption.room,
            profile_id="linli/sos-pendant",  # any loaded profile: the adapter's own in real life
            topic=f"stb/{item.id}",
            unique_id=item.keys[0],
        )

    inbox.register_adopter("stb_test", lambda item: matches_declaration(item, declared), adopt)
    box = await boxes(gateway, friendly_name="客厅机顶盒", dial=True, services=RENDERER_SERVICES)
    tv = await boxes(gateway, friendly_name="Plain TV", services=RENDERER_SERVICES)
    item = await item_for(inbox, key_of(box))
    tv_item = await item_for(inbox, key_of(tv))
    assert inbox.adopter_for(item) == "stb_test" and inbox.adopter_for(tv_item) is None
    # when an installer approves it
    device = await inbox.async_approve(item.id, household_id="h1", by="li.installer", room="客厅")
    # then the adapter adopted it, by its description URL, and the decision names both
    assert adopted == [(box.location, "li.installer")]
    assert (device.household_id, device.room, item.status) == ("h1", "客厅", InboxStatus.APPROVED)
    decision = next(d for d in await inbox.async_decisions(item.id) if d.action == "approved")
    assert decision.detail["adapter"] == "stb_test"
    # and a plain TV nobody claims cannot be approved, with a clear reason
    with pytest.raises(InboxError) as refused:
        await inbox.async_approve(tv_item.id, household_id="h1", by="li.installer", profile_id="linli/scale")
    assert refused.value.code == "not_adoptable"


async def _household(gateway) -> None:  # type: ignore[no-untyped-def]
    registry = gateway.registry
    await registry.async_add_building("b1", "1号楼")
    await registry.async_add_unit("u-h1", "b1", "101")
    await registry.async_add_household("h1", "u-h1", "h1 home")
