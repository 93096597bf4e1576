"""Casting from a phone: the household's TV is a DLNA renderer, whichever operator's box is behind it.

The phone here is async-upnp-client's client side — the DLNA profile (`DmrDevice`),
its SSDP search and advertisement listeners, and its event handler with a notify
server on 127.0.0.1 — as a DLNA app uses it. SSDP goes to a private port on
loopback multicast (tests/discovering.py), so parallel runs never hear each other.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from async_upnp_client.advertisement import SsdpAdvertisementListener
from async_upnp_client.aiohttp import AiohttpNotifyServer, AiohttpRequester
from async_upnp_client.client import UpnpDevice
from async_upnp_client.client_factory import UpnpFactory
from async_upnp_client.profiles.dlna import DmrDevice, TransportState
from async_upnp_client.search import async_search
from async_upnp_client.utils import CaseInsensitiveDict

from linli.gateway.registry import Device
from linli.gateway.runtime import Gateway
from linli.sim.box import SimBox
from tests.brokers import settle
from tests.discovering import DISCOVERY, free_udp_port
from tests.homes import add_home
from tests.stb.boxes import OPERATORS, STB_COMPONENTS, adopt, stb_gateway

MEDIA_RENDERER = "urn:schemas-upnp-org:device:MediaRenderer:1"
AV_TRANSPORT = "urn:schemas-upnp-org:service:AVTransport:1"
VIDEO = "http://127.0.0.1:9/phone/album/birthday.mp4"


async def cast_gateway(make_gateway: Any, **cast: Any) -> Gateway:
    """A gateway with both STB adapters and the cast renderers, SSDP on a private loopback port."""
    settings = {"port": 0, "interfaces": ["127.0.0.1"], "ssdp": {"port": free_udp_port()}, **cast}
    return await stb_gateway(
        make_gateway, components=[*STB_COMPONENTS, "linli.services.screens.cast:CastRenderers"], cast=settings
    )


async def li_family(gateway: Gateway, box: SimBox, household: str = "h1", name: str = "李家") -> Device:
    """The household 李家 with this box as the TV in its living room (客厅)."""
    await add_home(gateway, household, devices={})
    await gateway.registry.async_rename("household", household, name)
    return await adopt(gateway, household, box, room="客厅")


def description_url(gateway: Gateway, household: str = "h1") -> str:
    return f"{gateway.components['cast'].url}/cast/{household}/description.xml"  # type: ignore[attr-defined]


def ssdp_target(gateway: Gateway) -> tuple[str, int]:
    return ("239.255.255.250", gateway.config["cast"]["ssdp"]["port"])


async def phone(url: str) -> tuple[UpnpDevice, DmrDevice]:
    device = await UpnpFactory(AiohttpRequester()).async_create_device(url)
    return device, DmrDevice(device, None)


async def search(gateway: Gateway, search_target: str) -> list[CaseInsensitiveDict]:
    """What a phone's M-SEARCH for `search_target` brings back within a second."""
    answers: list[CaseInsensitiveDict] = []

    async def on_answer(headers: CaseInsensitiveDict) -> None:
        answers.append(headers)

    await async_search(
        on_answer,
        timeout=1,
        search_target=search_target,
        source=("127.0.0.1", 0),
        target=ssdp_target(gateway),
    )
    return answers


@pytest.fixture
async def listening_phone() -> AsyncIterator[Any]:
    """A phone's event handler: a notify server on 127.0.0.1 that DmrDevice subscribes with."""
    servers: list[AiohttpNotifyServer] = []

    async def make(device: UpnpDevice) -> DmrDevice:
        server = AiohttpNotifyServer(AiohttpRequester(), source=("127.0.0.1", 0))
        await server.async_start_server()
        servers.append(server)
        renderer = DmrDevice(device, server.event_handler)
        await renderer.async_subscribe_services(auto_resubscribe=False)
        return renderer

    yield make
    for server in servers:
        await server.event_handler.async_unsubscribe_all()
        await server.async_stop_server()


