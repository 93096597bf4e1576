"""The OpenAPI 3.1 document, generated from the same declarations that serve and validate each route."""

from __future__ import annotations

from typing import Any, Final

from linli.gateway import __version__
from linli.portal.api.operations import Api, Operation
from linli.portal.auth.grants import roles_for

ERROR_SCHEMA: Final = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "stable, for programs"},
                "message": {"type": "string", "description": "what failed and what to do, for people"},
            },
        }
    },
}


def document_other_routes(api: Api) -> None:
    """Routes that are not operations: the live-event WebSocket, this document, the docs page."""
    api.document(
        Operation(
            method="GET",
            path="/api/v1/ws",
            summary="Open the live-event WebSocket (alerts, state, alarm, announcements)",
            tag="live",
            handler=None,
            roles=roles_for("GET", "/api/v1/ws"),
        )
    )
    for path, summary in [
        ("/api/v1/openapi.json", "This document (OpenAPI 3.1)"),
        ("/api/docs", "The readable API documentation page"),
    ]:
        api.document(
            Operation(
                method="GET",
                path=path,
                summary=summary,
                tag="docs",
                handler=None,
                roles=frozenset(),
                public=True,
            )
        )


def _other_modules(api: Api, routes: list[tuple[str, str, Any]]) -> list[Operation]:
    """Routes other modules added to the app (set-top boxes, adapters, …): listed, so none is left out."""
    known = {(op.method, op.path) for op in api.operations}
    found = []
    for method, path, handler in routes:
        if not path.startswith("/api/") or method in ("HEAD", "OPTIONS") or (method, path) in known:
            continue
        doc = (getattr(handler, "__doc__", None) or "").strip().splitlines()
        found.append(
            Operation(
                method=method,
                path=path,
                summary=doc[0] if doc else f"{method} {path}",
                tag=path.removeprefix("/api/v1/").split("/")[0] or "other",
                handler=None,
                roles=roles_for(method, path),  # none: refused to everyone until declared
            )
        )
    return found


def build(api: Api, server_url: str = "/", routes: list[tuple[str, str, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    paths: dict[str, dict[str, Any]] = {}
    for op in [*api.operations, *_other_modules(api, routes)]:
        item: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in op.path_params
            ]
            + [
                {"name": name, "in": "query", "required": False, "schema": schema}
                for name, schema in op.query.items()
            ],
            "responses": {
                str(op.status): {
                    "description": "done",
                    "content": {"application/json": {"schema": op.response or {"type": "object"}}},
                },
                "default": {
                    "description": "the uniform error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        }
        if op.description:
            item["description"] = op.description
        if op.path == "/api/v1/ws":
            item["responses"] = {"101": {"description": "switching to the WebSocket protocol"}}
        if op.path == "/api/docs":
            item["responses"] = {
                "200": {"description": "a page", "content": {"text/html": {"schema": {"type": "string"}}}}
            }
        roles = sorted(str(r) for r in op.roles)
        item["x-linli-roles"] = roles
        if op.public:
            item["security"] = []
            item["x-linli-roles"] = ["anyone"]
        if op.open_locally:
            item["x-linli-open-locally"] = True  # also without a sign-in, on this machine, in the demo
        if op.body is not None:
            item["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": op.body}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = item
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Linli portal API",
            "version": __version__,
            "description": (
                "One API for residents, carers, property managers, installers and service providers. "
                "Every route is scoped by household and role on the server. Web pages sign in with a "
                "session cookie and send X-CSRF-Token on changes; programs send Authorization: Bearer. "
                'Errors are {"error": {"code", "message"}}.'
            ),
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "linli_session"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"session": []}, {"bearer": []}],
    }
