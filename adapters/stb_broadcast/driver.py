"""The set-top box contract over DIAL and UPnP/DLNA: how each verb reaches a two-way cable box.

    power     off: the companion app's `standby=1`; on: Wake-on-LAN to the MAC of the DIAL
              server's `WAKEUP` header (DIAL 2.1). A box that answers is on.
    channel   AVTransport SetAVTransportURI(dvb://<onid>.<tsid>.<sid>) + Play (DVB-C, idType 10)
    media     AVTransport SetAVTransportURI(url, DIDL-Lite) + Play / Pause / Play / Stop
    volume    RenderingControl SetVolume / SetMute (channel Master), GetVolume / GetMute
    app       DIAL POST /apps/<name> with the URL as payload, DELETE <run URL>
    notify    DIAL POST /apps/Linli "overlay=…&title=…&level=…" (the operator's companion app)
    portal    DIAL POST /apps/Linli "page=<url>"; state read back from its additionalData
    keys      not provided: neither DIAL nor DLNA carries remote-control keys

The device description, its services and every SOAP answer go through
async-upnp-client (defusedxml underneath) with the bounded HTTP of
gateway/stb/http.py: an XML bomb, a SOAP fault, a hanging or 10 MB answer
becomes a `BoxAnswerError` naming the box and the problem.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Final
from urllib.parse import urlencode

from async_upnp_client.client import UpnpDevice, UpnpService
from async_upnp_client.client_factory import UpnpFactory
from async_upnp_client.exceptions import UpnpActionError, UpnpError
from defusedxml import DefusedXmlException
from didl_lite import didl_lite

from gateway.commands import NotSupportedError
from gateway.stb.channels import dvb_uri, parse_dvb_uri
from gateway.stb.dial import DialApp, DialClient
from gateway.stb.driver import BoxEndpoint, BoxFacts, DriverContext
from gateway.stb.errors import BoxAnswerError, BoxUnreachableError
from gateway.stb.http import BoundedUpnpRequester
from gateway.stb.schemas import ID_TYPE_DVB_C

AV_TRANSPORT: Final = "urn:schemas-upnp-org:service:AVTransport:1"
RENDERING_CONTROL: Final = "urn:schemas-upnp-org:service:RenderingControl:1"
COMPANION_APP: Final = "Linli"
_WAKEUP_MAC: Final = re.compile(r"MAC=([0-9A-Fa-f:-]{12,17})")
_UUID: Final = re.compile(r"([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})", re.I)


def _header(headers: Any, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


class DialDlnaDriver:
    """One cable box."""

    protocols: tuple[str, ...] = ("dial", "upnp-av")

    def __init__(self, endpoint: BoxEndpoint, context: DriverContext) -> None:
        self._endpoint = endpoint
        self._ctx = context
        self._requester = BoundedUpnpRequester(context.session, context.limits)
        self._device: UpnpDevice | None = None
        self._av: UpnpService | None = None
        self._rc: UpnpService | None = None
        self._dial: DialClient | None = None
        self._app: str | None = None  # the last DIAL app launched (not the companion app)

    def supports(self, kind: str, action: str) -> bool:
        if kind in ("channel", "media"):
            return self._av is not None or self._device is None
        if kind == "volume":
            return self._rc is not None or self._device is None
        if kind in ("notify", "portal", "app") or (kind == "power" and action == "off"):
            return self._dial is not None or self._device is None
        return kind == "power"

    # -- connecting --------------------------------------------------------------

    async def async_connect(self) -> BoxFacts:
        url = self._endpoint.url
        try:
            device = await UpnpFactory(self._requester, non_strict=True).async_create_device(url)
        except (BoxUnreachableError, BoxAnswerError):
            raise
        except DefusedXmlException as exc:
            raise BoxAnswerError(
                f"description at {url} refused: {type(exc).__name__} (entities and DTDs are not accepted)"
            ) from None
        except (UpnpError, SyntaxError, ValueError, KeyError, AttributeError) as exc:
            raise BoxAnswerError(f"description at {url} is not a usable UPnP device: {exc}"[:300]) from None
        headers = self._requester.last_headers.get(url)
        application_url = _header(headers, "Application-URL")
        wakeup = _header(headers, "WAKEUP") or ""
        self._device = device
        self._av = device.find_service(AV_TRANSPORT)
        self._rc = device.find_service(RENDERING_CONTROL)
        self._dial = (
            DialClient(self._ctx.session, self._ctx.limits, application_url) if application_url else None
        )
        match = _WAKEUP_MAC.search(wakeup)
        uuid = _UUID.search(device.udn or "")
        return BoxFacts(
            vendor=device.manufacturer or None,
            model=device.model_name or None,
            firmware=device.model_number or None,
            id=f"uuid:{''.join(uuid.groups()).lower()}" if uuid else None,
            mac=match.group(1).lower() if match else None,
            name=device.friendly_name or None,
        )

    async def async_close(self) -> None:
        self._device = None

    # -- calls ---------------------------------------------------------------------

    async def _call(self, service: UpnpService | None, action: str, **args: Any) -> dict[str, Any]:
        if service is None:
            raise NotSupportedError(f"the box has no service for {action}")
        try:
            result = await service.action(action).async_call(**args)
        except (BoxUnreachableError, BoxAnswerError):
            raise
        except UpnpActionError as exc:
            raise BoxAnswerError(
                f"{action} failed on the box: UPnP error {exc.error_code}: {exc.error_desc}"
            ) from None
        except DefusedXmlException as exc:
            raise BoxAnswerError(f"{action}: answer refused ({type(exc).__name__})") from None
        except (UpnpError, SyntaxError, ValueError, KeyError) as exc:
            raise BoxAnswerError(f"{action}: the box's answer is not usable: {exc}"[:300]) from None
        return dict(result)

    def _need_dial(self) -> DialClient:
        if self._dial is None:
            raise NotSupportedError("the box has no DIAL server (no Application-URL in its description)")
        return self._dial

    # -- reading -------------------------------------------------------------------

    async def async_read(self, kinds: frozenset[str]) -> dict[str, Any]:
        calls: dict[str, Any] = {}
        if kinds & {"channel", "media"} or ("power" in kinds and self._av is not None):
            calls["transport"] = self._call(self._av, "GetTransportInfo", InstanceID=0)
        if kinds & {"channel", "media"}:
            calls["media"] = self._call(self._av, "GetMediaInfo", InstanceID=0)
        if "volume" in kinds:
            calls["volume"] = self._call(self._rc, "GetVolume", InstanceID=0, Channel="Master")
            calls["mute"] = self._call(self._rc, "GetMute", InstanceID=0, Channel="Master")
        if kinds & {"notify", "portal"} or ("power" in kinds and self._av is None):
            calls["companion"] = self._need_dial().async_status(COMPANION_APP)
        if "app" in kinds and self._dial is not None and self._app:
            calls["app"] = self._dial.async_status(self._app)
        results = dict(zip(calls, await asyncio.gather(*calls.values()), strict=True))
        values: dict[str, Any] = {}
        if "power" in kinds:
            values["power"] = {"on": True}  # it answered
        if "media" in results:
            values.update(self._playing(results["transport"], results["media"]))
        if "volume" in results:
            values["volume"] = self._volume(results["volume"], results["mute"])
        companion: DialApp | None = results.get("companion")
        if kinds & {"notify", "portal"}:
            extra = companion.additional if companion is not None else {}
            text = extra.get("overlay") or None
            values["notify"] = {
                "text": text,
                "title": (extra.get("overlayTitle") or None) if text else None,
                "level": (extra.get("overlayLevel") or None) if text else None,
            }
            page = extra.get("page") or None
            values["portal"] = {"open": page is not None, "url": page}
        if "app" in kinds:
            app: DialApp | None = results.get("app")
            running = app is not None and app.state == "running"
            values["app"] = {
                "running": app.name if running and app else None,
                "url": (app.additional.get("url") or None) if running and app else None,
            }
        return {k: v for k, v in values.items() if k in kinds}

    def _playing(self, transport: dict[str, Any], media: dict[str, Any]) -> dict[str, Any]:
        state = str(transport.get("CurrentTransportState") or "")
        uri = str(media.get("CurrentURI") or "")[:2048]
        triplet = parse_dvb_uri(uri) if uri else None
        stopped = {"state": "stopped", "url": None, "title": None}
        if triplet is not None:
            channel = None
            if state == "PLAYING":
                channel = self._ctx.lineup.by_dvb_triplet(*triplet) or {
                    "idType": ID_TYPE_DVB_C,
                    "name": uri,
                    "onid": triplet[0],
                    "tsid": triplet[1],
                    "sid": triplet[2],
                }
            return {"channel": channel, "media": stopped}
        if not uri or state not in ("PLAYING", "PAUSED_PLAYBACK"):
            return {"channel": None, "media": {**stopped, "url": uri or None} if uri else stopped}
        return {
            "channel": None,
            "media": {"state": "playing" if state == "PLAYING" else "paused", "url": uri, "title": None},
        }

    @staticmethod
    def _volume(volume: dict[str, Any], mute: dict[str, Any]) -> dict[str, Any]:
        level, muted = volume.get("CurrentVolume"), mute.get("CurrentMute")
        if not isinstance(level, int) or not 0 <= level <= 100 or not isinstance(muted, bool):
            raise BoxAnswerError(f"RenderingControl: volume {level!r} / mute {muted!r} not understood")
        return {"level": level, "muted": muted}

    # -- doing ---------------------------------------------------------------------

    async def _play_uri(self, uri: str, title: str) -> None:
        item = didl_lite.VideoItem(
            id="linli",
            parent_id="-1",
            title=title[:100],
            restricted="1",
            resources=[didl_lite.Resource(uri=uri, protocol_info="http-get:*:*:*")],
        )
        metadata = didl_lite.to_xml_string(item).decode()
        await self._call(
            self._av, "SetAVTransportURI", InstanceID=0, CurrentURI=uri, CurrentURIMetaData=metadata
        )
        await self._call(self._av, "Play", InstanceID=0, Speed="1")

    async def _companion(self, **form: str) -> None:
        await self._need_dial().async_launch(COMPANION_APP, urlencode(form))

    async def async_execute(self, kind: str, command: dict[str, Any]) -> None:
        action = command["action"]
        if kind == "power":
            if action == "off":
                await self._companion(standby="1")
        elif kind == "channel":
            record = command["channel"]
            if record["idType"] != ID_TYPE_DVB_C:
                raise NotSupportedError(
                    f"a cable box cannot tune {record.get('name')!r}: "
                    f"it is an IPTV service (idType {record['idType']})"
                )
            await self._play_uri(dvb_uri(record), record.get("name", ""))
        elif kind == "media":
            if action == "play":
                await self._play_uri(command["url"], command.get("title") or command["url"])
            elif action == "pause":
                await self._call(self._av, "Pause", InstanceID=0)
            elif action == "resume":
                await self._call(self._av, "Play", InstanceID=0, Speed="1")
            else:
                await self._call(self._av, "Stop", InstanceID=0)
        elif kind == "volume":
            if action == "set":
                await self._call(
                    self._rc, "SetVolume", InstanceID=0, Channel="Master", DesiredVolume=command["level"]
                )
            else:
                await self._call(
                    self._rc, "SetMute", InstanceID=0, Channel="Master", DesiredMute=command["muted"]
                )
        elif kind == "notify":
            if action == "show":
                await self._companion(
                    overlay=command["text"],
                    title=command.get("title") or "",
                    level=command.get("level") or "info",
                )
            else:
                await self._companion(overlay="")
        elif kind == "portal":
            await self._companion(page=command["url"] if action == "open" else "")
        elif kind == "app":
            dial = self._need_dial()
            if command["app"] == COMPANION_APP:
                raise NotSupportedError(f"{COMPANION_APP!r} is reserved for Linli's own use on cable boxes")
            if action == "launch":
                await dial.async_launch(command["app"], command.get("url"))
                self._app = command["app"]
            else:
                await dial.async_stop(command["app"])
        else:
            raise NotSupportedError(f"cable boxes have no {kind!r} over DIAL or DLNA")


def create_driver(endpoint: BoxEndpoint, context: DriverContext) -> DialDlnaDriver:
    return DialDlnaDriver(endpoint, context)
