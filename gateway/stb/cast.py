"""Component `cast`: each household's TV as a virtual DLNA MediaRenderer, whichever operator's box it is.

The "cast" (DLNA / "投屏") button every phone already has speaks UPnP AV to a
MediaRenderer. The gateway serves one renderer per household that has a TV box
(async-upnp-client's server side), at

    http://<cast.host>:<cast.port>/cast/<household>/description.xml

and turns what the phone asks — SetAVTransportURI + Play, Pause, Stop,
SetVolume, SetMute — into commands to the household's real box through
`Screens`, so a carrier box and a cable box are cast to alike.

Phones find renderers by SSDP on their own home network, which the property
office's gateway is not on; until a home router relays it, the description URL
is added to the phone's cast app by hand (the portal can show it). The
renderers are as open as /api/v1 until the portal's authentication covers
them, and bind to 127.0.0.1 by default.
"""

from __future__ import annotations

import logging
import uuid
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from async_upnp_client.aiohttp import AiohttpRequester
from async_upnp_client.const import DeviceInfo
from async_upnp_client.server import (
    UpnpServerDevice,
    UpnpServerService,
    action_handler,
    subscribe_handler,
    to_xml,
    unsubscribe_handler,
)

from gateway.context import Context
from gateway.stb.cast_services import (
    CastAVTransport,
    CastConnectionManager,
    CastRenderingControl,
    service_info,
)
from gateway.stb.screens import NoScreenError, Screens

if TYPE_CHECKING:
    from gateway.runtime import Gateway

_LOGGER = logging.getLogger(__name__)
_SERVICES: Final = (
    ("AVTransport", "urn:schemas-upnp-org:service:AVTransport:1", CastAVTransport),
    ("RenderingControl", "urn:schemas-upnp-org:service:RenderingControl:1", CastRenderingControl),
    ("ConnectionManager", "urn:schemas-upnp-org:service:ConnectionManager:1", CastConnectionManager),
)
MAX_RENDERERS: Final = 10_000


class HouseholdRenderer:
    """One household's renderer: the UPnP device and where its commands go."""

    def __init__(self, cast: CastRenderers, household_id: str, name: str, base_url: str) -> None:
        self._cast = cast
        self.household_id = household_id
        self.prefix = f"/cast/{household_id}"
        self.pending: tuple[str, str | None] | None = None
        services = {
            short: type(
                f"{cls.__name__}_{household_id}",
                (cls,),
                {"SERVICE_DEFINITION": service_info(self.prefix, short, service_type)},
            )
            for short, service_type, cls in _SERVICES
        }
        udn = f"uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'linli:{cast.gateway_id}:{household_id}')}"
        info = DeviceInfo(
            device_type="urn:schemas-upnp-org:device:MediaRenderer:1",
            friendly_name=f"{name} · 电视 TV (Linli)"[:64],
            manufacturer="Linli",
            manufacturer_url=None,
            model_description="The household's TV, whichever operator's set-top box",
            model_name="Linli virtual renderer",
            model_number="1",
            model_url=None,
            serial_number=household_id,
            udn=udn,
            upc=None,
            presentation_url=None,
            url=f"{self.prefix}/description.xml",
            icons=[],
            xml=ET.Element("server_device"),
        )
        device_type = type(
            f"CastRenderer_{household_id}",
            (UpnpServerDevice,),
            {"DEVICE_DEFINITION": info, "EMBEDDED_DEVICES": [], "SERVICES": list(services.values())},
        )
        self.device: UpnpServerDevice = device_type(AiohttpRequester(), base_url)
        self.services: dict[str, UpnpServerService] = {}
        for service in self.device.all_services:
            service.renderer = self  # type: ignore[attr-defined]
            short = service.service_id.rpartition(":")[2]
            self.services[short] = service  # type: ignore[assignment]

    def state(self, kind: str) -> Any:
        return self._cast.tv_state(self.household_id, kind)

    async def async_command(self, kind: str, value: dict[str, Any]) -> Any:
        return await self._cast.async_command(self.household_id, kind, value)


