"""A simulated carrier IPTV box: RDK Thunder JSON-RPC 2.0 on 127.0.0.1 (POST /jsonrpc, WebSocket /jsonrpc).

It implements the plug-ins a carrier box ships and the gateway uses:

    org.rdk.System.1         getDeviceInfo, getPowerState, setPowerState (DEEP_SLEEP: dark until woken)
    org.rdk.RDKShell.1       launch, suspend, destroy, getState, getClients, injectKey, generateKey
    org.rdk.DisplaySettings.1  getVolumeLevel, setVolumeLevel, getMuted, setMuted
    <callsign>.register      event subscriptions over the WebSocket (notifications to "<id>.<event>")

and the carrier's integration conventions: live TV is the `LiveTV` app launched
with the channel's URI (`igmp://…`, or `iptv:<ipBroadcastID>`), films play in
`LinliPlayer`, the alert overlay is `LinliOverlay` (its URI's query carries the
text) and the TV portal is `LinliPortal`. One video at a time: LiveTV and
LinliPlayer replace each other. With `dial=True` it also has a DIAL server
(apps under /dial/apps/) for apps launched the DIAL way.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import orjson
from aiohttp import WSMsgType, web

from linli.sim.box import SimBox
from linli.sim.dial_apps import DialApps
from linli.sim.lineups import CARRIER_LINEUP

LIVE_TV: Final = "LiveTV"
PLAYER: Final = "LinliPlayer"
OVERLAY: Final = "LinliOverlay"
PORTAL: Final = "LinliPortal"
_SPECIAL: Final = {LIVE_TV, PLAYER, OVERLAY, PORTAL}

#: RDK (W3C DOM) key codes the box understands.
KEY_CODES: Final[dict[int, str]] = {
    116: "POWER",
    38: "UP",
    40: "DOWN",
    37: "LEFT",
    39: "RIGHT",
    13: "OK",
    8: "BACK",
    36: "HOME",
    93: "MENU",
    73: "INFO",
    71: "GUIDE",
    27: "EXIT",
    33: "CH_UP",
    34: "CH_DOWN",
    175: "VOL_UP",
    174: "VOL_DOWN",
    173: "MUTE",
    250: "PLAY",
    19: "PAUSE",
    179: "PLAY_PAUSE",
    178: "STOP",
    228: "FAST_FORWARD",
    227: "REWIND",
    403: "RED",
    404: "GREEN",
    405: "YELLOW",
    406: "BLUE",
    **{48 + d: f"DIGIT_{d}" for d in range(10)},
}


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ThunderBox(SimBox):
    """One simulated RDK box."""

    kind = "thunder"

    def __init__(
        self, *, name: str = "thunder-box", port: int = 0, mac: str | None = None, dial: bool = False
    ):
        super().__init__(name=name, port=port, mac=mac)
        self.power_state = "ON"
        self.runtimes: dict[str, dict[str, str]] = {}
        self._sockets: set[web.WebSocketResponse] = set()
        self._events: dict[web.WebSocketResponse, set[tuple[str, str, str]]] = {}
        self.dial = DialApps(self, base_path="/dial/apps") if dial else None

    @property
    def url(self) -> str:
        """The box's Thunder address, as the adapter is given it."""
        return self.base_url

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024)
        app.router.add_post("/jsonrpc", self._http)
        app.router.add_get("/jsonrpc", self._websocket)
        if self.dial is not None:
            self.dial.add_routes(app)
        app.on_shutdown.append(self._close_sockets)
        return app

    async def _close_sockets(self, app: web.Application) -> None:
        for ws in list(self._sockets):
            await ws.close()

    # -- transport -----------------------------------------------------------------

    async def _http(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        mode = self.misbehave
        if mode == "hang":
            return await self.hang(request, "application/json")
        if mode == "huge":
            return await self.huge(request, "application/json")
        try:
            message = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return self._reply(None, error=RpcError(-32700, "Parse error"))
        if mode == "malformed":
            variants = [
                b'{"jsonrpc": "2.0", "id": ',
                b"[1, 2, 3]",
                orjson.dumps({"jsonrpc": "2.0", "id": -1}),
            ]
            return web.Response(body=variants[self.requests % 3], content_type="application/json")
        if mode == "fault":
            return self._reply(message.get("id"), error=RpcError(-32603, "Internal error: plugin crashed"))
        return self._handle(message, None)

    def _handle(self, message: Any, ws: web.WebSocketResponse | None) -> web.Response:
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or "method" not in message:
            return self._reply(None, error=RpcError(-32600, "Invalid Request"))
        try:
            result = self._call(str(message["method"]), message.get("params") or {}, ws)
        except RpcError as exc:
            return self._reply(message.get("id"), error=exc)
        return self._reply(message.get("id"), result=result)

    @staticmethod
    def _reply(ident: Any, *, result: Any = None, error: RpcError | None = None) -> web.Response:
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": ident}
        if error is not None:
            body["error"] = {"code": error.code, "message": error.message}
        else:
            body["result"] = result
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("json", "notification"), max_msg_size=256 * 1024)
        await ws.prepare(request)
        self._sockets.add(ws)
        self._events[ws] = set()
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                try:
                    message = orjson.loads(msg.data)
                except orjson.JSONDecodeError:
                    continue
                reply = self._handle(message, ws)
                assert isinstance(reply.body, bytes)
                await ws.send_str(reply.body.decode())
        finally:
            self._sockets.discard(ws)
            self._events.pop(ws, None)
        return ws

    def _notify(self, plugin: str, event: str, params: dict[str, Any]) -> None:
        for ws, subscriptions in list(self._events.items()):
            for sub_plugin, sub_event, client in subscriptions:
                if sub_plugin == plugin and sub_event == event and not ws.closed:
                    text = orjson.dumps({"jsonrpc": "2.0", "method": f"{client}.{event}", "params": params})
                    task = asyncio.get_running_loop().create_task(ws.send_str(text.decode()))
                    task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    # -- the plug-ins ------------------------------------------------------------------

    def _call(self, method: str, params: dict[str, Any], ws: web.WebSocketResponse | None) -> Any:
        plugin, _, name = method.rpartition(".")
        if name in ("register", "unregister"):
            if ws is None:
                raise RpcError(-32601, "Events are available over the WebSocket only")
            entry = (plugin, str(params.get("event")), str(params.get("id")))
            subscriptions = self._events.setdefault(ws, set())
            if name == "register":
                subscriptions.add(entry)
            else:
                subscriptions.discard(entry)
            return 0
        handler = {
            "org.rdk.System.1.getDeviceInfo": self._device_info,
            "org.rdk.System.1.getPowerState": self._get_power,
            "org.rdk.System.1.setPowerState": self._set_power,
            "org.rdk.RDKShell.1.launch": self._launch,
            "org.rdk.RDKShell.1.suspend": self._suspend,
            "org.rdk.RDKShell.1.destroy": self._destroy,
            "org.rdk.RDKShell.1.getState": self._get_state,
            "org.rdk.RDKShell.1.getClients": self._get_clients,
            "org.rdk.RDKShell.1.injectKey": self._inject_key,
            "org.rdk.RDKShell.1.generateKey": self._generate_key,
            "org.rdk.DisplaySettings.1.getVolumeLevel": self._get_volume,
            "org.rdk.DisplaySettings.1.setVolumeLevel": self._set_volume,
            "org.rdk.DisplaySettings.1.getMuted": self._get_muted,
            "org.rdk.DisplaySettings.1.setMuted": self._set_muted,
        }.get(method)
        if handler is None:
            raise RpcError(-32601, "Unknown method.")
        return handler(params)

    def _device_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "make": "Linli Sim",
            "model_number": "RDK-SIM-4K",
            "estb_mac": self.mac.upper(),
            "imageVersion": "RDK-SIM_4.4.1",
            "friendly_id": self.name,
            "success": True,
        }

    def _get_power(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"powerState": self.power_state, "success": True}

    def _set_power(self, params: dict[str, Any]) -> dict[str, Any]:
        state = params.get("powerState")
        if state not in ("ON", "STANDBY", "LIGHT_SLEEP", "DEEP_SLEEP"):
            raise RpcError(-32602, f"Invalid powerState {state!r}")
        self.power_state = state
        self._notify("org.rdk.System.1", "onSystemPowerStateChanged", {"powerState": state})
        if state == "DEEP_SLEEP":
            self.go_dark()
        self.screen.power = state == "ON"
        return {"success": True}

    def _on_wake(self) -> None:
        super()._on_wake()
        self.power_state = "ON"

    async def remote_tune(self, lcn: int) -> None:
        record = next(r for r in CARRIER_LINEUP if r["lcn"] == lcn)
        uri = record.get("uri") or f"iptv:{record['ipBroadcastID']}"
        self._launch({"callsign": LIVE_TV, "uri": uri})  # and the box tells its event listeners

    async def remote_volume(self, level: int) -> None:
        self._set_volume({"volumeLevel": level})

    def _launch(self, params: dict[str, Any]) -> dict[str, Any]:
        callsign = str(params.get("callsign") or "")
        if not callsign:
            raise RpcError(-32602, "callsign is required")
        uri = str(params.get("uri") or "")
        if callsign in (LIVE_TV, PLAYER):
            other = PLAYER if callsign == LIVE_TV else LIVE_TV
            if other in self.runtimes:
                self._destroy({"callsign": other})
        if callsign == PLAYER and not uri and PLAYER in self.runtimes:
            uri = self.runtimes[PLAYER]["uri"]  # resume
        self.runtimes[callsign] = {"callsign": callsign, "state": "resumed", "uri": uri}
        self._apply(callsign)
        self._notify(
            "org.rdk.RDKShell.1", "onApplicationLaunched", {"client": callsign, "launchType": "activate"}
        )
        return {"launchType": "activate", "success": True}

    def _suspend(self, params: dict[str, Any]) -> dict[str, Any]:
        callsign = str(params.get("callsign") or "")
        if callsign not in self.runtimes:
            return {"success": False}
        self.runtimes[callsign]["state"] = "suspended"
        self._apply(callsign)
        self._notify("org.rdk.RDKShell.1", "onApplicationSuspended", {"client": callsign})
        return {"success": True}

    def _destroy(self, params: dict[str, Any]) -> dict[str, Any]:
        callsign = str(params.get("callsign") or "")
        self.runtimes.pop(callsign, None)
        self._apply(callsign)
        self._notify("org.rdk.RDKShell.1", "onDestroyed", {"client": callsign})
        return {"success": True}

    def _apply(self, callsign: str) -> None:
        """Make the screen show what the running apps say."""
        runtime = self.runtimes.get(callsign)
        screen = self.screen
        if callsign == LIVE_TV:
            screen.channel = self._channel(runtime["uri"]) if runtime else None
        elif callsign == PLAYER:
            if runtime is None:
                screen.media_state, screen.media_url = "stopped", None
            else:
                screen.media_url = runtime["uri"]
                screen.media_state = "playing" if runtime["state"] == "resumed" else "paused"
        elif callsign == OVERLAY:
            if runtime is None:
                self.show_overlay(None)
            else:
                query = parse_qs(urlsplit(runtime["uri"]).query)
                self.show_overlay(
                    query.get("text", [""])[0], query.get("title", [None])[0], query.get("level", [None])[0]
                )
        elif callsign == PORTAL:
            screen.portal_url = runtime["uri"] if runtime else None
        else:
            if runtime is not None:
                screen.app, screen.app_url = callsign, runtime["uri"] or None
            elif screen.app == callsign:
                screen.app, screen.app_url = None, None

    @staticmethod
    def _channel(uri: str) -> dict[str, Any] | None:
        for record in CARRIER_LINEUP:
            if record.get("uri") == uri or f"iptv:{record.get('ipBroadcastID')}" == uri:
                return dict(record)
        return {"idType": 41, "name": uri, "uri": uri} if uri else None

    def _get_state(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"runtimes": [dict(r) for r in self.runtimes.values()], "success": True}

    def _get_clients(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"clients": [c.lower() for c in self.runtimes], "success": True}

    def _key(self, code: Any) -> str:
        name = KEY_CODES.get(code) if isinstance(code, int) else None
        if name is None:
            raise RpcError(-32602, f"Unknown keyCode {code!r}")
        self.screen.keys.append(name)
        del self.screen.keys[:-50]
        self._key_effect(name)
        return name

    def _key_effect(self, name: str) -> None:
        """What the key does on a real RDK box: the system handles volume keys, the player the media
        keys, HOME leaves the app on screen. (Navigation keys go to the focused app: only logged.)"""
        screen = self.screen
        if name in ("VOL_UP", "VOL_DOWN"):
            step = 1 if name == "VOL_UP" else -1
            self._set_volume({"volumeLevel": min(100, max(0, screen.volume + step))})
        elif name == "MUTE":
            self._set_muted({"muted": not screen.muted})
        elif name in ("PLAY", "PAUSE", "PLAY_PAUSE", "STOP") and PLAYER in self.runtimes:
            playing = self.runtimes[PLAYER]["state"] == "resumed"
            if name == "STOP":
                self._destroy({"callsign": PLAYER})
            elif name == "PAUSE" or (name == "PLAY_PAUSE" and playing):
                self._suspend({"callsign": PLAYER})
            else:
                self._launch({"callsign": PLAYER})
        elif name in ("HOME", "EXIT") and screen.app is not None:
            self._destroy({"callsign": screen.app})

    def _inject_key(self, params: dict[str, Any]) -> dict[str, Any]:
        self._key(params.get("keyCode"))
        return {"success": True}

    def _generate_key(self, params: dict[str, Any]) -> dict[str, Any]:
        keys = params.get("keys")
        if not isinstance(keys, list) or not keys:
            raise RpcError(-32602, "keys must be a non-empty list")
        for key in keys:
            self._key(key.get("keyCode") if isinstance(key, dict) else None)
        return {"success": True}

    def _get_volume(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"volumeLevel": self.screen.volume, "success": True}

    def _set_volume(self, params: dict[str, Any]) -> dict[str, Any]:
        level = params.get("volumeLevel")
        with contextlib.suppress(TypeError, ValueError):
            level = int(level)  # type: ignore[arg-type]
        if not isinstance(level, int) or not 0 <= level <= 100:
            raise RpcError(-32602, f"Invalid volumeLevel {params.get('volumeLevel')!r}")
        self.screen.volume = level
        self._notify("org.rdk.DisplaySettings.1", "onVolumeLevelChanged", {"volumeLevel": level})
        return {"success": True}

    def _get_muted(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"muted": self.screen.muted, "success": True}

    def _set_muted(self, params: dict[str, Any]) -> dict[str, Any]:
        self.screen.muted = bool(params.get("muted"))
        self._notify("org.rdk.DisplaySettings.1", "onMuteStatusChanged", {"muted": self.screen.muted})
        return {"success": True}