@pytest.mark.parametrize("operator", OPERATORS)
async def test_a_phone_casts_a_video_to_the_household_tv(make_gateway, boxes, operator) -> None:
    # given 李家, whose living-room TV box is this operator's, and the gateway's cast renderers
    gateway = await cast_gateway(make_gateway)
    box = await boxes(operator, "h1-tv")
    await li_family(gateway, box)
    # when a phone's cast button opens the renderer and sends a video, the way DLNA apps do
    device, renderer = await phone(description_url(gateway))
    metadata = await renderer.construct_play_media_metadata(
        VIDEO,
        "生日快乐",
        override_mime_type="video/mp4",
        override_upnp_class="object.item.videoItem",
        override_dlna_features="*",
    )
    await renderer.async_set_transport_uri(VIDEO, "生日快乐", metadata)
    await renderer.async_play()
    # then the household's own box plays it, with its title
    assert (box.screen.media_url, box.screen.media_state) == (VIDEO, "playing")
    # and the phone's volume slider and pause button work too
    await renderer.async_set_volume_level(0.42)
    assert box.screen.volume == 42
    await renderer.async_pause()
    assert box.screen.media_state == "paused"
    await renderer.async_update()
    assert renderer.transport_state is TransportState.PAUSED_PLAYBACK
    # and the phone shows the TV by the family's and the room's names, never an id
    assert device.friendly_name == "李家 · 客厅电视"
    assert device.serial_number in (None, "")


@pytest.mark.parametrize("operator", OPERATORS)
async def test_stop_then_play_plays_again_on_either_operators_box(make_gateway, boxes, operator) -> None:
    # given a video cast and playing on this operator's box
    gateway = await cast_gateway(make_gateway)
    box = await boxes(operator, "h1-tv")
    await li_family(gateway, box)
    _, renderer = await phone(description_url(gateway))
    await renderer.async_set_transport_uri(VIDEO, "生日快乐")
    await renderer.async_play()
    assert box.screen.media_state == "playing"
    # when the phone presses Stop, then Play
    await renderer.async_stop()
    assert box.screen.media_state == "stopped"
    await renderer.async_play()
    # then the box plays the same video again (it did not on a cable box: success, and stopped)
    assert (box.screen.media_url, box.screen.media_state) == (VIDEO, "playing")
    await renderer.async_update()
    assert renderer.transport_state is TransportState.PLAYING


@pytest.mark.slow
async def test_a_phone_app_finds_the_renderer_by_ssdp_and_hears_it_leave(make_gateway, boxes) -> None:
    # given a phone listening for SSDP announcements, and a gateway with the cast renderers
    gateway = await cast_gateway(make_gateway, ssdp={"port": free_udp_port()})
    alive: list[CaseInsensitiveDict] = []
    gone: list[CaseInsensitiveDict] = []

    async def on_alive(headers: CaseInsensitiveDict) -> None:
        alive.append(headers)

    async def on_byebye(headers: CaseInsensitiveDict) -> None:
        gone.append(headers)

    listener = SsdpAdvertisementListener(
        async_on_alive=on_alive,
        async_on_byebye=on_byebye,
        source=("127.0.0.1", 0),
        target=ssdp_target(gateway),
    )
    await listener.async_start()
    try:
        # when 李家's TV box is adopted
        box = await boxes("broadcast", "h1-tv")
        tv = await li_family(gateway, box)
        # then its renderer says it is alive, as a MediaRenderer with AVTransport, at once
        await settle(lambda: {h.get("NT") for h in alive} >= {MEDIA_RENDERER, AV_TRANSPORT}, timeout=3)
        location = next(h["LOCATION"] for h in alive if h.get("NT") == MEDIA_RENDERER)
        assert location == description_url(gateway)
        device, _ = await phone(location)
        assert device.friendly_name == "李家 · 客厅电视"
        udn = device.udn
        # and a phone that searches finds it by every name a DLNA app searches for
        for target in ("upnp:rootdevice", MEDIA_RENDERER, AV_TRANSPORT, udn):
            answers = await search(gateway, target)
            assert [a["LOCATION"] for a in answers] == [location], target
            assert answers[0]["USN"].startswith(udn)
        # when the TV box is removed from the household
        await gateway.registry.async_remove_device(tv.id)
        # then the renderer says goodbye, and a search no longer finds it
        await settle(lambda: any(h.get("NT") == MEDIA_RENDERER for h in gone), timeout=3)
        assert await search(gateway, MEDIA_RENDERER) == []
    finally:
        await listener.async_stop()


