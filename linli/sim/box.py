"""What every simulated set-top box shares: a screen with observable state, power, and a network card.

A box serves HTTP on 127.0.0.1 while it is on. "Off" is deep standby: the HTTP
port is closed (connection refused, as with a real box) and only the Wake-on-LAN
listener is awake; a magic packet for its MAC brings it back on the same port.

Tests and benchmarks read `box.screen` (in-process) or GET /_sim/state (from
another process). `box.misbehave` makes the box hostile, for the tests that
check the gateway stays bounded and keeps serving other homes:

    "malformed"  answers that are not what the protocol says (bad JSON, wrong ids, bad XML)
    "fault"      protocol-level errors (a JSON-RPC error object, a SOAP fault)
    "hang"       starts the answer, then never finishes it
    "huge"       answers 10 MB
    "bomb"       an XML bomb (entity expansion) in its UPnP description
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from aiohttp import web

from linli.sim.wol import WakeListener

HUGE_BYTES: Final = 10 * 1024 * 1024


@dataclass(slots=True)
class Screen:
    """What a person in front of the TV would see and hear."""

    power: bool = True
    channel: dict[str, Any] | None = None
    overlay: dict[str, Any] | None = None  # {"text", "title", "level"}
    overlay_at: float | None = None  # time.time() when the overlay appeared
    overlays_shown: int = 0
    overlay_log: list[tuple[float, str]] = field(default_factory=list)  # (time.time(), text), the last 256
    app: str | None = None
    app_url: str | None = None
    media_url: str | None = None
    media_title: str | None = None
    media_state: str = "stopped"  # playing | paused | stopped
    volume: int = 20
    muted: bool = False
    portal_url: str | None = None
    keys: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sim_mac(seed: str) -> str:
    rng = random.Random(seed)
    return "02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5))  # locally administered


class SimBox:
    """Base of the simulated boxes: lifecycle, power, wake, misbehaviour."""

    kind = "box"

    def __init__(self, *, name: str = "box", port: int = 0, mac: str | None = None) -> None:
        self.name = name
        self.host = "127.0.0.1"
        self.port = port
        self.mac = mac or sim_mac(name)
        self.screen = Screen()
        self.misbehave: str | None = None
        self.requests = 0
        self.wol = WakeListener(self.mac, self._on_wake)
        self._runner: web.AppRunner | None = None
        self._waking: asyncio.Task[None] | None = None
        self._dark: asyncio.Task[None] | None = None
        #: A vendor's key-injection endpoint (`POST <path>/<key>`), for boxes whose maker has one
        #: beyond DIAL and DLNA; None: the box has none. Set before `async_start`.
        self.keypress_path: str | None = None

    # -- lifecycle ---------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def wake_port(self) -> int:
        return self.wol.port

    async def async_start(self) -> None:
        await self.wol.async_start()
        await self._serve()

    async def async_stop(self) -> None:
        for task in (self._waking, self._dark):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._close()
        await self.wol.async_stop()

    def make_app(self) -> web.Application:
        raise NotImplementedError

    async def _serve(self) -> None:
        if not self.port:
            with socket.socket() as sock:
                sock.bind((self.host, 0))
                self.port = int(sock.getsockname()[1])
        app = self.make_app()
        app.router.add_get("/_sim/state", self._sim_state)
        if self.keypress_path:
            app.router.add_post(self.keypress_path.rstrip("/") + "/{key}", self._keypress)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.2)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner

    async def _close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _sim_state(self, request: web.Request) -> web.Response:
        identity = {"mac": self.mac, "udn": getattr(self, "udn", None)}  # what its protocol reports
        return web.json_response({"name": self.name, "kind": self.kind, **identity, **self.screen.as_dict()})

    async def _keypress(self, request: web.Request) -> web.Response:
        """The vendor's key injection: the key reaches the box as from its own remote."""
        self.requests += 1
        if self.misbehave == "fault":
            return web.Response(status=500, text="key injection failed")
        self.screen.keys.append(request.match_info["key"][:32])
        del self.screen.keys[:-50]
        return web.Response(status=200)

    # -- power -------------------------------------------------------------------------

    def go_dark(self, delay: float = 0.02) -> None:
        """Deep standby, a moment after answering the request that asked for it."""
        self.screen.power = False

        async def dark() -> None:
            await asyncio.sleep(delay)
            await self._close()

        self._dark = asyncio.get_running_loop().create_task(dark(), name=f"sim-{self.name}-dark")

    async def async_power_off(self) -> None:
        """Pull the plug (for tests): no answer until woken."""
        self.screen.power = False
        await self._close()

    def _on_wake(self) -> None:
        if self._runner is not None and self.screen.power:
            return
        if self._waking is not None and not self._waking.done():
            return

        async def wake() -> None:
            if self._dark is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._dark
            await asyncio.sleep(0.05)  # boot
            if self._runner is None:
                await self._serve()
            self.screen.power = True

        self._waking = asyncio.get_running_loop().create_task(wake(), name=f"sim-{self.name}-wake")

    # -- the resident's own remote control ----------------------------------------------

    @property
    def powered(self) -> bool:
        return self._runner is not None and self.screen.power

    async def remote_tune(self, lcn: int) -> None:
        """The resident dials channel `lcn` of the operator's lineup on the box's own remote."""
        raise NotImplementedError

    async def remote_volume(self, level: int) -> None:
        """The resident sets the volume with the box's own remote."""
        raise NotImplementedError

    # -- shared screen behaviour -------------------------------------------------------

    def show_overlay(self, text: str | None, title: str | None = None, level: str | None = None) -> None:
        if text:
            self.screen.overlay = {"text": text, "title": title or None, "level": level or "info"}
            self.screen.overlay_at = time.time()
            self.screen.overlays_shown += 1
            self.screen.overlay_log.append((self.screen.overlay_at, text))
            del self.screen.overlay_log[:-256]
        else:
            self.screen.overlay = None
            self.screen.overlay_at = None

    async def hang(self, request: web.Request, content_type: str) -> web.StreamResponse:
        """Start an answer and never finish it."""
        response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
        response.content_length = 4096
        await response.prepare(request)
        await response.write(b"<" if "xml" in content_type else b'{"jsonrpc": "2.0", ')
        await asyncio.sleep(3600)
        return response

    async def huge(self, request: web.Request, content_type: str) -> web.StreamResponse:
        """10 MB, streamed without a length, as a broken or hostile box might."""
        response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b" " * 65536
        with contextlib.suppress(ConnectionError):
            for _ in range(HUGE_BYTES // len(chunk)):
                await response.write(chunk)
            await response.write_eof()
        return response
