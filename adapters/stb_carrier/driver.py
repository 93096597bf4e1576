"""The set-top box contract over RDK Thunder: how each verb becomes JSON-RPC on a carrier box.

    power     org.rdk.System.1.setPowerState ON / DEEP_SLEEP (woken by Wake-on-LAN), getPowerState
    keys      org.rdk.RDKShell.1.injectKey (one key) / generateKey (a sequence)
    channel   RDKShell.launch of the live-TV app (`LiveTV`) with the channel's URI:
              IPTV URI (idType 41) as it is, SD&S (idType 40) as `iptv:<ipBroadcastID>`
    media     RDKShell.launch / suspend / destroy of `LinliPlayer` with the stream's URL
    app       RDKShell.launch / destroy of the app's callsign (or DIAL, where the box has it)
    volume    org.rdk.DisplaySettings.1.setVolumeLevel / setMuted, getVolumeLevel / getMuted
    notify    RDKShell.launch of `LinliOverlay`, topmost, without focus: the gateway's overlay page
    portal    RDKShell.launch / destroy of `LinliPortal` with the portal's URL

State is read back with getState (what runs, with which URI), getPowerState and
the DisplaySettings getters; changes the box makes on its own arrive as events
over the WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit

from linli.adapters.stb_carrier.keycodes import KEY_CODES
from linli.adapters.stb_carrier.thunder import ThunderClient
from linli.adapters.upnp.dial import DialClient
from linli.gateway.commands import NotSupportedError
from linli.gateway.stb.driver import BoxEndpoint, BoxFacts, DriverContext
from linli.gateway.stb.errors import BoxAnswerError
from linli.gateway.stb.schemas import ID_TYPE_IPTV_SDS, ID_TYPE_IPTV_URI

SYSTEM: Final = "org.rdk.System.1"
SHELL: Final = "org.rdk.RDKShell.1"
DISPLAY: Final = "org.rdk.DisplaySettings.1"
LIVE_TV: Final = "LiveTV"
PLAYER: Final = "LinliPlayer"
OVERLAY: Final = "LinliOverlay"
PORTAL: Final = "LinliPortal"
_OWN: Final = frozenset({LIVE_TV, PLAYER, OVERLAY, PORTAL})
_AUDIO_PORT: Final = "HDMI0"
_SCREEN_KINDS: Final = frozenset({"channel", "app", "media", "notify", "portal"})
EVENTS: Final[dict[tuple[str, str], frozenset[str]]] = {
    (SYSTEM, "onSystemPowerStateChanged"): frozenset({"power"}),
    (SHELL, "onApplicationLaunched"): _SCREEN_KINDS,
    (SHELL, "onApplicationSuspended"): _SCREEN_KINDS,
    (SHELL, "onDestroyed"): _SCREEN_KINDS,
    (DISPLAY, "onVolumeLevelChanged"): frozenset({"volume"}),
    (DISPLAY, "onMuteStatusChanged"): frozenset({"volume"}),
}
_BY_EVENT: Final = {event: kinds for (_, event), kinds in EVENTS.items()}


def _mac_key(mac: str | None) -> str | None:
    if not mac:
        return None
    digits = mac.replace(":", "").replace("-", "").lower()
    return f"mac:{digits}" if len(digits) == 12 else None


class ThunderDriver:
    """One carrier box."""

    def __init__(self, endpoint: BoxEndpoint, context: DriverContext) -> None:
        self._ctx = context
        self._thunder = ThunderClient(context.session, context.limits, endpoint.url, context.log)
        dial_url = endpoint.extra.get("dial_url")
        self._dial = DialClient(context.session, context.limits, dial_url) if dial_url else None
        self._dial_app: str | None = None
        self.protocols: tuple[str, ...] = ("thunder-jsonrpc", "dial") if self._dial else ("thunder-jsonrpc",)

    def supports(self, kind: str, action: str) -> bool:
        return True

    async def async_connect(self) -> BoxFacts:
        info = await self._thunder.async_call(f"{SYSTEM}.getDeviceInfo")
        if not isinstance(info, dict):
            raise BoxAnswerError(f"{SYSTEM}.getDeviceInfo: expected an object, got {type(info).__name__}")
        mac = info.get("estb_mac") if isinstance(info.get("estb_mac"), str) else None
        if self._ctx.watch and not self._thunder.events_open:
            try:
                await self._thunder.async_open_events(EVENTS, self._on_event)
            except (TimeoutError, OSError, Exception) as exc:  # events are a bonus: polling still works
                self._ctx.log.debug("no Thunder events from %s: %s", self._thunder.base_url, exc)
        return BoxFacts(
            vendor=str(info.get("make") or "") or None,
            model=str(info.get("model_number") or "") or None,
            firmware=str(info.get("imageVersion") or "") or None,
            id=_mac_key(mac),
            mac=mac.lower() if mac else None,
            name=str(info.get("friendly_id") or "") or None,
        )

    def _on_event(self, event: str, params: dict[str, Any]) -> None:
        kinds = _BY_EVENT.get(event)
        if kinds:
            self._ctx.on_change(kinds)

    async def async_close(self) -> None:
        await self._thunder.async_close_events()

    # -- reading -----------------------------------------------------------------

    async def async_read(self, kinds: frozenset[str]) -> dict[str, Any]:
        calls: dict[str, Any] = {}
        if "power" in kinds:
            calls["power"] = self._thunder.async_call(f"{SYSTEM}.getPowerState")
        if "volume" in kinds:
            calls["level"] = self._thunder.async_call(f"{DISPLAY}.getVolumeLevel", {"audioPort": _AUDIO_PORT})
            calls["muted"] = self._thunder.async_call(f"{DISPLAY}.getMuted", {"audioPort": _AUDIO_PORT})
        if kinds & _SCREEN_KINDS:
            calls["state"] = self._thunder.async_call(f"{SHELL}.getState")
        if "app" in kinds and self._dial is not None and self._dial_app:
            calls["dial"] = self._dial.async_status(self._dial_app)
        results = dict(zip(calls, await asyncio.gather(*calls.values()), strict=True))
        values: dict[str, Any] = {}
        if "power" in results:
            state = results["power"].get("powerState") if isinstance(results["power"], dict) else None
            if not isinstance(state, str):
                raise BoxAnswerError(f"{SYSTEM}.getPowerState: no powerState in {results['power']!r:.80}")
            values["power"] = {"on": state == "ON"}
        if "level" in results:
            values["volume"] = self._volume(results["level"], results["muted"])
        if "state" in results:
            runtimes = self._runtimes(results["state"])
            values.update(
                {k: v for k, v in self._screen(runtimes, results.get("dial")).items() if k in kinds}
            )
        return values

    @staticmethod
    def _volume(level_result: Any, muted_result: Any) -> dict[str, Any]:
        try:
            level = int(level_result["volumeLevel"])
            muted = muted_result["muted"]
        except (KeyError, TypeError, ValueError):
            raise BoxAnswerError(
                f"{DISPLAY}: volume answer not understood ({level_result!r:.60}, {muted_result!r:.60})"
            ) from None
        if not isinstance(muted, bool) or not 0 <= level <= 100:
            raise BoxAnswerError(f"{DISPLAY}: volume {level!r} / muted {muted!r} out of range")
        return {"level": level, "muted": muted}

    @staticmethod
    def _runtimes(result: Any) -> dict[str, dict[str, str]]:
        runtimes = result.get("runtimes") if isinstance(result, dict) else None
        if not isinstance(runtimes, list):
            raise BoxAnswerError(f"{SHELL}.getState: no runtimes list in {result!r:.80}")
        found = {}
        for runtime in runtimes[:64]:
            if isinstance(runtime, dict) and isinstance(runtime.get("callsign"), str):
                found[runtime["callsign"]] = {
                    "state": str(runtime.get("state") or ""),
                    "uri": str(runtime.get("uri") or "")[:2048],
                }
        return found

    def _channel(self, uri: str) -> dict[str, Any] | None:
        lineup = self._ctx.lineup
        if uri.startswith("iptv:"):
            broadcast_id = uri[5:]
            return lineup.by_broadcast_id(broadcast_id) or {
                "idType": ID_TYPE_IPTV_SDS,
                "name": broadcast_id,
                "ipBroadcastID": broadcast_id,
            }
        if uri:
            return lineup.by_uri(uri) or {"idType": ID_TYPE_IPTV_URI, "name": uri[:100], "uri": uri}
        return None

    def _screen(self, runtimes: dict[str, dict[str, str]], dial: Any) -> dict[str, Any]:
        live, player = runtimes.get(LIVE_TV), runtimes.get(PLAYER)
        overlay, portal = runtimes.get(OVERLAY), runtimes.get(PORTAL)
        notify: dict[str, Any] = {"text": None, "title": None, "level": None}
        if overlay is not None:
            query = parse_qs(urlsplit(overlay["uri"]).query)
            notify = {
                "text": query.get("text", [None])[0],
                "title": query.get("title", [None])[0],
                "level": query.get("level", [None])[0],
            }
        app: dict[str, Any] = {"running": None, "url": None}
        for callsign, runtime in runtimes.items():
            if callsign not in _OWN and runtime["state"] in ("resumed", "activated", ""):
                url = runtime["uri"] if runtime["uri"].startswith(("http://", "https://")) else None
                app = {"running": callsign, "url": url}
                break
        if app["running"] is None and dial is not None and dial.state == "running":
            app = {"running": dial.name, "url": dial.additional.get("url") or None}
        return {
            "channel": self._channel(live["uri"]) if live else None,
            "media": {
                "state": ("playing" if player["state"] in ("resumed", "activated") else "paused")
                if player
                else "stopped",
                "url": player["uri"] or None if player else None,
                "title": None,
            },
            "notify": notify,
            "portal": {"open": portal is not None, "url": (portal["uri"] or None) if portal else None},
            "app": app,
        }

    # -- doing -------------------------------------------------------------------

    async def _launch(self, callsign: str, uri: str = "", **extra: Any) -> None:
        await self._thunder.async_call(
            f"{SHELL}.launch", {"callsign": callsign, "type": "HtmlApp", "uri": uri, **extra}
        )

    async def _destroy(self, callsign: str) -> None:
        await self._thunder.async_call(f"{SHELL}.destroy", {"callsign": callsign})

    async def async_execute(self, kind: str, command: dict[str, Any]) -> None:
        action = command["action"]
        call = self._thunder.async_call
        if kind == "power":
            state = "ON" if action == "on" else "DEEP_SLEEP"
            await call(f"{SYSTEM}.setPowerState", {"powerState": state, "standbyReason": "linli"})
        elif kind == "keys":
            codes = [KEY_CODES[key] for key in command["keys"]]
            if len(codes) == 1:
                await call(f"{SHELL}.injectKey", {"keyCode": codes[0], "modifiers": []})
            else:
                keys = [{"keyCode": code, "modifiers": [], "delay": 0.1} for code in codes]
                await call(f"{SHELL}.generateKey", {"keys": keys})
        elif kind == "channel":
            record = command["channel"]
            if record["idType"] == ID_TYPE_IPTV_URI:
                uri = record["uri"]
            elif record["idType"] == ID_TYPE_IPTV_SDS:
                uri = f"iptv:{record['ipBroadcastID']}"
            else:
                raise NotSupportedError(
                    f"a carrier IPTV box cannot tune {record.get('name')!r}: "
                    "it is a DVB-C service (idType 10)"
                )
            await self._launch(LIVE_TV, uri)
        elif kind == "media":
            if action == "play":
                await self._launch(PLAYER, command["url"])
            elif action == "pause":
                await call(f"{SHELL}.suspend", {"callsign": PLAYER})
            elif action == "resume":
                await self._launch(PLAYER)
            else:
                await self._destroy(PLAYER)
        elif kind == "app":
            await self._app(action, command["app"], command.get("url"))
        elif kind == "volume":
            if action == "set":
                await call(
                    f"{DISPLAY}.setVolumeLevel", {"audioPort": _AUDIO_PORT, "volumeLevel": command["level"]}
                )
            else:
                await call(f"{DISPLAY}.setMuted", {"audioPort": _AUDIO_PORT, "muted": command["muted"]})
        elif kind == "notify":
            if action == "show":
                query = urlencode(
                    {k: command[k] for k in ("text", "title", "level") if command.get(k) is not None}
                )
                await self._launch(
                    OVERLAY, f"{self._ctx.portal_url}/screens/overlay?{query}", topmost=True, focus=False
                )
            else:
                await self._destroy(OVERLAY)
        elif kind == "portal":
            if action == "open":
                await self._launch(PORTAL, command["url"], focus=True)
            else:
                await self._destroy(PORTAL)
        else:
            raise NotSupportedError(f"carrier boxes have no {kind!r}")

    async def _app(self, action: str, app: str, url: str | None) -> None:
        if app in _OWN:
            raise NotSupportedError(f"{app!r} is reserved for Linli's own use on carrier boxes")
        if self._dial is not None:
            status = None
            with contextlib.suppress(NotSupportedError):
                status = await self._dial.async_status(app)
            if status is not None:
                if action == "launch":
                    await self._dial.async_launch(app, url)
                    self._dial_app = app
                else:
                    await self._dial.async_stop(app, status.run_url)
                return
        if action == "launch":
            await self._launch(app, url or "")
        else:
            await self._destroy(app)


def create_driver(endpoint: BoxEndpoint, context: DriverContext) -> ThunderDriver:
    return ThunderDriver(endpoint, context)