@pytest.mark.slow
@pytest.mark.parametrize("operator", OPERATORS)
async def test_the_phone_hears_every_change_of_the_tv_as_lastchange(
    make_gateway, boxes, listening_phone, operator
) -> None:
    # given a phone subscribed to 李家's renderer (a box at volume 20, nothing playing)
    gateway = await cast_gateway(make_gateway)
    box = await boxes(operator, "h1-tv")
    await li_family(gateway, box)
    device, _ = await phone(description_url(gateway))
    renderer = await listening_phone(device)
    # then the initial event already says what the TV is doing (it was empty before)
    await settle(lambda: renderer.volume_level == 0.2, timeout=2)
    assert renderer.is_volume_muted is False
    assert renderer.transport_state is TransportState.NO_MEDIA_PRESENT
    # when someone turns the volume up with the box's own remote
    await box.remote_volume(61)
    # then the phone's slider follows, from a LastChange event (no polling here)
    await settle(lambda: renderer.volume_level == 0.61, timeout=3)
    # and when the phone's video plays, and is stopped, the phone hears each
    await renderer.async_set_transport_uri(VIDEO, "生日快乐")
    await settle(lambda: renderer.current_track_uri == VIDEO, timeout=2)
    await renderer.async_play()
    await settle(lambda: renderer.transport_state is TransportState.PLAYING, timeout=3)
    await renderer.async_stop()
    await settle(lambda: renderer.transport_state is TransportState.STOPPED, timeout=3)
    # and the events are the proper LastChange document of each service
    last_change = device.service(AV_TRANSPORT).state_variable("LastChange").value
    assert last_change.startswith('<Event xmlns="urn:schemas-upnp-org:metadata-1-0/AVT/">')
    assert '<TransportState val="STOPPED"/>' in last_change


async def get(url: str, *, source: str = "127.0.0.1", method: str = "GET", **headers: str) -> tuple[int, str]:
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.request(method, url, headers=headers) as response:
            return response.status, await response.text()


def names(listing: str) -> list[str]:
    return [item["name"] for item in json.loads(listing)["items"]]


@pytest.mark.slow
async def test_a_renderer_answers_only_its_household_network_or_a_paired_phone(make_gateway, boxes) -> None:
    # given two households: 李家 on 127.0.0.1 (its segment), 王家 on a VLAN the test is not on
    gateway = await cast_gateway(
        make_gateway, allowed_networks={"*": ["10.20.0.0/16"], "h1": ["127.0.0.1/32"]}
    )
    await li_family(gateway, await boxes("carrier", "h1-tv"), "h1", "李家")
    await li_family(gateway, await boxes("broadcast", "h2-tv"), "h2", "王家")
    cast = gateway.components["cast"]
    listing = f"{cast.url}/cast/"  # type: ignore[attr-defined]
    # when 李家's own segment asks, it sees and reaches only its own renderer
    status, body = await get(listing)
    assert status == 200 and names(body) == ["李家 · 客厅电视"] and "h2" not in body
    assert (await get(description_url(gateway, "h1")))[0] == 200
    assert (await get(description_url(gateway, "h2")))[0] == 404
    # and a search from there finds only 李家's TV
    answers = await search(gateway, MEDIA_RENDERER)
    assert [a["LOCATION"] for a in answers] == [description_url(gateway, "h1")]
    # when a stranger asks (127.0.0.2 is on no household's list)
    status, body = await get(listing, source="127.0.0.2")
    # then nothing is listed and nothing answers, as for a household that does not exist
    assert status == 200 and json.loads(body) == {"items": [], "total": 0}
    for household in ("h1", "h2", "nobody"):
        assert (await get(description_url(gateway, household), source="127.0.0.2"))[0] == 404
    control = f"{cast.url}/cast/h1/upnp/control/AVTransport"  # type: ignore[attr-defined]
    assert (await get(control, source="127.0.0.2", method="POST"))[0] == 404
    # when 王家 pairs a phone at 127.0.0.2
    cast.pair("h2", "127.0.0.2")  # type: ignore[attr-defined]
    # then that phone reaches 王家's renderer, and only it
    status, body = await get(listing, source="127.0.0.2")
    assert names(body) == ["王家 · 客厅电视"]
    assert (await get(description_url(gateway, "h2"), source="127.0.0.2"))[0] == 200
    assert (await get(description_url(gateway, "h1"), source="127.0.0.2"))[0] == 404
    # and unpaired, it is a stranger again
    cast.unpair("h2", "127.0.0.2")  # type: ignore[attr-defined]
    assert (await get(description_url(gateway, "h2"), source="127.0.0.2"))[0] == 404


