"""Component `portal`: the aiohttp application on the portal port.

Sign-in and roles, the REST API and its OpenAPI document, live events, and the
phone, TV and manager pages (`assembly.py` wires them). Every caller signs in —
a page with a session cookie, a program with a bearer token, a paired TV with
its screen credential — and sees only what their role and households allow; on
first run the console prints a one-time link to create the manager's account.
The gateway binds to 127.0.0.1 by default (`portal.host` to serve the network).
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from linli.gateway.component import ComponentApi, ComponentKey
from linli.portal import config
from linli.portal.assembly import install
from linli.portal.auth.middleware import ACCOUNTS

_LOGGER = logging.getLogger(__name__)
STATIC: Final = Path(__file__).resolve().parent / "static"
GATEWAY_KEY: Final = web.AppKey("gateway", ComponentApi)
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


def create_app(gateway: ComponentApi) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[GATEWAY_KEY] = gateway
    install(app, gateway)  # sign-in, roles, the REST API, live events, the phone/TV/manager pages
    app.router.add_static("/static/", STATIC)
    return app


class Portal:
    name = "portal"
    config_schema = config.CONFIG_SCHEMA  # its own section of the configuration
    config_defaults = config.CONFIG_DEFAULTS
    check_config = staticmethod(config.check_config)
    requires = ("registry", "mqtt")

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.url: str | None = None
        self.setup_url: str | None = None

    async def async_start(self, api: ComponentApi) -> None:
        gateway = api
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


#: The portal component, for typed lookup (the command line prints its address).
PORTAL: ComponentKey[Portal] = ComponentKey("portal", Portal)
