"""A simulated set-top box announcing itself on loopback, the way its real counterpart does.

* The cable box (dial_box.py) over SSDP: its MediaRenderer root device and
  services, with the LOCATION of its own description (which answers with the
  DIAL `Application-URL` header), through async-upnp-client's announcer and
  search responder.
* The carrier box (thunder_box.py) over mDNS: a `_thunder._tcp` service at its
  Thunder port, TXT with its MAC, name, model and maker.

So a test can go the installer's way — the box shows up in the discovery
inbox, is approved into a household, and is then commanded — instead of
handing the adapter an address.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Final

from async_upnp_client.server import SsdpAdvertisementAnnouncer, SsdpSearchResponder
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from linli.sim.box import SimBox
from linli.sim.dial_box import DialBox
from linli.sim.thunder_box import ThunderBox

THUNDER_TYPE: Final = "_thunder._tcp.local."
LOOPBACK: Final = "127.0.0.1"


class BoxAnnouncer:
    """Announces one started box until stopped (SSDP byebye / mDNS goodbye then)."""

    def __init__(self, box: SimBox, *, ssdp_group: str = "239.255.255.250", ssdp_port: int = 1900) -> None:
        self.box = box
        self.target = (ssdp_group, ssdp_port)
        self._announcer: SsdpAdvertisementAnnouncer | None = None
        self._responder: SsdpSearchResponder | None = None
        self._zeroconf: AsyncZeroconf | None = None
        self.service: AsyncServiceInfo | None = None

    async def async_start(self) -> None:
        if isinstance(self.box, DialBox):
            await self._start_ssdp(self.box)
        elif isinstance(self.box, ThunderBox):
            await self._start_mdns(self.box)
        else:
            raise TypeError(f"no announcement for a {type(self.box).__name__}")

    async def _start_ssdp(self, box: DialBox) -> None:
        assert box.device is not None, "start the box first"
        source = (LOOPBACK, 0)
        self._responder = SsdpSearchResponder(box.device, source=source, target=self.target)
        await self._responder.async_start()
        self._announcer = SsdpAdvertisementAnnouncer(box.device, source=source, target=self.target)
        await self._announcer.async_start()

    async def _start_mdns(self, box: ThunderBox) -> None:
        self.service = AsyncServiceInfo(
            THUNDER_TYPE,
            f"{box.name}.{THUNDER_TYPE}",
            addresses=[socket.inet_aton(box.host)],
            port=box.port,
            properties={"mac": box.mac, "fn": box.name, "md": "RDK-SIM-4K", "mf": "Linli Sim"},
            server=f"{box.name.lower()}.local.",
        )
        self._zeroconf = AsyncZeroconf(interfaces=[LOOPBACK], ip_version=IPVersion.V4Only)
        await self._zeroconf.async_register_service(self.service)

    async def async_stop(self) -> None:
        if self._announcer is not None:
            with contextlib.suppress(Exception):
                await self._announcer.async_stop()
            self._announcer = None
        if self._responder is not None:
            with contextlib.suppress(Exception):
                await self._responder.async_stop()
            self._responder = None
        if self._zeroconf is not None:
            with contextlib.suppress(Exception):
                await self._zeroconf.async_close()
            self._zeroconf = None
