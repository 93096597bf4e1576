"""Wake-on-LAN: the magic packet that powers on a box in standby.

Both operators' boxes wake this way: carrier boxes announce their MAC address
in their device info, DIAL servers in the `WAKEUP: MAC=…;Timeout=…` header of
their SSDP answer (DIAL 2.1, section 6). In a real home the packet goes to the
LAN broadcast address; simulated boxes listen on 127.0.0.1.

`LINLI_WAKE_LOOPBACK_ONLY=1` in the environment (the test suite sets it) refuses
every destination but loopback, so no test can ever broadcast on a real network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
from typing import Final

DEFAULT_PORT: Final = 9
_MAC: Final = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$", re.IGNORECASE)


class WakeError(ValueError):
    """The packet cannot be sent; the message says why and what to configure."""


def mac_bytes(mac: str) -> bytes:
    text = mac.strip()
    if not _MAC.match(text):
        raise WakeError(f"{mac!r} is not a MAC address (expected aa:bb:cc:dd:ee:ff)")
    return bytes.fromhex(re.sub(r"[:-]", "", text))


def magic_packet(mac: str) -> bytes:
    """Six 0xFF bytes, then the MAC address sixteen times."""
    return b"\xff" * 6 + mac_bytes(mac) * 16


def check_destination(address: str) -> None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise WakeError(f"wake address {address!r} is not an IP address") from None
    if os.environ.get("LINLI_WAKE_LOOPBACK_ONLY") and not ip.is_loopback:
        raise WakeError(
            f"wake address {address} refused: LINLI_WAKE_LOOPBACK_ONLY is set, so only loopback is allowed"
        )


class _Sender(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.done = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def async_wake(mac: str, address: str, port: int = DEFAULT_PORT) -> None:
    """Send the magic packet for `mac` to `address:port` (three times, as NICs may miss one)."""
    packet = magic_packet(mac)
    check_destination(address)
    ip = ipaddress.ip_address(address)
    broadcast = not ip.is_loopback and (address.endswith(".255") or address == "255.255.255.255")
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Sender, remote_addr=(address, port), allow_broadcast=broadcast
    )
    try:
        for _ in range(3):
            transport.sendto(packet)
            await asyncio.sleep(0)
    finally:
        transport.close()
    await protocol.done
