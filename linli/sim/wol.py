"""A simulated box's network card in standby: it listens for Wake-on-LAN magic packets on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def is_magic_packet(data: bytes, mac: bytes) -> bool:
    return len(data) >= 102 and data[:6] == b"\xff" * 6 and data[6:102] == mac * 16


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, mac: bytes, on_wake: Callable[[], None]) -> None:
        self.mac = mac
        self.on_wake = on_wake
        self.received = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if is_magic_packet(data, self.mac):
            self.received += 1
            self.on_wake()


class WakeListener:
    """UDP 127.0.0.1:<port> (a free one unless given); calls `on_wake` for each packet for `mac`."""

    def __init__(self, mac: str, on_wake: Callable[[], None]) -> None:
        self.mac = mac
        self._mac = bytes.fromhex(mac.replace(":", ""))
        self._on_wake = on_wake
        self._transport: asyncio.DatagramTransport | None = None
        self.protocol: _Listener | None = None
        self.port = 0

    async def async_start(self, port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _Listener(self._mac, self._on_wake), local_addr=("127.0.0.1", port)
        )
        self._transport, self.protocol = transport, protocol
        self.port = int(transport.get_extra_info("sockname")[1])
        return self.port

    async def async_stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
