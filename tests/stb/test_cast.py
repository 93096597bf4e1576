"""Casting from a phone: the household's TV is a DLNA renderer, whichever operator's box is behind it."""

from __future__ import annotations

import pytest
from async_upnp_client.aiohttp import AiohttpRequester
from async_upnp_client.client_factory import UpnpFactory
from async_upnp_client.profiles.dlna import DmrDevice

from tests.stb.boxes import OPERATORS, STB_COMPONENTS, home_with_tv, stb_gateway


@pytest.mark.parametrize("operator", OPERATORS)
async def test_a_phone_casts_a_video_to_the_household_tv(make_gateway, boxes, operator) -> None:
    # given a household whose TV box is this operator's, and the gateway's cast renderers
    gateway = await stb_gateway(
        make_gateway, components=[*STB_COMPONENTS, "gateway.stb.cast:CastRenderers"], cast={"port": 0}
    )
    box = await boxes(operator, "h1-tv")
    await home_with_tv(gateway, "h1", box)
    url = gateway.components["cast"].url
    # when a phone's cast button finds the renderer and sends a video, the way DLNA apps do
    device = await UpnpFactory(AiohttpRequester()).async_create_device(f"{url}/cast/h1/description.xml")
    renderer = DmrDevice(device, None)
    video = "http://127.0.0.1:9/phone/album/birthday.mp4"
    metadata = await renderer.construct_play_media_metadata(
        video,
        "生日快乐",
        override_mime_type="video/mp4",
        override_upnp_class="object.item.videoItem",
        override_dlna_features="*",
    )
    await renderer.async_set_transport_uri(video, "生日快乐", metadata)
    await renderer.async_play()
    # then the household's own box plays it, with its title
    assert (box.screen.media_url, box.screen.media_state) == (video, "playing")
    # and the phone's volume slider and pause button work too
    await renderer.async_set_volume_level(0.42)
    assert box.screen.volume == 42
    await renderer.async_pause()
    assert box.screen.media_state == "paused"
    await renderer.async_update()
    assert renderer.transport_state is not None and renderer.transport_state.value == "PAUSED_PLAYBACK"
    assert device.friendly_name.endswith("(Linli)")
