"""The REST operations: each declared once — path, roles, JSON Schemas — and served from that.

`Api.op(...)` registers a handler with what it needs; the same declaration
authorizes the call (role, and the household in the path checked against the
caller's reach), validates the query and the body against their JSON Schemas
(unknown fields refused), and becomes the operation in the OpenAPI 3.1
document (`openapi.py`). A route cannot be served without being documented,
nor documented without its schemas being the ones enforced.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import orjson
from aiohttp import web
from jsonschema import Draft202012Validator

from linli.gateway.component import ComponentApi, ComponentKey
from linli.gateway.errors import LinliError
from linli.gateway.users import Role
from linli.portal.api.errors import ApiError, json_response, not_found
from linli.portal.api.messages import caller_locale, validation_error
from linli.portal.auth.principal import EVERYONE, Principal, reaches

MAX_BODY: Final = 64 * 1024
#: The largest integer a query may carry: SQLite's and JSON's 64-bit range. A larger number
#: would overflow the store's binding or the response's encoding, so it is refused up front.
MAX_INT: Final = 2**63 - 1
_INTEGER: Final = re.compile(r"^-?[0-9]{1,19}$")  # ASCII digits only: int() also takes "²", "١٢", "1_0"
_NUMBER: Final = re.compile(r"^-?[0-9]{1,19}(\.[0-9]{1,19})?([eE][-+]?[0-9]{1,3})?$")
#: Path parameters that are numbers (the alert engine's ids): anything else is refused as malformed.
NUMERIC_PATH_PARAMS: Final = frozenset({"alert_id"})
#: Longer than any id the gateway makes; a longer path parameter is refused before any lookup.
MAX_PATH_PARAM: Final = 200
C = TypeVar("C")
GATEWAY: Final = web.AppKey("linli_gateway", ComponentApi)
# Request key set by the auth middleware (aiohttp ≥ 3.12 has typed request keys).
PRINCIPAL: Final[Any] = (
    web.RequestKey("linli_principal", Principal) if hasattr(web, "RequestKey") else "linli.principal"
)
#: Set by the auth middleware on a request nobody signed in to, from this machine's own browser,
#: where `portal.open_local_views` is on (the demo): an `open_locally` operation serves it.
LOCAL: Final[Any] = web.RequestKey("linli_local", bool) if hasattr(web, "RequestKey") else "linli.local"


@dataclass(slots=True, kw_only=True)
class Call:
    """What a handler gets: the request, who asks, and the validated input."""

    request: web.Request
    gateway: ComponentApi
    principal: Principal
    body: dict[str, Any]
    query: dict[str, Any]
    path: dict[str, str]

    @property
    def household_id(self) -> str:
        return self.path["household_id"]

    @property
    def ip(self) -> str:
        return self.request.remote or "?"

    def component(self, key: ComponentKey[C]) -> C:
        """The running service `key` names, typed; 503 `unavailable` when it is not running."""
        component = self.gateway.peer(key)
        if component is None:
            raise ApiError(
                "unavailable",
                f"the {key.name} service is not running on this gateway: add it to the components",
            )
        return component


Handler = Callable[[Call], Awaitable[Any]]
#: A handler as it is written (its own return type kept through `Api.op`).
H = TypeVar("H", bound=Handler)


@dataclass(slots=True, kw_only=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    handler: Handler | None
    roles: frozenset[Role]
    body: dict[str, Any] | None = None
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    response: dict[str, Any] | None = None
    public: bool = False
    status: int = 200
    description: str = ""
    guard: Handler | None = None  # checks the resource in the path before the body is read
    #: Read without a sign-in by this machine's own browser where `portal.open_local_views` is on.
    open_locally: bool = False

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def operation_id(self) -> str:
        words = re.sub(r"[{}]", "", self.path.removeprefix("/api/v1/")).replace("-", "_").split("/")
        return self.method.lower() + "_" + "_".join(w for w in words if w)


def obj(properties: dict[str, Any], required: Iterable[str] = (), **extra: Any) -> dict[str, Any]:
    """An object schema that refuses unknown fields."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": list(required),
        **extra,
    }


