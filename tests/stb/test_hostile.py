"""Hostile boxes: whatever a box answers, the gateway stays bounded, says so, and serves other homes."""

from __future__ import annotations

import asyncio
import time

import pytest

from linli.gateway.commands import CommandError
from linli.gateway.stb.fleet import AdoptError
from tests.brokers import settle
from tests.homes import add_home
from tests.stb.boxes import adopt, home_with_tv, stb_gateway, stb_settings

TIMEOUT_S = 0.5

HOSTILE = [
    ("carrier", "malformed", "box_error", "JSON"),
    ("carrier", "fault", "box_error", "JSON-RPC error -32603"),
    ("carrier", "hang", "box_error", "did not finish within 0.5 s"),
    ("carrier", "huge", "box_error", "byte limit"),
    ("broadcast", "malformed", "box_error", "not usable"),
    ("broadcast", "fault", "box_error", "UPnP error 501"),
    ("broadcast", "hang", "box_error", "did not finish within 0.5 s"),
    ("broadcast", "huge", "box_error", "byte limit"),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("operator", "mode", "code", "says"), HOSTILE, ids=[f"{o}-{m}" for o, m, *_ in HOSTILE]
)
async def test_a_hostile_box_is_bounded_and_reported_while_other_homes_are_served(
    make_gateway, boxes, operator, mode, code, says
) -> None:
    # given two homes: h1's box is about to turn hostile, h2's box is well
    gateway = await stb_gateway(
        make_gateway, adapters=stb_settings(timeout_s=TIMEOUT_S, max_answer_bytes=65536)
    )
    bad, good = (
        await boxes(operator, "h1-tv"),
        await boxes("carrier" if operator == "broadcast" else "broadcast"),
    )
    await home_with_tv(gateway, "h1", bad)
    await home_with_tv(gateway, "h2", good)
    bad.misbehave = mode
    command = ("volume", {"action": "set", "level": 33})

    async def hostile() -> tuple[CommandError, float]:
        started = time.perf_counter()
        with pytest.raises(CommandError) as raised:
            await gateway.commands.async_send("h1-tv", *command)
        return raised.value, time.perf_counter() - started

    async def well() -> list[float]:
        times = []
        for level in range(10):
            started = time.perf_counter()
            await gateway.commands.async_send("h2-tv", "notify", {"action": "show", "text": f"n{level}"})
            times.append(time.perf_counter() - started)
        return times

    # when a command goes to the hostile box while the other home is being served
    (error, elapsed), served = await asyncio.gather(hostile(), well())
    # then the hostile answer ends in a clear error, within the adapter's time limit
    assert error.code == code, error.message
    assert says in error.message
    assert elapsed < TIMEOUT_S + 1.0
    # and the other home was served all along, promptly
    assert len(served) == 10 and max(served) < TIMEOUT_S
    assert good.screen.overlay is not None and good.screen.overlay["text"] == "n9"
    # the problem is on record for the property manager
    adapter = gateway.components["adapters"].adapter(
        "stb_carrier" if operator == "carrier" else "stb_broadcast"
    )
    assert any(box["device_id"] == "h1-tv" and box["last_error"] for box in adapter.status())
    # and once the box behaves, it is commanded again
    bad.misbehave = None
    result = await gateway.commands.async_send("h1-tv", *command)
    assert result["state"]["level"] == 33


async def test_an_xml_bomb_in_a_description_is_refused(make_gateway, boxes) -> None:
    gateway = await stb_gateway(make_gateway, adapters=stb_settings(timeout_s=TIMEOUT_S))
    await add_home(gateway, "h1", devices={})
    bomb = await boxes("broadcast", "bomb-tv")
    bomb.misbehave = "bomb"
    # at adoption: refused, naming the reason
    started = time.perf_counter()
    with pytest.raises(AdoptError) as raised:
        await adopt(gateway, "h1", bomb)
    assert "EntitiesForbidden" in str(raised.value)
    assert time.perf_counter() - started < 1.0
    # and a box that turns hostile after a reboot: its commands fail, clearly, and nothing else does
    bomb.misbehave = None
    await adopt(gateway, "h1", bomb)
    bomb.misbehave = "bomb"
    await bomb.async_power_off()
    with pytest.raises(CommandError):
        await gateway.commands.async_send("h1-tv", "volume", {"action": "set", "level": 1})
    bomb.wol._on_wake()
    await settle(lambda: bomb.screen.power)
    with pytest.raises(CommandError) as raised:
        await gateway.commands.async_send("h1-tv", "volume", {"action": "set", "level": 1})
    assert raised.value.code == "box_error" and "EntitiesForbidden" in raised.value.message


async def test_a_box_that_answers_10_megabytes_is_cut_off_at_the_limit(make_gateway, boxes) -> None:
    gateway = await stb_gateway(make_gateway, adapters=stb_settings(timeout_s=2, max_answer_bytes=65536))
    box = await boxes("carrier", "h1-tv")
    await home_with_tv(gateway, "h1", box)
    box.misbehave = "huge"
    started = time.perf_counter()
    with pytest.raises(CommandError) as raised:
        await gateway.commands.async_send("h1-tv", "volume", {"action": "set", "level": 3})
    assert "65536-byte limit" in raised.value.message
    assert time.perf_counter() - started < 1.0  # stopped reading, did not wait for 10 MB
