"""One error shape for every route: `{"error": {"code", "message", ...details}}`."""

from __future__ import annotations

from typing import Any, Final

import orjson
from aiohttp import web

#: HTTP status of each stable error code (anything else is 400).
STATUS_OF: Final[dict[str, int]] = {
    "unauthenticated": 401,
    "invalid_credentials": 401,
    "invalid_token": 401,
    "csrf_failed": 403,
    "forbidden": 403,
    "consent_required": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "name_taken": 409,
    "open_sensors": 409,
    "alarm_active": 409,
    "body_too_large": 413,
    "unsupported_media_type": 415,
    "locked_out": 429,
    "too_many_attempts": 429,
    "wrong_pin": 403,
    "not_supported": 422,
    "unavailable": 503,
    "internal": 500,
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


def not_found(what: str) -> ApiError:
    return ApiError("not_found", f"no {what}, or it is not yours to see")