async def test_events_go_only_to_the_subscriber_itself(make_gateway, boxes) -> None:
    # given 李家's renderer
    gateway = await cast_gateway(make_gateway)
    await li_family(gateway, await boxes("carrier", "h1-tv"))
    events = f"{gateway.components['cast'].url}/cast/h1/upnp/event/RenderingControl"  # type: ignore[attr-defined]
    # when a subscriber asks for NOTIFYs to be sent to another address, or to several
    for callback in (
        "<http://127.0.0.9:9/cb>",
        "<http://localhost:9/cb>",
        "<http://127.0.0.1:9/a><http://127.0.0.1:9/b>",
    ):
        status, _ = await get(events, method="SUBSCRIBE", CALLBACK=callback, NT="upnp:event")
        # then it is refused: the gateway sends nothing anywhere on a stranger's say-so
        assert status == 412, callback
    # and a subscriber at its own address is taken (the NOTIFY to the closed port is its loss)
    status, _ = await get(events, method="SUBSCRIBE", CALLBACK="<http://127.0.0.1:9/cb>", NT="upnp:event")
    assert status == 200
    await asyncio.sleep(0.1)


SOAP = (
    '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>{}</s:Body></s:Envelope>'
)
RCS_NS = "urn:schemas-upnp-org:service:RenderingControl:1"
BOMB = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><r>&c;</r>'
)


async def test_hostile_control_requests_get_a_clear_error_and_the_renderer_keeps_working(
    make_gateway, boxes
) -> None:
    # given 李家's renderer in front of a cable box
    gateway = await cast_gateway(make_gateway)
    box = await boxes("broadcast", "h1-tv")
    await li_family(gateway, box)
    control = f"{gateway.components['cast'].url}/cast/h1/upnp/control/RenderingControl"  # type: ignore[attr-defined]
    set_volume = f'"{RCS_NS}#SetVolume"'

    async def post(body: str, action: str = set_volume) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session:
            headers = {"SOAPAction": action, "Content-Type": 'text/xml; charset="utf-8"'}
            async with session.post(control, data=body.encode(), headers=headers) as response:
                return response.status, await response.text()

    def volume(value: str, extra: str = "") -> str:
        return SOAP.format(
            f'<u:SetVolume xmlns:u="{RCS_NS}"><InstanceID>0</InstanceID><Channel>Master</Channel>'
            f"<DesiredVolume>{value}</DesiredVolume>{extra}</u:SetVolume>"
        )

    # when a control point sends an XML bomb, a volume that is not a number, one out of range,
    # an argument the action does not have, and an action the service does not have
    answers = [
        await post(BOMB),
        await post(volume("loud")),
        await post(volume("250")),
        await post(volume("30", "<Evil>1</Evil>")),
        await post(volume("30"), action=f'"{RCS_NS}#SelfDestruct"'),
    ]
    # then each is refused, saying why: a 400, or the SOAP fault with a UPnP error code that
    # control points understand (out of range); nothing reaches the box
    assert [status for status, _ in answers] == [400, 400, 500, 400, 400]
    assert "InvalidSoap" in answers[0][1] and "'loud'" in answers[1][1]
    assert "<errorCode>402</errorCode>" in answers[2][1]
    assert "InvalidActionArgument" in answers[3][1] and "InvalidAction" in answers[4][1]
    assert box.screen.volume == 20
    # and a proper request still works
    status, _ = await post(volume("30"))
    assert status == 200 and box.screen.volume == 30


