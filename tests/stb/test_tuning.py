"""Changing channels on a cable box: as few exchanges as AVTransport allows, confirmed all the same."""

from __future__ import annotations

from adapters.sim.dial_box import DialBox
from tests.stb.boxes import home_with_tv, stb_gateway


async def test_a_playing_cable_box_changes_channel_with_one_action_and_a_stopping_one_still_plays(
    make_gateway, boxes
) -> None:
    # given a cable box that shows nothing yet
    gateway = await stb_gateway(make_gateway)
    box: DialBox = await boxes("broadcast", "h1-tv")
    device = await home_with_tv(gateway, "h1", box)

    async def tune(lcn: int) -> dict:  # type: ignore[type-arg]
        result = await gateway.commands.async_send(device.id, "channel", {"action": "tune", "lcn": lcn})
        return result["state"]  # type: ignore[no-any-return]

    # when it is first tuned, it is given the channel and told to play
    assert (await tune(1))["lcn"] == 1
    assert box.screen.channel is not None and box.screen.channel["lcn"] == 1
    assert box.soap_actions["SetAVTransportURI"] == 1 and box.soap_actions["Play"] == 1
    # then, playing, a change is one SetAVTransportURI (the transport stays PLAYING), read back
    assert (await tune(2))["lcn"] == 2
    assert box.screen.channel["lcn"] == 2
    assert box.soap_actions["SetAVTransportURI"] == 2 and box.soap_actions["Play"] == 1
    assert box.soap_actions["GetTransportInfo"] >= 2 and box.soap_actions["GetMediaInfo"] >= 2
    # and a box that stops on a new URI, against the spec, is seen stopped and told to play
    box.stops_on_new_uri = True
    assert (await tune(3))["lcn"] == 3
    assert box.screen.channel is not None and box.screen.channel["lcn"] == 3
    assert box.soap_actions["Play"] == 2
    # from then on it gets its Play with every change
    assert (await tune(5))["lcn"] == 5
    assert box.screen.channel["lcn"] == 5 and box.soap_actions["Play"] == 3
