"""A simulated DIAL server's applications (DIAL 2.1 REST service).

    GET    <base>/<app>       status document (urn:dial-multiscreen-org:schemas:dial)
    POST   <base>/<app>       launch with the body as payload → 201 Created, Location: <base>/<app>/run
    DELETE <base>/<app>/run   stop

`Linli` is the companion app the operator installs so that its box works with
the community gateway: its payload (form-encoded) shows or clears the alert
overlay (`overlay`, `title`, `level`), opens or closes a page of the Linli
portal (`page`), or puts the box in standby (`standby=1`); its status reports
them in `additionalData`. The other apps take a URL as their payload.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from aiohttp import web

if TYPE_CHECKING:
    from linli.sim.box import SimBox

LINLI_APP: Final = "Linli"
APPS: Final = (LINLI_APP, "YouTube", "Browser", "iQIYI")
MAX_PAYLOAD: Final = 4096
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class DialApps:
    """The DIAL apps of one simulated box; state is shown on the box's screen."""

    def __init__(self, box: SimBox, *, base_path: str = "/apps") -> None:
        self.box = box
        self.base_path = base_path.rstrip("/")
        self.running: set[str] = set()

    @property
    def application_url(self) -> str:
        return f"{self.box.base_url}{self.base_path}/"

    def add_routes(self, app: web.Application, wrap: Callable[[Handler], Handler] = lambda h: h) -> None:
        """The DIAL routes; `wrap` puts each handler behind the box's misbehaviour switch."""
        app.router.add_get(self.base_path + "/{app}", wrap(self._status))
        app.router.add_post(self.base_path + "/{app}", wrap(self._launch))
        app.router.add_delete(self.base_path + "/{app}/run", wrap(self._stop))

    def _state_xml(self, name: str) -> bytes:
        running = name in self.running
        extra = ""
        if name == LINLI_APP:
            overlay = self.box.screen.overlay or {}
            extra = (
                "<additionalData>"
                f"<overlay>{escape(overlay.get('text') or '')}</overlay>"
                f"<overlayTitle>{escape(overlay.get('title') or '')}</overlayTitle>"
                f"<overlayLevel>{escape(overlay.get('level') or '')}</overlayLevel>"
                f"<page>{escape(self.box.screen.portal_url or '')}</page>"
                "</additionalData>"
            )
        elif running and self.box.screen.app == name and self.box.screen.app_url:
            extra = f"<additionalData><url>{escape(self.box.screen.app_url)}</url></additionalData>"
        link = '<link rel="run" href="run"/>' if running else ""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<service xmlns="urn:dial-multiscreen-org:schemas:dial" dialVer="2.1">'
            f'<name>{escape(name)}</name><options allowStop="true"/>'
            f"<state>{'running' if running else 'stopped'}</state>{link}{extra}</service>"
        ).encode()

    async def _status(self, request: web.Request) -> web.StreamResponse:
        self.box.requests += 1
        name = request.match_info["app"]
        mode = self.box.misbehave
        if mode == "hang":
            return await self.box.hang(request, "text/xml")
        if mode == "huge":
            return await self.box.huge(request, "text/xml")
        if mode == "malformed":
            return web.Response(body=b"<service><name>Linli</name><state>runn", content_type="text/xml")
        if name not in APPS:
            raise web.HTTPNotFound()
        return web.Response(body=self._state_xml(name), content_type="text/xml", charset="utf-8")

    async def _launch(self, request: web.Request) -> web.Response:
        self.box.requests += 1
        name = request.match_info["app"]
        if name not in APPS:
            raise web.HTTPNotFound()
        body = await request.content.read(MAX_PAYLOAD + 1)
        if len(body) > MAX_PAYLOAD:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_PAYLOAD, actual_size=len(body))
        payload = body.decode("utf-8", "replace")
        screen = self.box.screen
        if name == LINLI_APP:
            form = parse_qs(payload, keep_blank_values=True)
            if form.get("standby", [""])[0] == "1":
                self.box.go_dark()
                return web.Response(status=200)
            if "overlay" in form:
                self.box.show_overlay(
                    form["overlay"][0], form.get("title", [""])[0] or None, form.get("level", [""])[0] or None
                )
            if "page" in form:
                screen.portal_url = form["page"][0] or None
            if screen.overlay or screen.portal_url:
                self.running.add(name)
            else:
                self.running.discard(name)
        else:
            url = payload.strip()
            if url.startswith("url="):
                url = parse_qs(payload).get("url", [""])[0]
            self.running.add(name)
            if screen.app and screen.app != name:
                self.running.discard(screen.app)
            screen.app, screen.app_url = name, url or None
        run = f"{self.base_path}/{name}/run"
        return web.Response(status=201, headers={"Location": f"{self.box.base_url}{run}"})

    async def _stop(self, request: web.Request) -> web.Response:
        self.box.requests += 1
        name = request.match_info["app"]
        if name not in APPS:
            raise web.HTTPNotFound()
        self.running.discard(name)
        screen = self.box.screen
        if name == LINLI_APP:
            self.box.show_overlay(None)
            screen.portal_url = None
        elif screen.app == name:
            screen.app, screen.app_url = None, None
        return web.Response(status=200)
