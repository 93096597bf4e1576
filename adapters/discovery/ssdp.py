"""SSDP / UPnP / DIAL: listen for NOTIFY, M-SEARCH periodically and on demand.

async-upnp-client does the protocol (sockets, multicast membership, packet
parsing, M-SEARCH); this module tracks devices by UDN the way UPnP 1.1 asks:

* a device's description is fetched (upnp_description.py: bounded, defused)
  when it is first seen, when its LOCATION changes, and when its
  `BOOTID.UPNP.ORG` or `CONFIGID.UPNP.ORG` changes (it rebooted or changed);
* `ssdp:byebye`, or no announcement within its `CACHE-CONTROL: max-age`,
  makes it unavailable (never deleted);
* DIAL servers (`urn:dial-multiscreen-org:service:dial:1`, `Application-URL`),
  DLNA MediaRenderers and set-top boxes are recognised.

The library's own tracker (`SsdpListener`) refuses descriptions on loopback
addresses (an SSRF guard that is right in production); we use its listeners
directly and apply the same guard unless every listening interface is
loopback (the demo and the tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any, Final
from urllib.parse import urlparse

import aiohttp
from async_upnp_client.advertisement import SsdpAdvertisementListener
from async_upnp_client.search import SsdpSearchListener
from async_upnp_client.ssdp import udn_from_usn
from async_upnp_client.ssdp_listener import extract_uncache_after, is_valid_location
from async_upnp_client.utils import CaseInsensitiveDict

from linli.adapters.discovery.upnp_description import DescriptionError, DeviceDescription, async_describe
from linli.gateway.discovery.identity import mac_key, ordered, uuid_key
from linli.gateway.discovery.inbox import Inbox
from linli.gateway.discovery.model import Announcement, ProposedCapability, Rejection, Source

_LOGGER = logging.getLogger(__name__)

DIAL_SERVICE: Final = "urn:dial-multiscreen-org:service:dial:1"
MEDIA_RENDERER: Final = ":device:MediaRenderer:"
_STB_WORDS: Final = re.compile(r"set[- ]?top|\bstb\b|机顶盒|iptv|dvb", re.IGNORECASE)
_RETRY_FAILED_S: Final = 300.0


@dataclass(slots=True)
class _Track:
    udn: str
    location: str
    boot_id: str | None
    config_id: str | None
    expires_at: float
    types: set[str] = field(default_factory=set)
    server: str | None = None
    announcement: Announcement | None = None
    fetching: bool = False
    failed_at: float | None = None


def _capabilities(description: DeviceDescription, dial: bool) -> list[ProposedCapability]:
    kinds: list[str] = []
    if dial:
        kinds.append("app")
    services = " ".join(description.services)
    if ":AVTransport:" in services:
        kinds.append("media")
    if ":RenderingControl:" in services:
        kinds.append("volume")
    return [ProposedCapability(key=k, kind=k, origin="upnp") for k in kinds]


def categories(description: DeviceDescription, dial: bool) -> list[str]:
    """What kind of box this is: set_top_box, dial, dlna_renderer (most specific first)."""
    found = []
    renderer = any(MEDIA_RENDERER in t for t in description.device_types)
    words = " ".join(
        t or "" for t in (description.device_type, description.friendly_name, description.model_description)
    )
    if _STB_WORDS.search(words) or (dial and renderer):
        found.append("set_top_box")
    if dial:
        found.append("dial")
    if renderer:
        found.append("dlna_renderer")
    return found


def dial_without_description(track: _Track, error: DescriptionError) -> DeviceDescription | None:
    """What is known of a DIAL server whose description URL is not served (404 and the like).

    Real DIAL servers do this: they answered a DIAL search (or name their Application-URL
    in the refusal) and are driven over DIAL alone. The inbox then knows them by their UDN
    and the SSDP `SERVER` header; anything else (hostile XML, a timeout) stays a refusal.
    """
    if error.status is None or not (DIAL_SERVICE in track.types or error.application_url):
        return None
    return DeviceDescription(
        device_type=None,
        friendly_name=None,
        manufacturer=None,
        model_name=(track.server or "")[:200] or None,
        model_number=None,
        model_description=f"DIAL server; its description answered HTTP {error.status}",
        serial_number=None,
        udn=track.udn,
        presentation_url=None,
        firmware=None,
        services=[DIAL_SERVICE],
        application_url=error.application_url,
    )


def description_announcement(track: _Track, description: DeviceDescription) -> Announcement:
    dial = (
        DIAL_SERVICE in track.types
        or DIAL_SERVICE in description.services
        or bool(description.application_url)
    )
    keys = [
        k for k in (uuid_key(description.udn), uuid_key(track.udn), mac_key(description.serial_number)) if k
    ]
    parsed = urlparse(track.location)
    kinds = categories(description, dial)
    facts_base = {
        k: v
        for k, v in (
            ("deviceType", description.device_type),
            ("manufacturer", description.manufacturer),
            ("modelName", description.model_name),
        )
        if v
    }
    return Announcement(
        source=Source.SSDP,
        keys=ordered(keys or [f"ssdp:{track.location}"]),
        address=parsed.netloc or track.location,
        name=description.friendly_name,
        manufacturer=description.manufacturer,
        model=description.model_name,
        firmware=description.firmware,
        category=kinds[0] if kinds else "upnp",
        # What searches and notifications named, and what the description lists: an adapter's
        # `st` rule should match whichever way the box was found.
        facts=[
            {**facts_base, "st": st}
            for st in sorted({*track.types, *description.device_types, *description.services})
        ]
        or [facts_base],
        capabilities=_capabilities(description, dial),
        details={
            k: v
            for k, v in (
                ("location", track.location),
                ("udn", description.udn or track.udn),
                ("device_type", description.device_type),
                ("model_number", description.model_number),
                ("model_description", description.model_description),
                ("serial_number", description.serial_number),
                ("categories", kinds),
                ("application_url", description.application_url),
                ("services", description.services),
                ("boot_id", track.boot_id),
                ("config_id", track.config_id),
                ("server", track.server),
            )
            if v
        },
    )


def location_usable(location: str, allow_loopback: bool) -> bool:
    if allow_loopback:
        try:
            parsed = urlparse(location)
            host = parsed.hostname or ""
        except ValueError:
            return False
        if parsed.scheme not in ("http", "https") or not host:
            return False
        with contextlib.suppress(ValueError):
            if ip_address(host).is_loopback:
                return True
    return is_valid_location(location)


class SsdpDiscovery:
    """SSDP listeners on each interface, feeding the inbox."""

    def __init__(
        self,
        inbox: Inbox,
        *,
        interfaces: list[str],
        group: str = "239.255.255.250",
        port: int = 1900,
        mx: int = 2,
        search_interval_s: float = 300.0,
        description_timeout_s: float = 5.0,
        max_description_bytes: int = 262_144,
        max_fetches: int = 8,
        own: Callable[[str], bool] = lambda udn: False,
    ) -> None:
        self._inbox = inbox
        self._own = own  # the gateway's own announcements (its cast renderers): never inbox items
        self.interfaces = interfaces
        self.target = (group, port)
        self.mx = mx
        self.search_interval_s = search_interval_s
        self.description_timeout_s = description_timeout_s
        self.max_description_bytes = max_description_bytes
        self.allow_loopback = bool(interfaces) and all(ip_address(i).is_loopback for i in interfaces)
        self._fetch_slots = asyncio.Semaphore(max_fetches)
        self._tracks: dict[str, _Track] = {}
        self._advertisements: list[SsdpAdvertisementListener] = []
        self._searches: list[SsdpSearchListener] = []
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self.searches = 0
        self.descriptions = 0

    async def async_start(self) -> None:
        self._session = aiohttp.ClientSession(
            trust_env=False,
            connector=aiohttp.TCPConnector(limit=16, force_close=True),
            headers={"User-Agent": "Linli-gateway UPnP/1.1 DIAL/2.1"},
        )
        try:
            for interface in self.interfaces:
                source = (interface, 0)
                advertisement = SsdpAdvertisementListener(
                    on_alive=self._on_alive,
                    on_update=self._on_alive,
                    on_byebye=self._on_byebye,
                    source=source,
                    target=self.target,
                )
                await advertisement.async_start()
                self._advertisements.append(advertisement)
                search = SsdpSearchListener(
                    callback=self._on_search_response, source=source, target=self.target, timeout=self.mx
                )
                await search.async_start()
                self._searches.append(search)
        except BaseException:
            await self.async_stop()
            raise
        self._ticker = asyncio.create_task(self._tick(), name="linli-discovery-ssdp")

    async def async_stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for advertisement in self._advertisements:
            await advertisement.async_stop()
        for search in self._searches:
            search.async_stop()
        self._advertisements, self._searches = [], []
        if self._session is not None:
            await self._session.close()
            self._session = None

    def async_search(self) -> None:
        """Send an M-SEARCH on every interface now (answers arrive within `mx` seconds)."""
        for search in self._searches:
            search.async_search()
        self.searches += 1

    async def _tick(self) -> None:
        """M-SEARCH at start, once more (UDP gets lost), then every interval; expire the silent."""
        self.async_search()
        await asyncio.sleep(self.mx + 1)
        self.async_search()
        next_search = time.monotonic() + self.search_interval_s
        while True:
            await asyncio.sleep(min(30.0, self.search_interval_s))
            self._expire(time.time())
            if time.monotonic() >= next_search:
                self.async_search()
                next_search = time.monotonic() + self.search_interval_s

    def _expire(self, now: float) -> None:
        for udn, track in list(self._tracks.items()):
            if track.expires_at < now:
                del self._tracks[udn]
                if track.announcement is not None:
                    self._inbox.withdraw(
                        track.announcement.keys, Source.SSDP, "no SSDP announcement within its max-age"
                    )

    # -- packets -------------------------------------------------------------------

    def _on_search_response(self, headers: CaseInsensitiveDict) -> None:
        self._seen(headers, headers.get_lower("st"))

    def _on_alive(self, headers: CaseInsensitiveDict) -> None:
        self._seen(headers, headers.get_lower("nt"))

    def _seen(self, headers: CaseInsensitiveDict, device_or_service_type: str | None) -> None:
        usn = headers.get_lower("usn") or ""
        udn = udn_from_usn(usn)
        location = (headers.get_lower("location") or "").strip()
        if not udn or not location:
            return  # not a usable advertisement (the library's tracker ignores these too)
        if self._own(udn):
            return  # the gateway hearing itself
        now = time.time()
        if not location_usable(location, self.allow_loopback):
            self._reject(udn, location, f"LOCATION {location[:200]!r} is not a usable description URL")
            return
        boot_id = headers.get_lower("bootid.upnp.org")
        config_id = headers.get_lower("configid.upnp.org")
        max_age = extract_uncache_after(headers.get_lower("cache-control") or "").total_seconds()
        track = self._tracks.get(udn)
        refetch = False
        if track is None:
            track = self._tracks[udn] = _Track(
                udn=udn, location=location, boot_id=boot_id, config_id=config_id, expires_at=now + max_age
            )
            refetch = True
        else:
            if location != track.location:
                track.location = location
                refetch = True
            if boot_id and boot_id != track.boot_id:
                track.boot_id = boot_id  # it rebooted: firmware may have changed
                refetch = True
            if config_id and config_id != track.config_id:
                track.config_id = config_id
                refetch = True
            track.expires_at = max(track.expires_at, now + max_age)
        if device_or_service_type and device_or_service_type not in track.types:
            track.types.add(device_or_service_type)
            if track.announcement is not None and device_or_service_type == DIAL_SERVICE:
                refetch = True
        track.server = headers.get_lower("server") or track.server
        if refetch:
            track.failed_at = None
        if track.fetching:
            return
        if refetch or (
            track.announcement is None
            and (track.failed_at is None or now - track.failed_at > _RETRY_FAILED_S)
        ):
            self._fetch(track)
        elif track.announcement is not None:
            self._inbox.announce(track.announcement, now)

    def _on_byebye(self, headers: CaseInsensitiveDict) -> None:
        udn = udn_from_usn(headers.get_lower("usn") or "")
        if not udn:
            return
        track = self._tracks.pop(udn, None)
        keys = track.announcement.keys if track and track.announcement else (uuid_key(udn) or f"ssdp:{udn}",)
        self._inbox.withdraw(keys, Source.SSDP, "ssdp:byebye")

    # -- descriptions -----------------------------------------------------------------

    def _fetch(self, track: _Track) -> None:
        track.fetching = True
        task = asyncio.get_running_loop().create_task(self._describe(track), name="linli-ssdp-describe")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _describe(self, track: _Track) -> None:
        assert self._session is not None
        location = track.location
        try:
            async with self._fetch_slots:
                description = await async_describe(
                    self._session,
                    location,
                    timeout_s=self.description_timeout_s,
                    max_bytes=self.max_description_bytes,
                )
        except DescriptionError as exc:
            dial_only = dial_without_description(track, exc)
            if dial_only is None:
                track.failed_at = time.time()
                self._reject(track.udn, location, str(exc))
                return
            description = dial_only  # a DIAL server that serves no description: adoptable over DIAL
        finally:
            track.fetching = False
        self.descriptions += 1
        if track.location != location:
            self._fetch(track)  # it moved while we were reading
            return
        track.announcement = description_announcement(track, description)
        if self._tracks.get(track.udn) is track:
            self._inbox.announce(track.announcement)

    def _reject(self, udn: str, location: str, reason: str) -> None:
        self._inbox.reject_invalid(
            Rejection(
                source=Source.SSDP,
                keys=(uuid_key(udn) or f"ssdp:{udn[:200]}",),
                address=urlparse(location).netloc or location[:200],
                reason=reason,
            )
        )
