"""Changing channels on a cable box: as few exchanges as AVTransport allows, confirmed all the same."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from linli.sim.dial_box import DialBox
from tests.stb.boxes import home_with_tv, stb_gateway

#: How each MediaRenderer version is read back: AVTransport:2 in one action, :1 in two.
READS = {2: {"GetStateVariables"}, 1: {"GetTransportInfo", "GetMediaInfo"}}


@pytest.fixture(params=[2, 1], ids=["MediaRenderer-2", "MediaRenderer-1"])
async def cable_box(request: pytest.FixtureRequest) -> AsyncIterator[DialBox]:
    box = DialBox(name="h1-tv", upnp_version=request.param)
    await box.async_start()
    yield box
    await box.async_stop()


async def test_a_playing_cable_box_changes_channel_with_one_action_and_a_stopping_one_still_plays(
    make_gateway, cable_box
) -> None:
    # given a cable box that shows nothing yet
    gateway = await stb_gateway(make_gateway)
    box = cable_box
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
    # read back in one action where the box has GetStateVariables, else two
    reads, other = READS[box.upnp_version], set().union(*READS.values()) - READS[box.upnp_version]
    assert all(box.soap_actions[action] >= 2 for action in reads)
    assert not any(box.soap_actions[action] for action in other)
    # and a box that stops on a new URI, against the spec, is seen stopped and told to play
    box.stops_on_new_uri = True
    assert (await tune(3))["lcn"] == 3
    assert box.screen.channel is not None and box.screen.channel["lcn"] == 3
    assert box.soap_actions["Play"] == 2
    # from then on it gets its Play with every change
    assert (await tune(5))["lcn"] == 5
    assert box.screen.channel["lcn"] == 5 and box.soap_actions["Play"] == 3
