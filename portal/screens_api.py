"""Multi-screen routes: the household's TV as a target for its phones, whichever operator's box it is.

    GET    /api/v1/households/{id}/screens             the household's TV box and its state
    POST   /api/v1/households/{id}/screens/tv/notify   {"text", "title"?, "level"?: info|warning|alarm}
    DELETE /api/v1/households/{id}/screens/tv/notify   take the message off the screen
    POST   /api/v1/households/{id}/screens/tv/play     {"url", "title"?}, or a channel: {"lcn"} / {"channel"}
    POST   /api/v1/households/{id}/screens/tv/open     {"url"?} a web page; none: the Linli TV portal
    GET    /screens/overlay?text=…&title=…&level=…     the overlay page web-overlay boxes load (a static
                                                       file: static/screens/overlay.html reads its query)

Each route is declared like every other API operation (`operations.py`): the
members of the household and the property office may call it (`SCREEN_ROLES`),
a household beyond the caller's reach is "not found", and the OpenAPI document
is built from the same declaration. Answers carry the confirmed state read back
from the box and the round trip in ms. Errors are the portal's one shape and
table (`api/errors.py`): `not_supported` (422), `invalid_command` (400),
`unavailable` (503, with `last_seen`), `box_error` (502), `no_screen` (409).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Final

from linli.gateway.context import Context
from linli.gateway.stb.errors import BoxUnreachableError
from linli.portal.api.community import device_view
from linli.portal.api.errors import ApiError, not_found
from linli.portal.api.operations import Api, Call, obj
from linli.portal.auth.grants import SCREEN_ROLES
from linli.services.screens import SCREENS
from linli.services.screens.screens import Screens

#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()
_BASE: Final = "/api/v1/households/{household_id}/screens"
_TV: Final = _BASE + "/tv"
_STRING: Final = {"type": "string"}


def _screens(call: Call) -> Screens:
    component = call.gateway.peer(SCREENS)
    if not isinstance(component, Screens):
        raise ApiError("no_screen", "multi-screen is not running (component 'screens' is not configured)")
    return component


async def _at_box(sent: Awaitable[Any]) -> dict[str, Any]:
    """The box's answer; a box that is off says when it was last seen."""
    try:
        result: dict[str, Any] = await sent
    except BoxUnreachableError as exc:
        raise ApiError(exc.code, exc.message, last_seen=exc.last_seen) from None
    except (TypeError, ValueError) as exc:
        raise ApiError("bad_request", str(exc)) from None
    return result


def _context(call: Call) -> Context:
    # who asked is the signed-in person, never something the request says about itself
    return Context(household=call.household_id, origin="portal:screens", user=call.principal.name)


@ROUTES.op(
    "GET", _BASE, summary="Read the household's TV box and its state", tag="screens", roles=SCREEN_ROLES
)
async def list_screens(call: Call) -> dict[str, Any]:
    household = call.household_id
    if household not in call.gateway.registry.households:
        raise not_found(f"household {household!r}")
    component = call.gateway.peer(SCREENS)
    tv = component.tv(household) if isinstance(component, Screens) else None
    # the same view as every device list: the overlay's text (an SOS naming the resident,
    # a reading) and what the box plays are people's data, shown to whom may see them
    return {"tv": device_view(tv, call.principal, call.gateway) if tv is not None else None}


@ROUTES.op(
    "POST",
    _TV + "/notify",
    summary="Show a message on the household's TV",
    tag="screens",
    roles=SCREEN_ROLES,
    # the level's values are the box contract's to check (`invalid_command` names them)
    body=obj({"text": _STRING, "title": _STRING, "level": _STRING}),
)
async def notify(call: Call) -> dict[str, Any]:
    text = call.body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError("bad_request", "say what to show: a non-empty 'text'")
    return await _at_box(
        _screens(call).async_notify(
            call.household_id,
            text.strip(),
            title=call.body.get("title"),
            level=call.body.get("level", "info"),
            context=_context(call),
        )
    )


@ROUTES.op(
    "DELETE",
    _TV + "/notify",
    summary="Take the message off the household's TV",
    tag="screens",
    roles=SCREEN_ROLES,
)
async def clear(call: Call) -> dict[str, Any]:
    return await _at_box(_screens(call).async_clear(call.household_id, context=_context(call)))


@ROUTES.op(
    "POST",
    _TV + "/play",
    summary="Play a stream or a channel on the household's TV",
    tag="screens",
    roles=SCREEN_ROLES,
    body=obj(
        {
            "url": _STRING,
            "title": _STRING,
            "lcn": {"type": "integer", "minimum": 0, "maximum": 65535},
            "channel": {"type": "object", "maxProperties": 20, "description": "an OIPF channel record"},
        }
    ),
)
async def play(call: Call) -> dict[str, Any]:
    if not {"url", "lcn", "channel"} & call.body.keys():
        raise ApiError("bad_request", "say what to play: a 'url', a channel number 'lcn' or a 'channel'")
    return await _at_box(_screens(call).async_play(call.household_id, context=_context(call), **call.body))


@ROUTES.op(
    "POST",
    _TV + "/open",
    summary="Open a web page (none: the Linli TV portal) on the household's TV",
    tag="screens",
    roles=SCREEN_ROLES,
    body=obj({"url": _STRING}),
)
async def open_page(call: Call) -> dict[str, Any]:
    return await _at_box(
        _screens(call).async_open(call.household_id, url=call.body.get("url"), context=_context(call))
    )