class CastRenderers:
    """The `cast` component."""

    name = "cast"
    requires: tuple[str, ...] = ("registry", "screens")

    def __init__(self) -> None:
        self._gateway: Gateway | None = None
        self._runner: web.AppRunner | None = None
        self._renderers: dict[str, HouseholdRenderer] = {}
        self.url: str | None = None
        self.gateway_id = ""

    async def async_start(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self.gateway_id = gateway.id
        cfg = gateway.config.get("cast", {})
        host, port = cfg.get("host", "127.0.0.1"), int(cfg.get("port", 8091))
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/cast/", self._list)
        app.router.add_get("/cast/{household}/description.xml", self._description)
        app.router.add_get("/cast/{household}/upnp/{service}.xml", self._scpd)
        app.router.add_post("/cast/{household}/upnp/control/{service}", self._control)
        app.router.add_route("SUBSCRIBE", "/cast/{household}/upnp/event/{service}", self._subscribe)
        app.router.add_route("UNSUBSCRIBE", "/cast/{household}/upnp/event/{service}", self._unsubscribe)
        runner = web.AppRunner(app, access_log=None)
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
        public = (
            cfg.get("public_url")
            or f"http://{host if host not in ('0.0.0.0', '::', '') else '127.0.0.1'}:{bound}"
        )
        self.url = str(public).rstrip("/")
        _LOGGER.info(
            "cast: households' TVs as DLNA renderers at %s/cast/<household>/description.xml", self.url
        )

    async def async_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._renderers.clear()

    # -- the households' TVs ----------------------------------------------------------

    def _screens(self) -> Screens:
        assert self._gateway is not None
        screens = self._gateway.components.get("screens")
        assert isinstance(screens, Screens)
        return screens

    def renderer(self, household_id: str) -> HouseholdRenderer | None:
        """The household's renderer, when it has a TV box."""
        assert self._gateway is not None
        household = self._gateway.registry.households.get(household_id)
        if household is None or self._screens().tv(household_id) is None:
            return None
        renderer = self._renderers.get(household_id)
        if renderer is None and len(self._renderers) < MAX_RENDERERS and self.url is not None:
            renderer = HouseholdRenderer(self, household_id, household.name, self.url)
            self._renderers[household_id] = renderer
        return renderer

    def tv_state(self, household_id: str, kind: str) -> Any:
        tv = self._screens().tv(household_id)
        if tv is None:
            return None
        for cap in tv.profile.capabilities:
            if cap.kind == kind and (state := tv.states.get(cap.key)) is not None:
                return state.value
        return None

    async def async_command(self, household_id: str, kind: str, value: dict[str, Any]) -> Any:
        screens = self._screens()
        tv = screens.tv(household_id)
        if tv is None:
            raise NoScreenError(f"household {household_id} has no TV set-top box")
        context = Context(household=household_id, origin="cast")
        return await screens.async_command(tv, kind, value, context=context)

    # -- HTTP ------------------------------------------------------------------------------

    def _require(self, request: web.Request) -> HouseholdRenderer:
        renderer = self.renderer(request.match_info["household"])
        if renderer is None:
            raise web.HTTPNotFound(text="no such household, or it has no TV box")
        return renderer

    def _service(self, request: web.Request) -> UpnpServerService:
        service = self._require(request).services.get(request.match_info["service"])
        if service is None:
            raise web.HTTPNotFound()
        return service

    async def _list(self, request: web.Request) -> web.Response:
        assert self._gateway is not None
        items = [
            {"household_id": hid, "description": f"{self.url}/cast/{hid}/description.xml"}
            for hid in sorted(self._gateway.registry.households)
            if self._screens().tv(hid) is not None
        ]
        return web.json_response({"items": items, "total": len(items)})

    async def _description(self, request: web.Request) -> web.Response:
        return await to_xml(self._require(request).device, request)  # type: ignore[arg-type]

    async def _scpd(self, request: web.Request) -> web.Response:
        return await to_xml(self._service(request), request)  # type: ignore[arg-type]

    async def _control(self, request: web.Request) -> web.Response:
        return await action_handler(self._service(request), request)  # type: ignore[arg-type]

    async def _subscribe(self, request: web.Request) -> web.Response:
        return await subscribe_handler(self._service(request), request)  # type: ignore[arg-type]

    async def _unsubscribe(self, request: web.Request) -> web.Response:
        return await unsubscribe_handler(self._service(request), request)  # type: ignore[arg-type]


__all__ = ["CastRenderers", "HouseholdRenderer"]