def text(max_length: int = 200, min_length: int = 1, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length, **extra}


ID: Final = text(64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")


class Api:
    """A table of operations: each module declares its own at module level (`ROUTES = Api()`,
    handlers decorated with `@ROUTES.op(...)`), and the portal's one table `include`s them all
    before `register` serves them — the same declarations the OpenAPI document is built from."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def include(self, other: Api) -> None:
        """Take in another module's operations (each path and method once across the portal)."""
        taken = {(op.method, op.path) for op in self.operations}
        for operation in other.operations:
            if (operation.method, operation.path) in taken:
                raise ValueError(f"{operation.method} {operation.path} is declared twice")
            self.operations.append(operation)

    def op(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        roles: Iterable[Role] = EVERYONE,
        body: dict[str, Any] | None = None,
        query: dict[str, dict[str, Any]] | None = None,
        response: dict[str, Any] | None = None,
        public: bool = False,
        status: int = 200,
        description: str = "",
        guard: Handler | None = None,
        open_locally: bool = False,
    ) -> Callable[[H], H]:
        def register(handler: H) -> H:
            self.operations.append(
                Operation(
                    method=method,
                    path=path,
                    summary=summary,
                    tag=tag,
                    handler=handler,
                    roles=frozenset(roles),
                    body=body,
                    query=bounded(query or {}),
                    response=response,
                    public=public,
                    status=status,
                    description=description,
                    guard=guard,
                    open_locally=open_locally,
                )
            )
            return handler

        return register

    def document(self, operation: Operation) -> None:
        """Describe a route served by another module (for the OpenAPI document only)."""
        self.operations.append(operation)

    def register(self, app: web.Application) -> None:
        for operation in self.operations:
            if operation.handler is not None:
                app.router.add_route(operation.method, operation.path, _serve(operation))


def bounded(query: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The query's schemas with every integer and number held within 64 bits (documented so).

    An `offset` without a maximum would otherwise take 2**64 and fail deep in SQLite or the
    JSON encoder; with the bound in the schema the refusal is the uniform 400, and the
    OpenAPI document says what is accepted.
    """
    out = {}
    for name, schema in query.items():
        if schema.get("type") in ("integer", "number"):
            schema = {
                "minimum": -MAX_INT - 1,
                **schema,
                "maximum": min(schema.get("maximum", MAX_INT), MAX_INT),
            }
        out[name] = schema
    return out


def _coerce(name: str, raw: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    try:
        if kind == "integer":
            if not _INTEGER.match(raw):
                raise ValueError(raw)
            return int(raw)
        if kind == "number":
            if not _NUMBER.match(raw):  # no "nan", "inf", nor digits of other scripts
                raise ValueError(raw)
            return float(raw)
        if kind == "boolean":
            if raw not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return raw in ("true", "1")
    except ValueError:
        shown = raw if len(raw) <= 40 else raw[:40] + "…"
        raise ApiError(
            "invalid_query",
            f"query parameter {name!r}: {shown!r} is not a{'n' if kind == 'integer' else ''} {kind} "
            "(ASCII digits, at most 19 of them)",
            field=f"query.{name}",
        ) from None
    return raw


def check_path(path: dict[str, str]) -> None:
    """Refuse a malformed path parameter (400) before any handler parses or looks it up."""
    for name, raw in path.items():
        if len(raw) > MAX_PATH_PARAM:
            raise ApiError(
                "invalid_path",
                f"path parameter {name!r} is {len(raw)} characters long; ids have at most {MAX_PATH_PARAM}",
                field=f"path.{name}",
            )
        if name in NUMERIC_PATH_PARAMS and (
            not _INTEGER.match(raw) or raw.startswith("-") or int(raw) > MAX_INT
        ):
            shown = raw if len(raw) <= 40 else raw[:40] + "…"
            raise ApiError(
                "invalid_path",
                f"path parameter {name!r}: {shown!r} is not an id (a whole number, ASCII digits 0-9)",
                field=f"path.{name}",
            )


def _first_error(validator: Draft202012Validator, data: Any, where: str, locale: str) -> ApiError | None:
    error = next(iter(sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))), None)
    # a sentence in the caller's language, with the machine fields kept (portal/api/messages.py)
    return None if error is None else validation_error(error, where, locale)


def _authorize(operation: Operation, request: web.Request, principal: Principal | None) -> None:
    """Refuse a caller the operation's declaration does not let in (before anything is read)."""
    if operation.public:
        return
    if principal is None and not (operation.open_locally and request.get(LOCAL)):
        raise ApiError(
            "unauthenticated", "sign in first (a session cookie or an Authorization: Bearer token)"
        )
    if principal is not None and principal.role not in operation.roles:
        raise ApiError(
            "forbidden",
            f"a {principal.role.value} may not {operation.summary[0].lower()}{operation.summary[1:]}",
        )


def _query(operation: Operation, request: web.Request) -> dict[str, Any]:
    """The query's parameters, each one the operation declares, as its schema's type."""
    query: dict[str, Any] = {}
    for name, value in request.query.items():
        schema = operation.query.get(name)
        if schema is None:
            raise ApiError(
                "invalid_query", f"unknown query parameter {name!r}; known: {sorted(operation.query)}"
            )
        query[name] = _coerce(name, value, schema)
    return query


def _serve(operation: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    body_validator = Draft202012Validator(operation.body) if operation.body is not None else None
    query_validator = Draft202012Validator(obj(operation.query)) if operation.query else None
    handler = operation.handler
    assert handler is not None

    async def serve(request: web.Request) -> web.StreamResponse:
        gateway = request.app[GATEWAY]
        principal: Principal | None = request.get(PRINCIPAL)
        _authorize(operation, request, principal)
        path = dict(request.match_info)
        check_path(path)
        household = path.get("household_id")
        if household is not None and principal is not None and not reaches(principal, gateway, household):
            raise not_found(f"household {household!r}")
        query = _query(operation, request)
        locale = caller_locale(request, principal.locale if principal is not None else None)
        if query_validator is not None and (error := _first_error(query_validator, query, "query", locale)):
            raise error
        call = Call(
            request=request,
            gateway=gateway,
            principal=principal,  # type: ignore[arg-type]
            body={},
            query=query,
            path=path,
        )
        if operation.guard is not None:
            await operation.guard(call)
        if body_validator is not None:
            call.body = await read_json(request)
            if error := _first_error(body_validator, call.body, "body", locale):
                raise error
        elif request.can_read_body and await read_json(request):
            raise ApiError(
                "invalid_body", f"{operation.method} {operation.path} takes no request body (or {{}})"
            )
        try:
            result = await handler(call)
        except LinliError as exc:
            # Whatever layer refused (a service, the registry, a box), the caller gets
            # its code and message in the uniform shape; handlers need not translate.
            raise ApiError(exc.code, exc.message, **exc.data) from None
        if isinstance(result, web.StreamResponse):
            return result
        return json_response(result, operation.status)

    return serve


async def read_json(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError("body_too_large", f"the request body is over {MAX_BODY // 1024} KiB")
    if request.content_type not in ("application/json", "application/octet-stream", ""):
        raise ApiError(
            "unsupported_media_type",
            f"send JSON (Content-Type: application/json), not {request.content_type}",
        )
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError("body_too_large", f"the request body is over {MAX_BODY // 1024} KiB")
    if not raw.strip():
        raw = b"{}"
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError("invalid_body", f"the request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError("invalid_body", "the request body must be a JSON object")
    if (where := _huge_integer(data, "body")) is not None:
        # JSON parses integers up to 2**64; SQLite binds only up to 2**63 - 1.
        raise ApiError("invalid_body", f"{where}: the number is too large (at most {MAX_INT})", field=where)
    return data


def _huge_integer(value: Any, where: str) -> str | None:
    """Where in `value` an integer lies outside 64 signed bits, or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return where if not -MAX_INT - 1 <= value <= MAX_INT else None
    if isinstance(value, dict):
        items: Iterable[tuple[str, Any]] = ((f".{k}", v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for key, item in items:
        if (found := _huge_integer(item, where + key)) is not None:
            return found
    return None
