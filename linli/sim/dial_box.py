"""A simulated two-way cable box: a DIAL server and a UPnP/DLNA MediaRenderer on 127.0.0.1.

    GET  /description.xml     the UPnP device description (MediaRenderer:2, or :1), answered with the
                              DIAL headers `Application-URL: <base>/apps/` and `WAKEUP: MAC=…;Timeout=10`
    /upnp/…                   AVTransport, RenderingControl, ConnectionManager (async-upnp-client server)
    /apps/<name>              DIAL apps (dial_apps.py), with the operator's `Linli` companion app

`target` is what the stb_broadcast adapter is given: the description's URL
(its SSDP LOCATION).

Boxes from outside the project differ, and the tests need them as they are:

* `dial=False`: a plain DLNA MediaRenderer (a smart TV, a renderer app) — no
  DIAL headers, no /apps; only AVTransport, RenderingControl, ConnectionManager.
* `description_status=404`: a DIAL server whose LOCATION answers 404 — with
  the DIAL headers, which is all DIAL asks of that answer (many real DIAL
  devices do this) — so the box is reachable over DIAL only.
* `companion=False`: a cable box without the operator's `Linli` DIAL app
  (what every box is until the operator installs it, docs/operators.md).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiohttp import web
from async_upnp_client.server import subscribe_handler, to_xml, unsubscribe_handler

from linli.gateway.stb.channels import dvb_uri
from linli.sim.box import SimBox
from linli.sim.dial_apps import LINLI_APP, DialApps
from linli.sim.lineups import BROADCAST_LINEUP
from linli.sim.renderer import MediaRendererDevice, NotifyRequester, control_handler

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

XML_BOMB = (
    b'<?xml version="1.0"?>\n<!DOCTYPE root [\n<!ENTITY a "aaaaaaaaaa">\n'
    + b"".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">\n'.encode() for i in range(8))
    + b']>\n<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor>'
    b"</specVersion><device><deviceType>urn:schemas-upnp-org:device:MediaRenderer:1</deviceType>"
    b"<friendlyName>&i;</friendlyName><manufacturer>x</manufacturer><modelName>x</modelName>"
    b"<UDN>uuid:00000000-0000-0000-0000-000000000000</UDN></device></root>"
)


def _shielded(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A SUBSCRIBE completes even when the control point hangs up at once (upnp-client does):
    the server cancels the handler on a closed connection, and the subscriber was then lost."""

    async def run(request: web.Request) -> web.StreamResponse:
        return await asyncio.shield(handler(request))

    return run


class DialBox(SimBox):
    """One simulated DVB-C box."""

    kind = "dial-dlna"

    def __init__(
        self,
        *,
        name: str = "dial-box",
        port: int = 0,
        mac: str | None = None,
        upnp_version: int = 2,
        dial: bool = True,
        description_status: int = 200,
        companion: bool = True,
    ) -> None:
        super().__init__(name=name, port=port, mac=mac)
        self.upnp_version = upnp_version  # MediaRenderer:2 (GetStateVariables) or :1
        self.has_dial = dial
        self.description_status = description_status
        self.companion = companion
        self.udn = f"uuid:{uuid.uuid5(uuid.NAMESPACE_DNS, f'{name}.sim.linli')}"
        self.dial = DialApps(self, base_path="/apps")
        self.device: MediaRendererDevice | None = None
        self.soap_actions: Counter[str] = Counter()  # actions received, by name
        # Some renderers stop when given a new URI while playing (AVTransport says they keep
        # playing): the adapter must still get them to play.
        self.stops_on_new_uri = False
        self.notifier = NotifyRequester()  # the GENA NOTIFYs to subscribers

    @property
    def url(self) -> str:
        """The description's URL: the adapter's target."""
        return f"{self.base_url}/description.xml"

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024)
        device = MediaRendererDevice.for_box(self, self.udn, self.notifier, self.upnp_version)
        if self.device is not None:  # keep what was playing across a power cycle
            for old, new in zip(self.device.all_services, device.all_services, strict=True):
                new.__dict__.update({k: v for k, v in old.__dict__.items() if k in ("uri", "metadata")})
        self.device = device
        guard = self._misbehaving
        app.router.add_get("/description.xml", guard(partial(self._description, device)))
        for service in device.all_services:
            definition = service.SERVICE_DEFINITION  # type: ignore[attr-defined]
            app.router.add_get(definition.scpd_url, guard(partial(to_xml, service)))
            app.router.add_post(
                definition.control_url, guard(partial(control_handler, service), control=True)
            )
            app.router.add_route(
                "SUBSCRIBE", definition.event_sub_url, guard(_shielded(partial(subscribe_handler, service)))
            )
            app.router.add_route(
                "UNSUBSCRIBE", definition.event_sub_url, guard(partial(unsubscribe_handler, service))
            )
        if self.has_dial:
            self.dial.add_routes(app, wrap=lambda handler: guard(self._apps(handler)))
        return app

    def _apps(self, handler: Handler) -> Handler:
        """The DIAL app routes, without the operator's companion app when the box has none."""

        async def apps(request: web.Request) -> web.StreamResponse:
            if not self.companion and request.match_info.get("app") == LINLI_APP:
                self.requests += 1
                raise web.HTTPNotFound()  # what a DIAL server answers for an app it does not have
            return await handler(request)

        return apps

    async def remote_tune(self, lcn: int) -> None:
        record = next(r for r in BROADCAST_LINEUP if r["lcn"] == lcn)
        av = self._service("AVTransport")
        await av.set_uri(InstanceID=0, CurrentURI=dvb_uri(record), CurrentURIMetaData="")
        if av.transport != "PLAYING":
            await av.play(InstanceID=0, Speed="1")

    async def remote_volume(self, level: int) -> None:
        await self._service("RenderingControl").set_volume(
            InstanceID=0, Channel="Master", DesiredVolume=level
        )

    def _service(self, name: str) -> Any:
        """The renderer's service (what the remote's firmware calls, as a control point would)."""
        assert self.device is not None, "the box is not running"
        return next(s for s in self.device.all_services if f":service:{name}:" in s.service_type)

    async def async_stop(self) -> None:
        await super().async_stop()
        await self.notifier.async_close()

    async def _description(self, device: MediaRendererDevice, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        headers = (
            {"Application-URL": self.dial.application_url, "WAKEUP": f"MAC={self.mac};Timeout=10"}
            if self.has_dial
            else {}
        )
        if self.description_status != 200:
            return web.Response(status=self.description_status, text="Not Found", headers=headers)
        if self.misbehave == "bomb":
            return web.Response(body=XML_BOMB, content_type="text/xml", headers=headers)
        response = await to_xml(device, request)
        response.headers.update(headers)
        return response

    def _misbehaving(self, handler: Handler, *, control: bool = False) -> Handler:
        """The handler, or the hostile answer `misbehave` asks for (wrapped per route, not as a
        middleware, so that a well-behaved box pays nothing for it — as the Thunder box does not)."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            mode = self.misbehave
            if mode is None:
                return await handler(request)
            if mode in ("hang", "huge"):
                self.requests += 1
                if mode == "hang":
                    return await self.hang(request, "text/xml")
                return await self.huge(request, "text/xml")
            if mode == "malformed" and control:
                self.requests += 1
                return web.Response(body=b"<s:Envelope><s:Body><u:GetVolumeRes", content_type="text/xml")
            return await handler(request)

        return guarded
