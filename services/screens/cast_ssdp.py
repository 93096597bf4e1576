"""SSDP for the households' virtual renderers: announced on the households' own segments only.

A phone's DLNA ("投屏") app finds a renderer by SSDP: it sends an M-SEARCH and
listens for NOTIFY ssdp:alive. async-upnp-client's server side does both
(`SsdpAdvertisementAnnouncer`, `SsdpSearchResponder`); what a gateway serving
many households needs besides, this module adds:

* one search responder per configured interface (the gateway's address on a
  households' segment), answering an M-SEARCH with the renderers the searching
  address may reach — its own household's, never a neighbour's (the library's
  responder answers for one device, to anyone);
* one announcer per renderer and interface, only where the household's
  `allowed_networks` include that interface's address: a household's renderer is
  never advertised on another household's segment;
* the announcer sends the whole set of alive messages (root device, UDN, device
  type, each service) at start and every `announce_s`, where the library sends
  one of them every 30 s in turn — a phone opening its cast menu must find the
  renderer by its MediaRenderer or AVTransport type without waiting minutes;
  ssdp:byebye for each when the renderer goes (the library's stop).

IPv4 only: the households' segments are IPv4 VLANs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable
from typing import Any, Final, cast

from async_upnp_client.server import (
    SsdpAdvertisementAnnouncer,
    SsdpSearchResponder,
    UpnpServerDevice,
    _build_advertisements,
)
from async_upnp_client.ssdp import build_ssdp_packet
from async_upnp_client.utils import CaseInsensitiveDict

_LOGGER = logging.getLogger(__name__)
SSDP_GROUP: Final = "239.255.255.250"
SSDP_PORT: Final = 1900
ANNOUNCE_S: Final = 600.0  # well inside the library's CACHE-CONTROL max-age=1800
#: At most this many renderers in one answer (6 datagrams each): a search from the property
#: office's own loopback in the demo sees every household, a phone sees its own.
MAX_ANSWERED: Final = 32

#: The renderers an M-SEARCH from `remote` reaching interface `interface` may hear of.
Visible = Callable[[str, str], list[UpnpServerDevice]]


class _Announcer(SsdpAdvertisementAnnouncer):
    """The library's announcer, sending every alive message each time instead of one in turn."""

    def __init__(self, device: UpnpServerDevice, *, source: Any, target: Any, interval_s: float) -> None:
        super().__init__(device, source=source, target=target)
        self.interval_s = interval_s

    def _announce_next(self) -> None:
        # Overrides the library's: it sends one of the 6 messages every 30 s, so a phone hears
        # "MediaRenderer:1" only every 3 minutes. Same packets, all at once, then every interval_s.
        assert self._transport is not None
        protocol = cast(Any, self._transport.get_protocol())
        for headers in _build_advertisements(self.target, self.device):
            protocol.send_ssdp_packet(build_ssdp_packet("NOTIFY * HTTP/1.1", headers), self.target)
        self._cancel_announce = self._loop.call_later(self.interval_s, self._announce_next)


class _Responder(SsdpSearchResponder):
    """The library's responder, answering with the renderers the searcher may reach."""

    def __init__(self, interface: str, visible: Visible, *, source: Any, target: Any) -> None:
        # The library keeps one device; this responder sets it per renderer while answering.
        super().__init__(cast(UpnpServerDevice, None), source=source, target=target)
        self._interface = interface
        self._visible = visible
        self.answered = 0  # M-SEARCHes answered (for tests and status)

    def _build_responses(self, headers: CaseInsensitiveDict) -> list[bytes]:
        remote = headers.get_lower("_remote_addr")
        host = str(remote[0]) if remote else ""
        responses: list[bytes] = []
        for device in self._visible(self._interface, host)[:MAX_ANSWERED]:
            self.device = device
            responses.extend(super()._build_responses(headers))
        if responses:
            self.answered += 1
        return responses

    async def async_stop(self) -> None:
        if self._transport is not None:
            await super().async_stop()
        if self._response_transport is not None:  # the library leaves its answering socket open
            self._response_transport.close()
            self._response_transport = None


def check_interfaces(interfaces: list[str]) -> list[str]:
    """The configured interface addresses, or a ValueError saying which one is unusable."""
    checked = []
    for index, text in enumerate(interfaces):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise ValueError(
                f"cast.interfaces[{index}]: {text!r} is not an IP address; give the gateway's own "
                "address on a households' segment (e.g. '192.168.12.1'), or '127.0.0.1' for the demo"
            ) from None
        if address.version != 4 or address.is_unspecified or address.is_multicast:
            raise ValueError(
                f"cast.interfaces[{index}]: {text!r}: renderers are announced from one IPv4 unicast "
                "address per segment; give the gateway's address on that segment"
            )
        checked.append(str(address))
    return checked


class RendererSsdp:
    """Search responders per interface, announcers per renderer and interface."""

    def __init__(
        self,
        interfaces: list[str],
        visible: Visible,
        *,
        group: str = SSDP_GROUP,
        port: int = SSDP_PORT,
        announce_s: float = ANNOUNCE_S,
    ) -> None:
        self.interfaces = check_interfaces(interfaces)
        self._visible = visible
        self.target = (group, port)
        self._announce_s = announce_s
        self._responders: dict[str, _Responder] = {}
        self._announcers: dict[tuple[str, str], _Announcer] = {}  # (renderer key, interface)

    @property
    def answered(self) -> int:
        return sum(responder.answered for responder in self._responders.values())

    def announced(self, key: str) -> list[str]:
        """The interfaces the renderer `key` is announced on."""
        return [interface for (k, interface) in self._announcers if k == key]

    async def async_start(self) -> None:
        for interface in self.interfaces:
            responder = _Responder(interface, self._visible, source=(interface, 0), target=self.target)
            try:
                await responder.async_start()
            except OSError as exc:
                await responder.async_stop()
                await self.async_stop()
                raise RuntimeError(
                    f"cast: cannot answer SSDP searches on {interface} port {self.target[1]} "
                    f"({exc.strerror}); check cast.interfaces and cast.ssdp.port"
                ) from None
            self._responders[interface] = responder

    async def async_announce(self, key: str, devices: dict[str, UpnpServerDevice]) -> None:
        """Announce one renderer: `devices` is its device as seen from each interface it belongs on."""
        for interface, device in devices.items():
            if (key, interface) in self._announcers or interface not in self._responders:
                continue
            announcer = _Announcer(
                device, source=(interface, 0), target=self.target, interval_s=self._announce_s
            )
            try:
                await announcer.async_start()
            except OSError as exc:
                _LOGGER.warning("cast: renderer %s not announced on %s: %s", key, interface, exc)
                continue
            self._announcers[(key, interface)] = announcer

    async def async_withdraw(self, key: str) -> None:
        """ssdp:byebye for the renderer on every interface it was announced on."""
        for pair in [pair for pair in self._announcers if pair[0] == key]:
            announcer = self._announcers.pop(pair)
            with contextlib.suppress(OSError, AssertionError):
                await announcer.async_stop()

    async def async_stop(self) -> None:
        for key in {key for key, _ in self._announcers}:
            await self.async_withdraw(key)
        for responder in self._responders.values():
            with contextlib.suppress(OSError, AssertionError):
                await responder.async_stop()
        self._responders.clear()
        await asyncio.sleep(0)  # let the transports close


__all__ = ["RendererSsdp", "check_interfaces"]
