"""Component `cast`: each household's TV as a virtual DLNA MediaRenderer, whichever operator's box it is.

The "cast" (DLNA / "投屏") button every phone already has speaks UPnP AV to a
MediaRenderer. The gateway serves one renderer per household that has a TV box
(async-upnp-client's server side), at

    http://<cast.host>:<cast.port>/cast/<household>/description.xml

named for the household and the TV's room ("李家 · 客厅电视"), and turns what the
phone asks — SetAVTransportURI + Play, Pause, Stop, SetVolume, SetMute — into
commands to the household's real box through `Screens`, so a carrier box and a
cable box are cast to alike. What the box does, also with its own remote, is
evented back as `LastChange` (AVTransport and RenderingControl), moderated to
at most one NOTIFY per 0.2 s per service.

Phones find the renderer by SSDP (services/screens/cast_ssdp.py): it is announced,
and answers M-SEARCH, on the configured `cast.interfaces` — the gateway's
addresses on the households' segments — only where the household's network is.

Bound to its household. A renderer answers (description, control, events)
only to an address in its household's `cast.allowed_networks` (its own VLAN;
default: loopback, for the demo) or one the household paired (`pair()`, for
`cast.pairing_s`); anyone else gets the 404 of a renderer that does not exist,
and `GET /cast/` lists only the renderers the asking address may reach. Event
callbacks go only to the subscriber's own address (no NOTIFY is sent anywhere
else on its say-so), at most `MAX_SUBSCRIBERS` per service.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from async_upnp_client.client import UpnpRequester
from async_upnp_client.const import DeviceInfo, HttpRequest, HttpResponse
from async_upnp_client.exceptions import UpnpError
from async_upnp_client.server import (
    NopRequester,
    UpnpServerDevice,
    UpnpServerService,
    action_handler,
    subscribe_handler,
    to_xml,
    unsubscribe_handler,
)

from linli.gateway.context import Context
from linli.gateway.discovery.identity import renderer_udn
from linli.gateway.events import DeviceAdded, DeviceRemoved, HouseholdAdded, HouseholdRemoved, StateChanged
from linli.gateway.registry import decode_name, primary_name
from linli.services.screens import config
from linli.services.screens.cast_services import (
    CastAVTransport,
    CastConnectionManager,
    CastRenderingControl,
    service_info,
)
from linli.services.screens.cast_ssdp import ANNOUNCE_S, SSDP_GROUP, SSDP_PORT, RendererSsdp
from linli.services.screens.screens import SCREENS, NoScreenError, Screens

if TYPE_CHECKING:
    from linli.gateway.registry import Device
from linli.gateway.component import ComponentApi, ComponentKey

_LOGGER = logging.getLogger(__name__)
_SERVICES: Final = (
    ("AVTransport", "urn:schemas-upnp-org:service:AVTransport:1", CastAVTransport),
    ("RenderingControl", "urn:schemas-upnp-org:service:RenderingControl:1", CastRenderingControl),
    ("ConnectionManager", "urn:schemas-upnp-org:service:ConnectionManager:1", CastConnectionManager),
)
MAX_RENDERERS: Final = 10_000
MAX_SUBSCRIBERS: Final = 16  # per service: a household's phones and tablets, with room to spare
LAST_CHANGE_S: Final = 0.2  # LastChange is evented at most this often (AVTransport:1 §2.2.1)
NOTIFY_TIMEOUT_S: Final = 2.0
PAIRING_S: Final = 12 * 3600.0
LOOPBACK: Final = ("127.0.0.0/8", "::1/128")
_CAST_KINDS: Final = frozenset({"media", "volume", "channel"})
_NOT_HERE: Final = "no renderer here: unknown household, no TV box, or not reachable from your network"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def friendly_name(household: str, room: str | None) -> str:
    """What the phone's cast menu shows: the household's name and the TV's room, "李家 · 客厅电视"."""
    household_name = primary_name(decode_name(household)) or household
    return f"{household_name} · {room or ''}电视"[:64]


def parse_networks(config: dict[str, list[str]]) -> dict[str, list[Network]]:
    """`cast.allowed_networks`, each entry checked (a ValueError naming the bad one)."""
    parsed: dict[str, list[Network]] = {}
    for key, entries in config.items():
        networks: list[Network] = []
        for index, entry in enumerate(entries):
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"cast.allowed_networks[{key!r}][{index}]: {entry!r} is not an IP network; give "
                    "the household's own segment, e.g. '192.168.12.0/24'"
                ) from None
        parsed[key] = networks
    return parsed


