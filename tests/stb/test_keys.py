"""Remote keys on both operators' boxes: the same `keys press`, carried by what each box has."""

from __future__ import annotations

from typing import Any

import pytest

from linli.gateway.commands import CommandError
from linli.sim.dial_box import DialBox
from tests.homes import add_home
from tests.stb.boxes import OPERATORS, BoxFactory, adopt, home_with_tv, stb_gateway


async def _press(gateway: Any, device_id: str, *keys: str) -> dict[str, Any]:
    result = await gateway.commands.async_send(device_id, "keys", {"action": "press", "keys": list(keys)})
    return result["state"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("operator", OPERATORS)
async def test_volume_and_media_keys_act_on_either_operators_box(
    make_gateway: Any, boxes: BoxFactory, operator: str
) -> None:
    # given a household's TV of either operator, playing a film at volume 20
    gateway = await stb_gateway(make_gateway)
    box = await boxes(operator, "h1-tv")
    device = await home_with_tv(gateway, "h1", box)
    url = "http://127.0.0.1:9/film.m3u8"
    await gateway.commands.async_send(device.id, "media", {"action": "play", "url": url})
    assert box.screen.volume == 20 and box.screen.media_state == "playing"
    # when the resident presses VOL_UP three times and VOL_DOWN once, in one command
    state = await _press(gateway, device.id, "VOL_UP", "VOL_UP", "VOL_UP", "VOL_DOWN")
    # then the box plays two steps louder, and the state names the keys pressed
    assert box.screen.volume == 22
    assert state == {"last": ["VOL_UP", "VOL_UP", "VOL_UP", "VOL_DOWN"]}
    # and MUTE toggles the box's mute, whatever the gateway last set
    await _press(gateway, device.id, "MUTE")
    assert box.screen.muted is True
    await _press(gateway, device.id, "MUTE")
    assert box.screen.muted is False
    # and the media keys pause, resume and stop the film on the box
    await _press(gateway, device.id, "PAUSE")
    assert box.screen.media_state == "paused"
    await _press(gateway, device.id, "PLAY_PAUSE")
    assert box.screen.media_state == "playing"
    await _press(gateway, device.id, "STOP")
    assert box.screen.media_state == "stopped"


async def test_cable_keys_become_avtransport_renderingcontrol_and_dial_actions(
    make_gateway: Any, boxes: BoxFactory
) -> None:
    # given a cable box showing channel 1 with YouTube launched over DIAL
    gateway = await stb_gateway(make_gateway)
    box = await boxes("broadcast", "h1-tv")
    assert isinstance(box, DialBox)
    device = await home_with_tv(gateway, "h1", box)
    await gateway.commands.async_send(device.id, "channel", {"action": "tune", "lcn": 1})
    # when CH_UP is pressed
    await _press(gateway, device.id, "CH_UP")
    # then the box shows the next channel of the lineup, set over AVTransport
    assert box.screen.channel is not None and box.screen.channel["lcn"] == 2
    assert box.soap_actions["SetAVTransportURI"] == 2
    # and CH_DOWN goes back
    await _press(gateway, device.id, "CH_DOWN")
    assert box.screen.channel["lcn"] == 1
    # and VOL_UP is a RenderingControl read and set: the box's own volume, one step up
    await box.remote_volume(50)  # the resident's own remote, meanwhile
    await _press(gateway, device.id, "VOL_UP")
    assert box.screen.volume == 51
    # and HOME stops the app launched over DIAL
    await gateway.commands.async_send(
        device.id, "app", {"action": "launch", "app": "YouTube", "url": "https://www.youtube.com/tv"}
    )
    assert box.screen.app == "YouTube"
    await _press(gateway, device.id, "HOME")
    assert box.screen.app is None


async def test_a_key_a_cable_box_cannot_press_is_refused_before_any_is_sent(
    make_gateway: Any, boxes: BoxFactory
) -> None:
    # given a cable box without a vendor key injection, at volume 20
    gateway = await stb_gateway(make_gateway)
    box = await boxes("broadcast", "h1-tv")
    device = await home_with_tv(gateway, "h1", box)
    # when a sequence with a navigation key is pressed
    with pytest.raises(CommandError) as refused:
        await _press(gateway, device.id, "VOL_UP", "OK")
    # then the whole command is not_supported, naming the key and what the box lacks
    assert refused.value.code == "not_supported"
    assert "cannot press OK" in refused.value.message and "key injection" in refused.value.message
    # and not even the first key reached the box
    assert box.screen.volume == 20
    # and a carrier box presses the same sequence (equal terms where the box can)
    carrier = await boxes("carrier", "h2-tv")
    other = await home_with_tv(gateway, "h2", carrier)
    await _press(gateway, other.id, "VOL_UP", "OK")
    assert carrier.screen.keys[-2:] == ["VOL_UP", "OK"] and carrier.screen.volume == 21


async def test_a_cable_box_with_vendor_key_injection_gets_every_other_key_that_way(
    make_gateway: Any, boxes: BoxFactory
) -> None:
    # given a cable box whose maker injects keys at POST /keypress/<key>, adopted with that
    box = DialBox(name="h1-tv")
    box.keypress_path = "/keypress"
    await box.async_start()
    try:
        gateway = await stb_gateway(make_gateway)
        await add_home(gateway, "h1", devices={})
        device = await adopt(
            gateway,
            "h1",
            box,
            extra={"key_injection": {"url": "/keypress/{key}", "names": {"OK": "Select"}}},
        )
        # when arrows, OK (the vendor calls it Select) and a digit are pressed, with VOL_UP among them
        await _press(gateway, device.id, "UP", "OK", "DIGIT_5", "VOL_UP")
        # then the others reach the box through its injection, in order, under the vendor's names
        assert box.screen.keys == ["UP", "Select", "DIGIT_5"]
        # and VOL_UP still goes over RenderingControl, confirmed on the box
        assert box.screen.volume == 21
        # and a box whose injection fails says so, as a box error
        box.misbehave = "fault"
        with pytest.raises(CommandError) as failed:
            await _press(gateway, device.id, "LEFT")
        assert failed.value.code == "box_error" and "key injection" in failed.value.message
    finally:
        await box.async_stop()
