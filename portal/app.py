"""Component `portal`: the aiohttp application on the portal port.

For now a read-only view of the community: households, devices and their live
state (the full portal — auth, roles, phone/TV/manager UIs — is its own issue).
The gateway binds to 127.0.0.1 by default; exposing this read-only page beyond
the property office's network waits for the portal's authentication.
"""

from __future__ import annotations

import errno
import logging
import time
from pathlib import Path
from typing import Any, Final

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from linli.gateway import __version__
from linli.gateway.runtime import Gateway
from linli.portal.adapters_api import register_adapter_routes
from linli.portal.api.community import device_view, scoped_households
from linli.portal.api.operations import PRINCIPAL
from linli.portal.assembly import install
from linli.portal.auth.middleware import ACCOUNTS
from linli.portal.inbox_api import register_inbox_routes
from linli.portal.screens_api import register_screen_routes

_LOGGER = logging.getLogger(__name__)
STATIC: Final = Path(__file__).resolve().parent / "static"
GATEWAY_KEY: Final = web.AppKey("gateway", Gateway)
#: The longest header line and value the portal reads (aiohttp's own default, stated here):
#: anything longer is refused with 400 before it reaches the auth middleware.
MAX_HEADER_BYTES: Final = 8190


class _ClientErrorsAreNotOurs(logging.Filter):
    """aiohttp logs a request it cannot parse (a header over the limit, a bad request line) as an
    ERROR with a traceback, though the client sent it and got its 400. Such a record becomes one
    INFO line naming the address and the fault — and not the header, which may hold a token.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 400) < 500:
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else None
            record.msg = "refused a request from %s that HTTP cannot parse (%s); answered %d"
            record.args = (remote, type(exc).__name__, exc.code or 400)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


_HTTP_LOGGER: Final = logging.getLogger("portal.http")
_HTTP_LOGGER.addFilter(_ClientErrorsAreNotOurs())
#: What the portal's HTTP server is started with (the component and the tests alike).
SERVER_OPTIONS: Final[dict[str, Any]] = {
    "access_log": None,
    "logger": _HTTP_LOGGER,
    "max_line_size": MAX_HEADER_BYTES,
    "max_field_size": MAX_HEADER_BYTES,
}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": {"code": code, "message": message}}, status)


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def _status(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY_KEY]
    adapter = gateway.components.get("mqtt_device")
    return _json(
        {
            "gateway_id": gateway.id,
            "version": __version__,
            "community": {"id": gateway.registry.community_id, "name": gateway.registry.community_name},
            "uptime_s": round(time.time() - (gateway.started_at or time.time()), 1),
            "startup_s": gateway.startup_s,
            "households": len(gateway.registry.households),
            "devices": len(gateway.registry.devices),
            "devices_available": sum(1 for d in gateway.registry.devices.values() if d.available),
            "mqtt": gateway.mqtt.stats(),
            "ingest": {
                "accepted": getattr(adapter, "accepted", 0),
                "rejected": getattr(adapter, "rejected", 0),
            },
            "store": {
                "rows_written": gateway.store.rows_written,
                "pending_rows": gateway.store.pending_rows,
                "batches": gateway.store.batches_written,
            },
            "profile_errors": gateway.profiles.errors,
        }
    )


async def _households(request: web.Request) -> web.Response:
    registry = request.app[GATEWAY_KEY].registry
    visible = scoped_households(request.get(PRINCIPAL), request.app[GATEWAY_KEY])
    items = []
    for household in sorted(registry.households.values(), key=lambda h: h.id):
        if visible is not None and household.id not in visible:
            continue
        devices = registry.household_devices(household.id)
        unit = registry.units.get(household.unit_id)
        building = registry.buildings.get(unit.building_id) if unit else None
        items.append(
            {
                "id": household.id,
                "name": household.name,
                "unit": unit.name if unit else None,
                "building": building.name if building else None,
                "devices": len(devices),
                "devices_available": sum(1 for d in devices if d.available),
                "last_seen": max((d.last_seen or 0 for d in devices), default=None) or None,
            }
        )
    return _json({"items": items, "total": len(items)})


async def _household_devices(request: web.Request) -> web.Response:
    registry = request.app[GATEWAY_KEY].registry
    household_id = request.match_info["household_id"]
    visible = scoped_households(request.get(PRINCIPAL), request.app[GATEWAY_KEY])
    if household_id not in registry.households or (visible is not None and household_id not in visible):
        return _error(404, "not_found", f"no household {household_id!r}")
    devices = sorted(registry.household_devices(household_id), key=lambda d: d.id)
    # The same view as the REST API's: a provider's key sees only its kinds, and a health
    # value only whoever may read the household's health data (never the open local views).
    gateway = request.app[GATEWAY_KEY]
    items = [device_view(d, request.get(PRINCIPAL), gateway) for d in devices]
    return _json({"items": items, "total": len(items)})


def create_app(gateway: Gateway) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[GATEWAY_KEY] = gateway
    app.router.add_get("/", _index)
    app.router.add_get("/api/v1/status", _status)
    app.router.add_get("/api/v1/households", _households)
    app.router.add_get("/api/v1/households/{household_id}/devices", _household_devices)
    register_inbox_routes(app, GATEWAY_KEY)
    install(app, gateway)  # sign-in, roles, the REST API, live events, the phone/TV/manager pages
    register_adapter_routes(app, GATEWAY_KEY)
    register_screen_routes(app, GATEWAY_KEY)
    app.router.add_static("/static/", STATIC)
    return app


class Portal:
    name = "portal"
    requires = ("registry", "mqtt")

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.url: str | None = None
        self.setup_url: str | None = None

    async def async_start(self, gateway: Gateway) -> None:
        cfg = gateway.config["portal"]
        if not cfg["enabled"]:
            return
        runner = web.AppRunner(create_app(gateway), **SERVER_OPTIONS)
        await runner.setup()
        site = web.TCPSite(runner, cfg["host"], cfg["port"], reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise RuntimeError(
                    f"portal port {cfg['host']}:{cfg['port']} is already in use: stop the other "
                    "program or choose another port with --port / portal.port"
                ) from None
            raise
        self._runner = runner
        host = cfg["host"] if cfg["host"] not in ("0.0.0.0", "::", "") else "127.0.0.1"
        self.url = f"http://{host}:{cfg['port']}/"
        _LOGGER.info("portal listening on %s", self.url)
        self.setup_url = None
        # The demo makes its own accounts (and prints them) once its homes exist.
        secret = None if "demo" in gateway.config else await runner.app[ACCOUNTS].async_setup_secret()
        if secret is not None:
            # A secret: printed for the operator at the console, never logged.
            self.setup_url = f"{self.url}setup#token={secret}"
            print(
                "\n  First run: no accounts yet. Create the property manager's account here\n"
                f"  (valid for 1 hour, once): {self.setup_url}\n",
                flush=True,
            )
            _LOGGER.info("no accounts yet: the one-time setup link is printed on the console")

    async def async_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
