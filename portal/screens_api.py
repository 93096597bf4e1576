"""Multi-screen routes: the household's TV as a target for its phones, whichever operator's box it is.

    GET    /api/v1/households/{id}/screens             the household's TV box and its state
    POST   /api/v1/households/{id}/screens/tv/notify   {"text", "title"?, "level"?: info|warning|alarm}
    DELETE /api/v1/households/{id}/screens/tv/notify   take the message off the screen
    POST   /api/v1/households/{id}/screens/tv/play     {"url", "title"?}, or a channel: {"lcn"} / {"channel"}
    POST   /api/v1/households/{id}/screens/tv/open     {"url"?} a web page; none: the Linli TV portal
    GET    /screens/overlay?text=…&title=…&level=…     the overlay page that web-overlay boxes load

Answers carry the confirmed state read back from the box and the round trip in
ms. Errors are JSON `{"error": {"code", "message"}}`, the code being the
uniform command error: `not_supported` (501), `invalid_command` (400),
`unavailable` (503, with `last_seen`), `box_error` (502), `no_screen` (409).
Until the portal's authentication arrives (its own issue) these routes are
as open as the rest of /api/v1; the gateway binds to 127.0.0.1 by default.
"""

from __future__ import annotations

import html
from typing import Any, Final

import orjson
from aiohttp import web

from linli.gateway.commands import CommandError
from linli.gateway.context import Context
from linli.gateway.runtime import Gateway
from linli.gateway.stb.errors import BoxUnreachableError
from linli.portal.api.community import device_view
from linli.portal.api.operations import PRINCIPAL
from linli.services.screens.screens import Screens

_STATUS_OF: Final = {
    "unknown_household": 404,
    "unknown_device": 404,
    "no_screen": 409,
    "not_supported": 501,
    "invalid_command": 400,
    "bad_request": 400,
    "unavailable": 503,
    "box_error": 502,
}
_COLOURS: Final = {"alarm": "#b00020", "warning": "#b35c00", "info": "#0b5394"}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(code: str, message: str, **extra: Any) -> web.Response:
    return _json({"error": {"code": code, "message": message, **extra}}, _STATUS_OF.get(code, 500))


class _Routes:
    def __init__(self, gateway_key: web.AppKey[Gateway]) -> None:
        self._key = gateway_key

    def _screens(self, request: web.Request) -> Screens | None:
        component = request.app[self._key].components.get("screens")
        return component if isinstance(component, Screens) else None

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any] | str:
        """The JSON object sent, or what is wrong with it."""
        try:
            body = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError as exc:
            return f"body is not JSON: {exc}"
        if not isinstance(body, dict):
            return "body must be a JSON object"
        return body

    def _context(self, request: web.Request, household: str) -> Context:
        # who asked is the signed-in person, never something the request says about itself
        principal = request.get(PRINCIPAL)
        user = principal.name if principal is not None else None
        return Context(household=household, origin="portal:screens", user=user)

    async def _do(self, request: web.Request, action: str) -> web.Response:
        screens = self._screens(request)
        if screens is None:
            return _error("no_screen", "multi-screen is not running (component 'screens' is not configured)")
        household = request.match_info["household_id"]
        body = await self._body(request) if request.method == "POST" else {}
        if isinstance(body, str):
            return _error("bad_request", body)
        context = self._context(request, household)
        try:
            if action == "notify":
                text = body.get("text")
                if not isinstance(text, str) or not text.strip():
                    return _error("bad_request", "say what to show: a non-empty 'text'")
                result = await screens.async_notify(
                    household,
                    text.strip(),
                    title=body.get("title") if isinstance(body.get("title"), str) else None,
                    level=body.get("level", "info"),
                    context=context,
                )
            elif action == "clear":
                result = await screens.async_clear(household, context=context)
            elif action == "play":
                known = {k: body[k] for k in ("url", "title", "lcn", "channel") if k in body}
                if not {"url", "lcn", "channel"} & known.keys():
                    return _error(
                        "bad_request", "say what to play: a 'url', a channel number 'lcn' or a 'channel'"
                    )
                result = await screens.async_play(household, context=context, **known)
            else:
                result = await screens.async_open(household, url=body.get("url"), context=context)
        except BoxUnreachableError as exc:
            return _error(exc.code, exc.message, last_seen=exc.last_seen)
        except CommandError as exc:
            return _error(exc.code, exc.message)
        except (TypeError, ValueError) as exc:
            return _error("bad_request", str(exc))
        return _json(result)

    async def notify(self, request: web.Request) -> web.Response:
        return await self._do(request, "notify")

    async def clear(self, request: web.Request) -> web.Response:
        return await self._do(request, "clear")

    async def play(self, request: web.Request) -> web.Response:
        return await self._do(request, "play")

    async def open(self, request: web.Request) -> web.Response:
        return await self._do(request, "open")

    async def list_screens(self, request: web.Request) -> web.Response:
        gateway = request.app[self._key]
        household = request.match_info["household_id"]
        if household not in gateway.registry.households:
            return _error("unknown_household", f"no household {household!r}")
        screens = self._screens(request)
        tv = screens.tv(household) if screens is not None else None
        # the same view as every device list: the overlay's text (an SOS naming the resident,
        # a reading) and what the box plays are people's data, shown to whom may see them
        principal = request.get(PRINCIPAL)
        return _json({"tv": device_view(tv, principal, gateway) if tv is not None else None})


async def overlay_page(request: web.Request) -> web.Response:
    """What a box's overlay app shows: the message in large type (escaped), coloured by level."""
    text = html.escape(request.query.get("text", "")[:500])
    title = html.escape(request.query.get("title", "")[:100])
    level = request.query.get("level", "info")
    colour = _COLOURS.get(level, _COLOURS["info"])
    heading = f"<h1>{title}</h1>" if title else ""
    page = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>{title or "邻里 Linli"}</title>
<style>body{{margin:0;background:transparent;font-family:"Noto Sans CJK SC",sans-serif}}
.overlay{{position:fixed;left:5%;right:5%;bottom:8%;padding:2.5rem 3rem;border-radius:1rem;
background:{colour};color:#fff;box-shadow:0 .5rem 2rem rgba(0,0,0,.5)}}
h1{{margin:0 0 .5rem;font-size:3.5rem}}p{{margin:0;font-size:2.75rem;line-height:1.3}}</style></head>
<body><div class="overlay" role="alert">{heading}<p>{text}</p></div></body></html>"""
    return web.Response(text=page, content_type="text/html")


def register_screen_routes(app: web.Application, gateway_key: web.AppKey[Gateway]) -> None:
    routes = _Routes(gateway_key)
    base = "/api/v1/households/{household_id}/screens"
    app.router.add_get(base, routes.list_screens)
    app.router.add_post(base + "/tv/notify", routes.notify)
    app.router.add_delete(base + "/tv/notify", routes.clear)
    app.router.add_post(base + "/tv/play", routes.play)
    app.router.add_post(base + "/tv/open", routes.open)
    app.router.add_get("/screens/overlay", overlay_page)
