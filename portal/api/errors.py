"""The portal's one error table and error shape, for every route (the API, the TV's, the inbox's).

Every error answers `{"error": {"code", "message", ...details}}`, its HTTP status
looked up here by its stable code — whichever layer raised it (a handler, the auth
middleware, a service's `LinliError`, a box's `CommandError`). A code missing from
the table is a 400: the caller sent something the gateway could not act on.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from aiohttp import web

#: HTTP status of each stable error code (anything else is 400).
STATUS_OF: Final[dict[str, int]] = {
    "bad_request": 400,
    "invalid_command": 400,  # a verb the device has, with parameters its contract refuses
    "actor_required": 400,
    "unauthenticated": 401,
    "invalid_credentials": 401,
    "invalid_token": 401,
    "csrf_failed": 403,
    "forbidden": 403,
    "consent_required": 403,
    "wrong_pin": 403,
    "not_found": 404,
    "unknown_household": 404,
    "unknown_device": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "name_taken": 409,
    "open_sensors": 409,
    "alarm_active": 409,
    "no_screen": 409,  # the household has no TV box (or multi-screen is not running)
    # the discovery inbox: a decision the item's state or the registry does not allow now
    "already_approved": 409,
    "not_restorable": 409,
    "no_profile": 409,
    "not_adoptable": 409,
    "no_household": 409,
    "registry": 409,
    "wrong_household": 409,
    "adapter": 409,
    "body_too_large": 413,
    "unsupported_media_type": 415,
    # a capability the device lacks: the request is well formed, this device cannot do it —
    # the same answer on every route (the TV's included), never 501, which would say the
    # gateway's own code is missing something
    "not_supported": 422,
    "locked_out": 429,
    "too_many_attempts": 429,
    "internal": 500,
    "box_error": 502,  # the box answered, with a fault
    "unavailable": 503,
}
#: The error code of each HTTP status aiohttp raises itself (no route, wrong method, too large).
CODE_OF_HTTP: Final[dict[int, str]] = {
    401: "unauthenticated",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


class ApiError(Exception):
    """Raised by a handler; becomes the uniform JSON error."""

    def __init__(self, code: str, message: str, *, status: int | None = None, **data: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_OF.get(code, 400)
        self.data = data

    def response(self) -> web.Response:
        headers = {}
        if "retry_after_s" in self.data:
            headers["Retry-After"] = str(max(1, int(self.data["retry_after_s"] + 0.999)))
        return json_response(
            {"error": {"code": self.code, "message": self.message, **self.data}}, self.status, headers
        )


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def http_error(exc: web.HTTPException, request: web.Request) -> ApiError:
    """aiohttp's own refusal (no such route, a method the route lacks) in the uniform shape."""
    message = {
        404: f"no route {request.method} {request.path}; see /api/v1/openapi.json",
        405: f"{request.method} is not allowed on {request.path}; see /api/v1/openapi.json",
    }.get(exc.status, exc.reason)
    return ApiError(CODE_OF_HTTP.get(exc.status, "bad_request"), message, status=exc.status)


def not_found(what: str) -> ApiError:
    return ApiError("not_found", f"no {what}, or it is not yours to see")