class _NotifySender(UpnpRequester):
    """How the renderers send their NOTIFYs: one session, short timeouts. A subscriber that does
    not answer is its own loss (its subscription lapses), never the gateway's or another's."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def async_http_request(self, http_request: HttpRequest) -> HttpResponse:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=NOTIFY_TIMEOUT_S),
                # One connection per NOTIFY, closed after it: a phone's small event server is
                # not left holding idle connections from the gateway (it waited 10 s for them
                # when the phone app closed).
                connector=aiohttp.TCPConnector(limit=64, force_close=True),
            )
        body = http_request.body.encode() if http_request.body is not None else None
        try:
            async with self._session.request(
                http_request.method,
                http_request.url,
                headers=dict(http_request.headers),
                data=body,
                allow_redirects=False,
            ) as response:
                await response.content.read(4096)
                return HttpResponse(response.status, dict(response.headers), None)
        except (aiohttp.ClientError, TimeoutError, OSError, RuntimeError):
            return HttpResponse(599, {}, None)

    async def async_close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HouseholdRenderer:
    """One household's renderer: the UPnP device and where its commands go."""

    def __init__(self, cast: CastRenderers, household_id: str, name: str, base_url: str) -> None:
        self._cast = cast
        self.household_id = household_id
        self.name = name
        self.prefix = f"/cast/{household_id}"
        #: What SetAVTransportURI gave: (URI, its title, its DIDL-Lite metadata)
        self.pending: tuple[str, str | None, str] | None = None
        self._flush_at: asyncio.TimerHandle | None = None
        services = {
            short: type(
                f"{cls.__name__}_{household_id}",
                (cls,),
                {"SERVICE_DEFINITION": service_info(self.prefix, short, service_type)},
            )
            for short, service_type, cls in _SERVICES
        }
        self.udn = renderer_udn(cast.gateway_id, household_id)
        info = DeviceInfo(
            device_type="urn:schemas-upnp-org:device:MediaRenderer:1",
            friendly_name=name,
            manufacturer="Linli",
            manufacturer_url=None,
            model_description="The household's TV, whichever operator's set-top box",
            model_name="Linli virtual renderer",
            model_number="1",
            model_url=None,
            serial_number=None,  # the household id is nobody's business on the network
            udn=self.udn,
            upc=None,
            presentation_url=None,
            url=f"{self.prefix}/description.xml",
            icons=[],
            xml=ET.Element("server_device"),
        )
        self.device_type: type[UpnpServerDevice] = type(
            f"CastRenderer_{household_id}",
            (UpnpServerDevice,),
            {"DEVICE_DEFINITION": info, "EMBEDDED_DEVICES": [], "SERVICES": list(services.values())},
        )
        self.device: UpnpServerDevice = self.device_type(cast.requester, base_url)
        self.services: dict[str, UpnpServerService] = {}
        for service in self.device.all_services:
            service.renderer = self  # type: ignore[attr-defined]
            short = service.service_id.rpartition(":")[2]
            self.services[short] = service  # type: ignore[assignment]
        self._publish()  # the initial event of the first subscriber carries the TV's state

    def device_at(self, base_url: str) -> UpnpServerDevice:
        """The same device as announced from another address (SSDP's LOCATION); never served."""
        return self.device_type(NopRequester(), base_url)

    def state(self, kind: str) -> Any:
        return self._cast.tv_state(self.household_id, kind)

    async def async_command(self, kind: str, value: dict[str, Any]) -> Any:
        return await self._cast.async_command(self.household_id, kind, value)

    def changed(self) -> None:
        """The TV's state may have changed: LastChange goes out with the next moderated event."""
        if self._flush_at is None:
            self._flush_at = asyncio.get_running_loop().call_later(LAST_CHANGE_S, self._flush)

    def _flush(self) -> None:
        self._flush_at = None
        self._publish()

    def _publish(self) -> None:
        for service in self.services.values():
            service.publish()  # type: ignore[attr-defined]

    def close(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None


class CastRenderers:
    """The `cast` component."""

    name = "cast"

    config_schema = config.CONFIG_SCHEMA  # its own section of the configuration

    config_defaults = config.CONFIG_DEFAULTS
    requires: tuple[str, ...] = ("registry", "screens")

    def __init__(self) -> None:
        self._api: ComponentApi | None = None
        self._runner: web.AppRunner | None = None
        self._renderers: dict[str, HouseholdRenderer] = {}
        self._networks: dict[str, list[Network]] = {}
        self._paired: dict[str, dict[str, float]] = {}  # household → address → until (time.time())
        self._pairing_s = PAIRING_S
        self._sync_task: asyncio.Task[None] | None = None
        self._sync_again = False
        self.requester = _NotifySender()
        self.ssdp: RendererSsdp | None = None
        self.url: str | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self.gateway_id = ""

    async def async_start(self, api: ComponentApi) -> None:
        self._api = api
        self.gateway_id = api.gateway_id
        cfg = api.settings
        try:
            self._networks = parse_networks(cfg.get("allowed_networks") or {"*": list(LOOPBACK)})
        except ValueError as exc:
            raise RuntimeError(f"config: {exc}") from None
        self._networks.setdefault("*", [ipaddress.ip_network(n) for n in LOOPBACK])
        self._pairing_s = float(cfg.get("pairing_s", PAIRING_S))
        host, port = cfg.get("host", "127.0.0.1"), int(cfg.get("port", 8091))
        ssdp_cfg = cfg.get("ssdp") or {}
        try:
            ssdp = RendererSsdp(
                list(cfg.get("interfaces", ["127.0.0.1"])),
                self._visible,
                group=ssdp_cfg.get("group", SSDP_GROUP),
                port=int(ssdp_cfg.get("port", SSDP_PORT)),
                announce_s=float(ssdp_cfg.get("announce_s", ANNOUNCE_S)),
            )
        except ValueError as exc:
            raise RuntimeError(f"config: {exc}") from None
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/cast/", self._list)
        app.router.add_get("/cast/{household}/description.xml", self._description)
        app.router.add_get("/cast/{household}/upnp/{service}.xml", self._scpd)
        app.router.add_post("/cast/{household}/upnp/control/{service}", self._control)
        app.router.add_route("SUBSCRIBE", "/cast/{household}/upnp/event/{service}", self._subscribe)
        app.router.add_route("UNSUBSCRIBE", "/cast/{household}/upnp/event/{service}", self._unsubscribe)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise RuntimeError(
                f"cast renderers cannot listen on {host}:{port} ({exc.strerror}); choose another cast.port"
            ) from None
        self._runner = runner
        bound = site._server.sockets[0].getsockname()[1] if site._server and site._server.sockets else port  # type: ignore[union-attr,attr-defined]
        self._host, self._port = host, int(bound)
        public = (
            cfg.get("public_url")
            or f"http://{host if host not in ('0.0.0.0', '::', '') else '127.0.0.1'}:{bound}"
        )
        self.url = str(public).rstrip("/")
        try:
            await ssdp.async_start()
        except RuntimeError:
            await self.async_stop()
            raise
        self.ssdp = ssdp
        bus = api.bus
        bus.listen(StateChanged, self._on_state)
        bus.listen(DeviceAdded, self._on_change)
        bus.listen(DeviceRemoved, self._on_change)
        bus.listen(HouseholdAdded, self._on_change)
        bus.listen(HouseholdRemoved, self._on_change)
        await self.async_sync()
        _LOGGER.info(
            "cast: households' TVs as DLNA renderers at %s/cast/<household>/description.xml, announced on %s",
            self.url,
            ", ".join(ssdp.interfaces) or "no interface",
        )

    async def async_stop(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
            self._sync_task = None
        if self.ssdp is not None:
            await self.ssdp.async_stop()  # ssdp:byebye for every renderer
            self.ssdp = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        await self.requester.async_close()

    # -- who may reach which renderer ------------------------------------------------------

    def networks(self, household_id: str) -> list[Network]:
        return self._networks.get(household_id, self._networks["*"])

    def pair(self, household_id: str, address: str, *, seconds: float | None = None) -> float:
        """Let `address` (a phone the household paired) reach its renderer for a while; returns until when.

        For a phone outside the household's own segment (mobile data through the community's
        network, a carer's visit); the caller has checked that the person belongs to the household.
        """
        ipaddress.ip_address(address)  # a ValueError for anything else
        until = time.time() + (self._pairing_s if seconds is None else seconds)
        self._paired.setdefault(household_id, {})[address] = until
        return until

    def unpair(self, household_id: str, address: str | None = None) -> None:
        if address is None:
            self._paired.pop(household_id, None)
        else:
            self._paired.get(household_id, {}).pop(address, None)

    def may_reach(self, household_id: str, remote: str | None) -> bool:
        """Whether the address `remote` may see and drive the household's renderer."""
        if not remote:
            return False
        try:
            address = ipaddress.ip_address(remote.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.networks(household_id)):
            return True
        until = self._paired.get(household_id, {}).get(str(address))
        return until is not None and until > time.time()

    def _visible(self, interface: str, remote: str) -> list[UpnpServerDevice]:
        """The renderers an M-SEARCH from `remote`, heard on `interface`, is answered with."""
        return [
            renderer.device_at(self._base_at(interface))
            for hid, renderer in sorted(self._renderers.items())
            if self.may_reach(hid, interface) and self.may_reach(hid, remote)
        ]

    def _base_at(self, interface: str) -> str:
        if self._host in ("0.0.0.0", "", "::"):
            return f"http://{interface}:{self._port}"
        assert self.url is not None
        return self.url

    # -- the households' TVs ----------------------------------------------------------

    def _screens(self) -> Screens:
        assert self._api is not None
        return self._api.require(SCREENS)

    def _tv_name(self, household_id: str) -> str | None:
        """The renderer's name, when the household has a TV box (None: no renderer)."""
        assert self._api is not None
        household = self._api.registry.households.get(household_id)
        tv = self._screens().tv(household_id) if household is not None else None
        if household is None or tv is None:
            return None
        return friendly_name(household.name, tv.room)

    def renderer(self, household_id: str) -> HouseholdRenderer | None:
        """The household's renderer, when it has a TV box."""
        name = self._tv_name(household_id)
        if name is None:
            return None
        renderer = self._renderers.get(household_id)
        if renderer is not None and renderer.name != name:
            renderer = None  # renamed: a new device description (announced at the next sync)
        if renderer is None and len(self._renderers) < MAX_RENDERERS and self.url is not None:
            old = self._renderers.pop(household_id, None)
            if old is not None:
                old.close()
            renderer = HouseholdRenderer(self, household_id, name, self.url)
            self._renderers[household_id] = renderer
        return renderer

    async def async_sync(self) -> None:
        """Renderers for every household with a TV box, announced; byebye for those gone or renamed."""
        assert self._api is not None
        ssdp = self.ssdp
        if ssdp is None:
            return
        wanted = {hid for hid in self._api.registry.households if self._tv_name(hid) is not None}
        for hid in list(self._renderers):
            current = self._renderers[hid]
            if hid not in wanted or current.name != self._tv_name(hid):
                await ssdp.async_withdraw(current.udn)
                current.close()
                del self._renderers[hid]
        for hid in sorted(wanted):
            renderer = self.renderer(hid)
            if renderer is None or ssdp.announced(renderer.udn):
                continue
            where = {
                interface: renderer.device_at(self._base_at(interface))
                for interface in ssdp.interfaces
                if self.may_reach(hid, interface)
            }
            await ssdp.async_announce(renderer.udn, where)

    def _on_change(self, event: DeviceAdded | DeviceRemoved | HouseholdAdded | HouseholdRemoved) -> None:
        """A TV box (or a household) came or went: sync the renderers, once for a burst of changes."""
        if self._sync_task is not None and not self._sync_task.done():
            self._sync_again = True
            return
        self._sync_task = asyncio.get_running_loop().create_task(self._sync_loop(), name="linli-cast-sync")

    async def _sync_loop(self) -> None:
        while True:
            self._sync_again = False
            try:
                await self.async_sync()
            except Exception:
                _LOGGER.exception("cast: renderers not brought up to date")
            if not self._sync_again:
                return

    def _on_state(self, event: StateChanged) -> None:
        if event.kind not in _CAST_KINDS:
            return
        household = event.household
        if household is None and self._api is not None:
            device = self._api.registry.devices.get(event.device_id)
            household = device.household_id if device is not None else None
        renderer = self._renderers.get(household) if household else None
        if renderer is not None:
            renderer.changed()

    def tv_state(self, household_id: str, kind: str) -> Any:
        tv = self._screens().tv(household_id)
        if tv is None:
            return None
        return _state_of(tv, kind)

    async def async_command(self, household_id: str, kind: str, value: dict[str, Any]) -> Any:
        screens = self._screens()
        tv = screens.tv(household_id)
        if tv is None:
            raise NoScreenError(f"household {household_id} has no TV set-top box")
        context = Context(household=household_id, origin="cast")
        return await screens.async_command(tv, kind, value, context=context)

    # -- HTTP ------------------------------------------------------------------------------

    def _require(self, request: web.Request) -> HouseholdRenderer:
        household = request.match_info["household"]
        # The same answer for a stranger as for a household that does not exist: nothing is learnt.
        if not self.may_reach(household, request.remote):
            raise web.HTTPNotFound(text=_NOT_HERE)
        renderer = self.renderer(household)
        if renderer is None:
            raise web.HTTPNotFound(text=_NOT_HERE)
        return renderer

    def _service(self, request: web.Request) -> UpnpServerService:
        service = self._require(request).services.get(request.match_info["service"])
        if service is None:
            raise web.HTTPNotFound(text="no such service: AVTransport, RenderingControl, ConnectionManager")
        return service

    def reachable(self, remote: str | None) -> Iterable[str]:
        assert self._api is not None
        for hid in sorted(self._api.registry.households):
            if self.may_reach(hid, remote) and self._tv_name(hid) is not None:
                yield hid

    async def _list(self, request: web.Request) -> web.Response:
        items = []
        for hid in self.reachable(request.remote):
            renderer = self.renderer(hid)
            if renderer is not None:
                description = f"{self.url}{renderer.prefix}/description.xml"
                items.append({"name": renderer.name, "description": description})
        return web.json_response({"items": items, "total": len(items)})

    async def _description(self, request: web.Request) -> web.Response:
        return await to_xml(self._require(request).device, request)  # type: ignore[arg-type]

    async def _scpd(self, request: web.Request) -> web.Response:
        return await to_xml(self._service(request), request)  # type: ignore[arg-type]

    async def _control(self, request: web.Request) -> web.Response:
        service = self._service(request)
        try:
            return await action_handler(service, request)  # type: ignore[arg-type]
        except (UpnpError, ValueError, TypeError, KeyError) as exc:
            # An argument the action does not take, or a value of the wrong type ('loud' for a
            # volume): the library lets these out as a 500; the phone is told what was wrong.
            _LOGGER.debug("cast: action refused from %s: %r", request.remote, exc)
            return web.Response(
                status=400, text=f"not a valid {service.service_type} action request: {exc}"[:300]
            )

    async def _subscribe(self, request: web.Request) -> web.Response:
        service = self._service(request)
        if "SID" not in request.headers:  # a new subscription (a renewal has no CALLBACK)
            refusal = _callback_refusal(request.headers.get("CALLBACK", ""), request.remote)
            if refusal is not None:
                return web.Response(status=412, text=refusal)
            service.prune()  # type: ignore[attr-defined]
            if service.subscribers >= MAX_SUBSCRIBERS:  # type: ignore[attr-defined]
                return web.Response(
                    status=503, text=f"at most {MAX_SUBSCRIBERS} subscribers; unsubscribe one first"
                )
        return await subscribe_handler(service, request)  # type: ignore[arg-type]

    async def _unsubscribe(self, request: web.Request) -> web.Response:
        return await unsubscribe_handler(self._service(request), request)  # type: ignore[arg-type]


def _callback_refusal(header: str, remote: str | None) -> str | None:
    """Why a SUBSCRIBE's CALLBACK is not taken (None: it is one URL at the subscriber's own address)."""
    text = header.strip()
    if not (text.startswith("<") and text.endswith(">")) or text.count("<") != 1:
        return "CALLBACK must be one <http://…> URL"
    try:
        parts = urlsplit(text[1:-1])
        host = ipaddress.ip_address(parts.hostname or "")
        peer = ipaddress.ip_address((remote or "").split("%", 1)[0])
    except ValueError:
        return "CALLBACK must name the subscriber's own IP address"
    if parts.scheme != "http" or host != peer:
        return "events are sent only to the subscriber's own address over http"
    return None


def _state_of(tv: Device, kind: str) -> Any:
    for cap in tv.profile.capabilities:
        if cap.kind == kind and (state := tv.states.get(cap.key)) is not None:
            return state.value
    return None


__all__ = ["CastRenderers", "HouseholdRenderer", "friendly_name"]


#: The casting component, for typed lookup by its peers (the portal).
CAST: ComponentKey[CastRenderers] = ComponentKey("cast", CastRenderers)
