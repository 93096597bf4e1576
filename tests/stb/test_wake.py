"""Wake-on-LAN: the magic packet is right, and under test it can only ever go to loopback."""

from __future__ import annotations

import pytest

from linli.gateway.stb import wake
from linli.sim.wol import WakeListener
from tests.brokers import settle


def test_magic_packet_is_six_ff_then_the_mac_sixteen_times() -> None:
    packet = wake.magic_packet("02:1A:2b:3c:4d:5e")
    assert packet[:6] == b"\xff" * 6
    assert packet[6:] == bytes.fromhex("021a2b3c4d5e") * 16
    with pytest.raises(wake.WakeError, match="not a MAC address"):
        wake.magic_packet("02:1a:2b")


@pytest.mark.parametrize("address", ["255.255.255.255", "192.168.1.255", "10.0.0.7"])
async def test_the_test_suite_can_never_broadcast(address: str) -> None:
    with pytest.raises(wake.WakeError, match="only loopback is allowed"):
        await wake.async_wake("02:00:00:00:00:01", address)


async def test_a_box_in_standby_hears_its_own_packet_only() -> None:
    woken: list[str] = []
    listener = WakeListener("02:00:00:00:00:01", lambda: woken.append("me"))
    port = await listener.async_start()
    try:
        await wake.async_wake("02:00:00:00:00:02", "127.0.0.1", port)  # someone else's
        await wake.async_wake("02:00:00:00:00:01", "127.0.0.1", port)
        await settle(lambda: woken)
        assert listener.protocol is not None and listener.protocol.received == 3  # sent three times
    finally:
        await listener.async_stop()