async def test_a_member_lets_a_phone_on_mobile_data_cast_from_the_app(make_gateway, boxes) -> None:
    from aiohttp.test_utils import TestServer

    from linli.gateway.component import ComponentApi
    from linli.portal.app import create_app
    from tests.portal_accounts import add_account

    # given 王家 on a VLAN the phone is not on, and its resident with the app on that phone (127.0.0.2)
    gateway = await cast_gateway(make_gateway, allowed_networks={"*": ["10.20.0.0/16"]})
    await li_family(gateway, await boxes("broadcast", "h2-tv"), "h2", "王家")
    password = await add_account(gateway, "wang.resident", "resident", "h2")
    assert (await get(description_url(gateway, "h2"), source="127.0.0.2"))[0] == 404
    async with TestServer(create_app(ComponentApi(gateway, "portal")), host="127.0.0.1") as server:
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as phone:
            login = await phone.post(
                server.make_url("/api/v1/auth/login"), json={"name": "wang.resident", "password": password}
            )
            csrf = {"X-CSRF-Token": (await login.json())["csrf_token"]}
            # when the resident presses "let this phone cast"
            answer = await phone.post(
                server.make_url("/api/v1/households/h2/cast/pair"), json={}, headers=csrf
            )
            assert answer.status == 200, await answer.text()
            paired = await answer.json()
            # and a neighbour tries the same for 王家 from their own account
            other = await phone.post(
                server.make_url("/api/v1/households/h1/cast/pair"), json={}, headers=csrf
            )
            assert other.status == 404
    # then that phone's address reaches 王家's renderer, which the answer names
    assert paired["address"] == "127.0.0.2" and paired["renderer"] == description_url(gateway, "h2")
    assert (await get(description_url(gateway, "h2"), source="127.0.0.2"))[0] == 200
    audit = await gateway.store.async_read(
        lambda c: c.execute("SELECT actor, target FROM audit WHERE action = 'cast.pair'").fetchall()
    )
    assert audit == [("wang.resident", "127.0.0.2")]


@pytest.mark.slow
async def test_the_gateway_does_not_find_its_own_renderers_in_its_inbox(make_gateway, boxes) -> None:
    from linli.sim.box_announcer import BoxAnnouncer
    from linli.sim.dial_box import DialBox
    from tests.discovering import discovery_config, inbox_of
    from tests.stb.boxes import STB_COMPONENTS

    # given discovery and the cast renderers sharing one SSDP port, as on a real network (1900)
    port = free_udp_port()
    gateway = await stb_gateway(
        make_gateway,
        components=[
            *STB_COMPONENTS,
            *DISCOVERY,
            "linli.services.screens.cast:CastRenderers",
        ],
        cast={"port": 0, "interfaces": ["127.0.0.1"], "ssdp": {"port": port, "announce_s": 1}},
        discovery=discovery_config("ssdp", ssdp={"port": port}),
    )
    # when 李家's renderer is announced, and a neighbour's cable box announces itself on that port too
    await li_family(gateway, await boxes("carrier", "h1-tv"))
    neighbour = DialBox(name="neighbour-box")
    await neighbour.async_start()
    announcer = BoxAnnouncer(neighbour, ssdp_port=port)
    await announcer.async_start()
    try:
        inbox = inbox_of(gateway)
        neighbour_key = "uuid:" + neighbour.udn.removeprefix("uuid:").replace("-", "")
        await settle(lambda: inbox.find(neighbour_key) is not None, timeout=8)
        await asyncio.sleep(1.5)  # more of the renderer's announcement rounds
    finally:
        await announcer.async_stop()
        await neighbour.async_stop()
    # then the box is in the inbox (discovery hears this port), the gateway's own renderer never is
    own = gateway.components["cast"]._renderers["h1"].udn  # type: ignore[attr-defined]
    keys = {k for item in inbox.items.values() for k in item.keys}
    assert "uuid:" + own.removeprefix("uuid:").replace("-", "") not in keys
