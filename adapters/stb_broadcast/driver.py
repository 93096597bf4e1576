"""The set-top box contract over DIAL and UPnP/DLNA: how each verb reaches a two-way cable box.

    power     off: the companion app's `standby=1`; on: Wake-on-LAN to the MAC of the DIAL
              server's `WAKEUP` header (DIAL 2.1). A box that answers is on.
    channel   AVTransport SetAVTransportURI(dvb://<onid>.<tsid>.<sid>) (DVB-C, idType 10), + Play
              unless the box is already playing (AVTransport:1 §2.4.1: a playing transport
              stays PLAYING, with the new URI); read back with one GetStateVariables
              (TransportState, AVTransportURI) on AVTransport:2, else GetTransportInfo ∥ GetMediaInfo
    media     AVTransport SetAVTransportURI(url, DIDL-Lite) + Play / Pause / Play / Stop
    volume    RenderingControl SetVolume / SetMute (channel Master), read back with
              GetStateVariables(Volume,Mute) on RenderingControl:2, else GetVolume ∥ GetMute
    app       DIAL POST /apps/<name> with the URL as payload, DELETE <run URL>
    notify    DIAL POST /apps/Linli "overlay=…&title=…&level=…" (the operator's companion app)
    portal    DIAL POST /apps/Linli "page=<url>"; state read back from its additionalData
    keys      mapped to what the box has: PLAY / PAUSE / PLAY_PAUSE / STOP → AVTransport Play, Pause,
              Stop; FAST_FORWARD / REWIND → Seek ±10 s from GetPositionInfo; CH_UP / CH_DOWN → the
              next service of the lineup (SetAVTransportURI), or Next / Previous without a lineup;
              VOL_UP / VOL_DOWN / MUTE → RenderingControl, read then set; HOME / EXIT → DIAL stop of
              the app on screen; POWER → the companion app's standby. Any other key (arrows, OK,
              digits…) only through the vendor's key injection, where the box's adoption names
              one (`extra.key_injection`: a URL template with `{key}`, POSTed once per key);
              otherwise `not_supported`, naming the key, before anything is sent

Changes the box makes on its own — the resident's remote — arrive as UPnP events
(GENA): the driver subscribes to AVTransport and RenderingControl when it
connects (adapters/upnp/gena.py), and each NOTIFY has the fleet read the kinds
that service carries, as a carrier box's Thunder events do.

The device description and its services are read once per connection by
async-upnp-client (defusedxml underneath), which also owns the actions' argument
definitions and type coercion. Each action is then a prepared request — its
control URL, SOAPAction header and envelope template, each distinct set of
arguments checked against the box's definitions and built once — sent over the
fleet's keep-alive session. Its answer is read by the C parser once any DOCTYPE
has been refused, and only once per distinct answer (adapters/upnp/soap.py: no
DTD, hence no entity to expand). Everything goes through the bounded HTTP of
gateway/stb/http.py: an XML bomb, a SOAP fault, a hanging or 10 MB answer
becomes a `BoxAnswerError` naming the box and the problem. Each service is used
in the highest version the box has; where one read can carry several state
variables (GetStateVariables, AVTransport:2 / RenderingControl:2) it does, and otherwise
reads that do not depend on each other go out in parallel.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Final
from urllib.parse import quote, urlencode, urljoin, urlsplit
from xml.sax.saxutils import escape, quoteattr

from async_upnp_client.client import UpnpAction, UpnpDevice, UpnpService
from async_upnp_client.client_factory import UpnpFactory
from async_upnp_client.exceptions import UpnpError, UpnpResponseError
from defusedxml import DefusedXmlException

from linli.adapters.upnp import soap
from linli.adapters.upnp.dial import DialApp, DialClient
from linli.adapters.upnp.gena import GenaListener
from linli.gateway.commands import NotSupportedError
from linli.gateway.stb.channels import dvb_uri, parse_dvb_uri
from linli.gateway.stb.driver import BoxEndpoint, BoxFacts, DriverContext
from linli.gateway.stb.errors import BoxAnswerError, BoxUnreachableError
from linli.gateway.stb.http import BoundedUpnpRequester, async_request
from linli.gateway.stb.schemas import ID_TYPE_DVB_C

AV_TRANSPORT: Final = "urn:schemas-upnp-org:service:AVTransport:"
RENDERING_CONTROL: Final = "urn:schemas-upnp-org:service:RenderingControl:"
COMPANION_APP: Final = "Linli"
SEEK_STEP_S: Final = 10  # FAST_FORWARD / REWIND: how far one press moves
#: Keys that go to AVTransport as the action of the same meaning (UPnP AVTransport:1 §2.4).
_TRANSPORT_KEYS: Final = {"PLAY": "Play", "PAUSE": "Pause", "STOP": "Stop"}
#: Keys that reach a cable box only through its vendor's key injection (no DIAL or DLNA equivalent).
_VENDOR_ONLY: Final = frozenset(
    {"UP", "DOWN", "LEFT", "RIGHT", "OK", "BACK", "MENU", "INFO", "GUIDE", "RED", "GREEN", "YELLOW", "BLUE"}
    | {f"DIGIT_{d}" for d in range(10)}
)
_PREPARED_BODIES: Final = 64  # per box: its reads, and the channels its household watches
_WAKEUP_MAC: Final = re.compile(r"MAC=([0-9A-Fa-f:-]{12,17})")
_UUID: Final = re.compile(r"([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})", re.I)
_DIDL: Final = (
    '<DIDL-Lite xmlns="urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:upnp="urn:schemas-upnp-org:metadata-1-0/upnp/">'
    '<item id="linli" parentID="-1" restricted="1"><dc:title>{title}</dc:title>'
    "<upnp:class>object.item.videoItem</upnp:class><res protocolInfo={protocol}>{uri}</res></item>"
    "</DIDL-Lite>"
)


def didl_item(uri: str, title: str) -> str:
    """The DIDL-Lite metadata of one video item (what the box shows as the title)."""
    protocol = "dvb:*:*:*" if uri.startswith("dvb:") else "http-get:*:*:*"
    return _DIDL.format(title=escape(title[:100]), protocol=quoteattr(protocol), uri=escape(uri))


@dataclass(slots=True, frozen=True)
class _Action:
    """One action of one service on this box, its request prepared once per connection."""

    name: str
    url: str
    namespace: str
    headers: dict[str, str]
    inputs: tuple[UpnpAction.Argument, ...]
    outputs: dict[str, UpnpAction.Argument]

    @classmethod
    def of(cls, service: UpnpService, name: str) -> _Action:
        action = service.action(name)
        return cls(
            name=name,
            url=service.control_url,
            namespace=service.service_type,
            headers={"Content-Type": soap.CONTENT_TYPE, "SOAPAction": f'"{service.service_type}#{name}"'},
            inputs=tuple(action.in_arguments()),
            outputs={argument.name: argument for argument in action.out_arguments()},
        )


def _newest(device: UpnpDevice, prefix: str) -> UpnpService | None:
    """The device's service of this type, in the highest version it has (each is a superset)."""
    versions = [
        (int(service.service_type[len(prefix) :]), service)
        for service in device.all_services
        if service.service_type.startswith(prefix) and service.service_type[len(prefix) :].isdigit()
    ]
    return max(versions, key=lambda pair: pair[0])[1] if versions else None


def _header(headers: Any, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


class DialDlnaDriver:
    """One cable box."""

    def __init__(
        self, endpoint: BoxEndpoint, context: DriverContext, events: GenaListener | None = None
    ) -> None:
        # What the box turns out to speak once connected: a plain DLNA renderer has no DIAL, a
        # DIAL server whose description answers 404 has no UPnP AV (issue #15).
        self.protocols: tuple[str, ...] = ("dial", "upnp-av")
        self._connected = False  # until then every verb is assumed possible (checked on connect)
        self._has_linli: bool | None = None  # the operator's Linli app: present, missing, not known
        self._endpoint = endpoint
        self._ctx = context
        self._events = events
        self._watched: list[UpnpService] = []
        self._requester = BoundedUpnpRequester(context.session, context.limits)
        self._device: UpnpDevice | None = None
        self._av: UpnpService | None = None
        self._rc: UpnpService | None = None
        self._dial: DialClient | None = None
        self._app: str | None = None  # the last DIAL app launched (not the companion app)
        self._actions: dict[tuple[str, str], _Action] = {}
        self._bodies: dict[tuple[Any, ...], bytes] = {}
        self._transport: str | None = None  # CurrentTransportState, as last read from the box
        self._unplayed: str | None = None  # a URI set without Play (the box was playing)
        self._keeps_playing = True  # until the box shows it does not (then Play always follows)
        inject = endpoint.extra.get("key_injection") or {}
        self._inject_url: str | None = None
        self._inject_names: dict[str, str] = {}
        if isinstance(inject, dict) and isinstance(inject.get("url"), str) and "{key}" in inject["url"]:
            url = urljoin(endpoint.url, inject["url"])
            if urlsplit(url).scheme in ("http", "https"):
                self._inject_url = url
                names = inject.get("names")
                self._inject_names = dict(names) if isinstance(names, dict) else {}

    def supports(self, kind: str, action: str) -> bool:
        if kind in ("channel", "media"):
            return self._av is not None or not self._connected
        if kind == "volume":
            return self._rc is not None or not self._connected
        if kind in ("notify", "portal") or (kind == "power" and action == "off"):
            return (self._dial is not None and self._has_linli is not False) or not self._connected
        if kind == "app":
            return self._dial is not None or not self._connected
        return kind in ("power", "keys")  # keys: each key is checked against the box in async_execute

    def degraded(self) -> dict[str, str]:
        """Kinds this box lacks only because the operator's companion app is missing: kind → why.

        What certification reports as degraded rather than passed (docs/operators.md).
        """
        if self._dial is None or self._has_linli is not False:
            return {}
        why = (
            f"degraded: needs the operator's {COMPANION_APP} app "
            f"(DIAL app {COMPANION_APP!r} is not on the box; docs/operators.md)"
        )
        return {"notify": why, "portal": why, "power": f"{why}; power off only, power on is Wake-on-LAN"}

    def unsupported(self, kind: str, action: str) -> str | None:
        """Why this box cannot carry out the verb (for the `not_supported` message), if known."""
        if kind in self.degraded() and self.supports(kind, action) is False:
            return self.degraded()[kind]
        if kind in ("notify", "portal", "app") or (kind == "power" and action == "off"):
            if self._dial is None:
                return "the box has no DIAL server (no Application-URL header), so no DIAL apps"
        if kind in ("channel", "media") and self._av is None:
            return "the box has no UPnP AVTransport service"
        if kind == "volume" and self._rc is None:
            return "the box has no UPnP RenderingControl service"
        return None

    # -- connecting --------------------------------------------------------------

    async def async_connect(self) -> BoxFacts:
        url = self._endpoint.url
        device: UpnpDevice | None = None
        try:
            device = await UpnpFactory(self._requester, non_strict=True).async_create_device(url)
        except (BoxUnreachableError, BoxAnswerError):
            raise
        except UpnpResponseError as exc:
            # Many real DIAL servers answer their LOCATION with an error status and no description;
            # what a DIAL client needs of that answer is its Application-URL header. Such a box is
            # driven over DIAL alone.
            if not self._application_url():
                raise BoxAnswerError(
                    f"description at {url} answered HTTP {exc.status} and names no DIAL server "
                    "(no Application-URL header): check the address (the SSDP LOCATION of the box)"
                ) from None
        except DefusedXmlException as exc:
            raise BoxAnswerError(
                f"description at {url} refused: {type(exc).__name__} (entities and DTDs are not accepted)"
            ) from None
        except (UpnpError, SyntaxError, ValueError, KeyError, AttributeError) as exc:
            raise BoxAnswerError(f"description at {url} is not a usable UPnP device: {exc}"[:300]) from None
        application_url = self._application_url()
        wakeup = _header(self._requester.last_headers.get(url), "WAKEUP") or ""
        self._device = device
        self._av = _newest(device, AV_TRANSPORT) if device is not None else None
        self._rc = _newest(device, RENDERING_CONTROL) if device is not None else None
        self._dial = (
            DialClient(self._ctx.session, self._ctx.limits, application_url) if application_url else None
        )
        if self._av is None and self._rc is None and self._dial is None:
            raise BoxAnswerError(
                f"the device at {url} is neither a DLNA MediaRenderer (no AVTransport or "
                "RenderingControl service) nor a DIAL server: nothing a TV can be driven with"
            )
        self.protocols = (*(("dial",) if self._dial else ()), *(("upnp-av",) if self._av or self._rc else ()))
        self._has_linli = await self._has_companion()
        self._connected = True
        self._watch()
        match = _WAKEUP_MAC.search(wakeup)
        mac = match.group(1).lower().replace("-", ":") if match else None
        uuid = _UUID.search((device.udn if device else None) or str(self._endpoint.extra.get("udn") or ""))
        identity = f"uuid:{''.join(uuid.groups()).lower()}" if uuid else None
        if identity is None and mac:
            identity = "mac:" + mac.replace(":", "")  # a DIAL-only box: known by its network card
        return BoxFacts(
            vendor=(device.manufacturer or None) if device else None,
            model=(device.model_name or None) if device else None,
            firmware=(device.model_number or None) if device else None,
            id=identity,
            mac=mac,
            name=(device.friendly_name or None) if device else None,
        )

    def _application_url(self) -> str | None:
        """The DIAL server: the description answer's header, else what SSDP discovery read."""
        headers = self._requester.last_headers.get(self._endpoint.url)
        found = _header(headers, "Application-URL") or self._endpoint.extra.get("application_url")
        return str(found) if found else None

    async def _has_companion(self) -> bool | None:
        """Is the operator's Linli app on the box? None when the DIAL server would not say."""
        if self._dial is None:
            return None
        try:
            return await self._dial.async_status(COMPANION_APP) is not None
        except (BoxAnswerError, BoxUnreachableError):
            return None  # asked again at the next connect; commands say what the box answers

    def _watch(self) -> None:
        """Have the box report its own changes (in the background; without events, polling still works)."""
        self._unwatch()
        if self._events is None or not self._ctx.watch:
            return
        for service, kinds in (
            (self._av, frozenset({"channel", "media"})),
            (self._rc, frozenset({"volume"})),
        ):
            if service is not None and service.event_sub_url:
                self._events.watch(service, partial(self._ctx.on_change, kinds))
                self._watched.append(service)

    def _unwatch(self) -> None:
        if self._events is not None:
            for service in self._watched:
                self._events.unwatch(service)
        self._watched.clear()

    async def async_close(self) -> None:
        self._unwatch()
        self._device = None
        self._connected = False
        self._actions.clear()
        self._bodies.clear()
        self._transport = None

    # -- calls ---------------------------------------------------------------------

    def _action(self, service: UpnpService | None, name: str) -> _Action:
        if service is None:
            raise NotSupportedError(f"the box has no service for {name}")
        key = (service.service_type, name)
        prepared = self._actions.get(key)
        if prepared is None:
            if not service.has_action(name):
                raise NotSupportedError(f"the box's {service.service_type} has no action {name}")
            prepared = self._actions[key] = _Action.of(service, name)
        return prepared

    def _body(self, action: _Action, args: dict[str, Any]) -> bytes:
        """The request of `action` with these arguments, checked against the box's own definitions.

        Built once per distinct set of arguments and connection: the same read,
        or the same channel, is the same request every time.
        """
        key = (action.url, action.name, *args.items())
        body = self._bodies.get(key)
        if body is None:
            try:
                body = soap.envelope(
                    action.namespace,
                    action.name,
                    [(arg.name, arg.coerce_upnp(self._valid(arg, args[arg.name]))) for arg in action.inputs],
                )
            except (UpnpError, KeyError, ValueError) as exc:
                raise BoxAnswerError(f"{action.name}: cannot be sent to this box: {exc}"[:300]) from None
            if len(self._bodies) >= _PREPARED_BODIES:
                del self._bodies[next(iter(self._bodies))]  # the oldest
            self._bodies[key] = body
        return body

    async def _call(self, service: UpnpService | None, name: str, **args: Any) -> dict[str, Any]:
        action = self._action(service, name)
        body = self._body(action, args)
        answer = await async_request(
            self._ctx.session, "POST", action.url, limits=self._ctx.limits, data=body, headers=action.headers
        )
        try:
            message = soap.parse(answer.body)
        except soap.SoapError as exc:
            if answer.status != 200:
                raise BoxAnswerError(f"{name}: the box answered HTTP {answer.status}") from None
            raise BoxAnswerError(f"{name}: the box's answer is not usable: {exc}"[:300]) from None
        if message.fault is not None:
            code, description = message.fault
            raise BoxAnswerError(f"{name} failed on the box: UPnP error {code}: {description}")
        if answer.status != 200:
            raise BoxAnswerError(f"{name}: the box answered HTTP {answer.status}")
        if message.name != f"{name}Response":
            raise BoxAnswerError(f"{name}: the box's answer is not usable: it answers {message.name!r}")
        values: dict[str, Any] = {}
        for key, text in message.values.items():
            argument = action.outputs.get(key)
            if argument is None:
                continue  # an argument a newer service version added
            try:
                values[key] = argument.coerce_python(text)
            except (ValueError, TypeError):
                raise BoxAnswerError(
                    f"{name}: the box's answer is not usable: {key} = {text[:40]!r}"
                ) from None
        return values

    @staticmethod
    def _valid(argument: UpnpAction.Argument, value: Any) -> Any:
        argument.validate_value(value)
        return value

    def _need_dial(self) -> DialClient:
        if self._dial is None:
            raise NotSupportedError("the box has no DIAL server (no Application-URL in its description)")
        return self._dial

    # -- reading -------------------------------------------------------------------

    async def async_read(self, kinds: frozenset[str]) -> dict[str, Any]:
        """What the box has of these kinds; a kind it has no service for is left out, not an error.

        The reads are coroutine functions until they run, all together: a read that
        is not made is never created (no coroutine is left un-awaited), and one that
        fails does not leave the others running unobserved.
        """
        dial = self._dial
        calls: dict[str, Callable[[], Awaitable[Any]]] = {}
        if kinds & {"channel", "media"} and self._av is not None:
            calls["playing"] = self._read_playing
        elif "power" in kinds and self._av is not None:
            calls["transport"] = partial(self._call, self._av, "GetTransportInfo", InstanceID=0)
        if "volume" in kinds and self._rc is not None:
            calls["volume"] = self._read_volume
        elif "power" in kinds and self._av is None and self._rc is not None:
            calls["volume"] = self._read_volume  # any answer shows the box is on
        overlay = bool(kinds & {"notify", "portal"}) and self._has_linli is not False
        if dial is not None and (overlay or ("power" in kinds and not calls)):
            calls["companion"] = partial(dial.async_status, COMPANION_APP)
        if "app" in kinds and dial is not None and self._app:
            calls["app"] = partial(dial.async_status, self._app)
        answers = await asyncio.gather(*(call() for call in calls.values()), return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        results = dict(zip(calls, answers, strict=True))
        if "volume" in results and "volume" not in kinds:
            del results["volume"]
        if "companion" in results and not kinds & {"notify", "portal"}:
            del results["companion"]
        if "transport" in results:
            self._transport = str(results["transport"].get("CurrentTransportState") or "")
        values: dict[str, Any] = {}
        if "power" in kinds:
            values["power"] = {"on": True}  # it answered
        if "playing" in results:
            values.update(self._playing(*results["playing"]))
        if "volume" in results:
            values["volume"] = results["volume"]
        companion: DialApp | None = results.get("companion")
        if kinds & {"notify", "portal"} and dial is not None and self._has_linli is not False:
            extra = companion.additional if companion is not None else {}
            text = extra.get("overlay") or None
            values["notify"] = {
                "text": text,
                "title": (extra.get("overlayTitle") or None) if text else None,
                "level": (extra.get("overlayLevel") or None) if text else None,
            }
            page = extra.get("page") or None
            values["portal"] = {"open": page is not None, "url": page}
        if "app" in kinds and dial is not None:
            app: DialApp | None = results.get("app")
            running = app is not None and app.state == "running"
            values["app"] = {
                "running": app.name if running and app else None,
                "url": (app.additional.get("url") or None) if running and app else None,
            }
        return {k: v for k, v in values.items() if k in kinds}

    async def _state_variables(
        self, service: UpnpService | None, names: tuple[str, ...]
    ) -> Mapping[str, str]:
        """Several state variables in one GetStateVariables (AVTransport:2, RenderingControl:2)."""
        answer = await self._call(
            service, "GetStateVariables", InstanceID=0, StateVariableList=",".join(names)
        )
        try:
            found = soap.parse_value_pairs(str(answer.get("StateVariableValuePairs") or ""))
        except soap.SoapError as exc:
            raise BoxAnswerError(f"GetStateVariables: the box's answer is not usable: {exc}"[:300]) from None
        missing = [name for name in names if name not in found]
        if missing:
            raise BoxAnswerError(f"GetStateVariables: the box did not report {', '.join(missing)}")
        return found

    def _has(self, service: UpnpService | None, action: str) -> bool:
        return service is not None and service.has_action(action)

    async def _read_playing(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The transport state and its URI: one GetStateVariables where the box has it."""
        if self._has(self._av, "GetStateVariables"):
            found = await self._state_variables(self._av, ("TransportState", "AVTransportURI"))
            transport = {"CurrentTransportState": found["TransportState"]}
            media: dict[str, Any] = {"CurrentURI": found["AVTransportURI"]}
        else:
            transport, media = await asyncio.gather(
                self._call(self._av, "GetTransportInfo", InstanceID=0),
                self._call(self._av, "GetMediaInfo", InstanceID=0),
            )
        return await self._transport_read(transport, media), media

    async def _read_volume(self) -> dict[str, Any]:
        """Volume and mute of the Master channel: one GetStateVariables where the box has it."""
        if self._has(self._rc, "GetStateVariables"):
            assert self._rc is not None
            found = await self._state_variables(self._rc, ("Volume", "Mute"))
            try:
                level = self._rc.state_variable("Volume").coerce_python(found["Volume"])
                muted = self._rc.state_variable("Mute").coerce_python(found["Mute"])
            except (KeyError, ValueError, TypeError, UpnpError):
                raise BoxAnswerError(
                    f"RenderingControl: volume {found['Volume']!r} / mute {found['Mute']!r} not understood"
                ) from None
            return self._volume({"CurrentVolume": level}, {"CurrentMute": muted})
        volume, mute = await asyncio.gather(
            self._call(self._rc, "GetVolume", InstanceID=0, Channel="Master"),
            self._call(self._rc, "GetMute", InstanceID=0, Channel="Master"),
        )
        return self._volume(volume, mute)

    async def _transport_read(
        self, transport: dict[str, Any], media: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Remember the transport state; finish a URI change on a box that stopped for it.

        AVTransport keeps a playing transport PLAYING across SetAVTransportURI, so
        a channel change on a playing box is that one action. A box that stops
        instead shows it here, reading the URI just set as not playing: it gets
        its Play now, and every later change sends Play at once.
        """
        unplayed, self._unplayed = self._unplayed, None
        state = str(transport.get("CurrentTransportState") or "")
        if (
            unplayed is not None
            and media is not None
            and media.get("CurrentURI") == unplayed
            and state not in ("PLAYING", "TRANSITIONING")
        ):
            self._keeps_playing = False
            self._ctx.log.info(
                "box at %s stops on SetAVTransportURI; Play follows from now on", self._endpoint.url
            )
            await self._call(self._av, "Play", InstanceID=0, Speed="1")
            transport = await self._call(self._av, "GetTransportInfo", InstanceID=0)
            state = str(transport.get("CurrentTransportState") or "")
        self._transport = state
        return transport

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

    async def _play_uri(self, uri: str, title: str | None) -> None:
        """Set the URI (with DIDL-Lite metadata when there is a title to show) and make it play."""
        metadata = didl_item(uri, title) if title else ""
        await self._call(
            self._av, "SetAVTransportURI", InstanceID=0, CurrentURI=uri, CurrentURIMetaData=metadata
        )
        if self._transport == "PLAYING" and self._keeps_playing:
            self._unplayed = uri  # the confirming read shows whether it plays (see _transport_read)
        else:
            await self._call(self._av, "Play", InstanceID=0, Speed="1")
            self._unplayed = None

    async def _companion(self, **form: str) -> None:
        try:
            await self._need_dial().async_launch(COMPANION_APP, urlencode(form))
        except NotSupportedError:
            self._has_linli = False  # the DIAL server has no such app (404)
            raise NotSupportedError(self.degraded()["notify"]) from None
        self._has_linli = True

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
            # No metadata: a DVB service is named by the box's own SI tables (its SDT), as a
            # Thunder box names the IPTV channel it is given by URI alone.
            await self._play_uri(dvb_uri(record), None)
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
        elif kind == "keys":
            # All or nothing: a key this box cannot press is refused before any key is sent.
            steps = [self._key_step(key) for key in command["keys"]]
            for step in steps:
                await step()
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

    # -- remote keys ---------------------------------------------------------------

    def _key_step(self, key: str) -> Callable[[], Awaitable[Any]]:
        """How this box presses `key`: the DLNA or DIAL action of the same meaning, else the
        vendor's key injection; `NotSupportedError` naming what the box lacks otherwise."""
        av, rc = self._av, self._rc
        if key in _TRANSPORT_KEYS and self._has(av, _TRANSPORT_KEYS[key]):
            extra = {"Speed": "1"} if key == "PLAY" else {}
            return partial(self._call, av, _TRANSPORT_KEYS[key], InstanceID=0, **extra)
        if key == "PLAY_PAUSE" and self._has(av, "Play") and self._has(av, "Pause"):
            return self._play_pause
        if key in ("FAST_FORWARD", "REWIND") and self._has(av, "Seek") and self._has(av, "GetPositionInfo"):
            return partial(self._seek, SEEK_STEP_S if key == "FAST_FORWARD" else -SEEK_STEP_S)
        if key in ("CH_UP", "CH_DOWN"):
            delta = 1 if key == "CH_UP" else -1
            if len(self._ctx.lineup) and self._has(av, "SetAVTransportURI"):
                return partial(self._step_channel, delta)
            if self._has(av, "Next" if delta > 0 else "Previous"):
                return partial(self._call, av, "Next" if delta > 0 else "Previous", InstanceID=0)
        if key in ("VOL_UP", "VOL_DOWN", "MUTE") and self._has(rc, "SetVolume") and self._has(rc, "SetMute"):
            return partial(self._volume_key, key)
        if key in ("HOME", "EXIT") and self._dial is not None:
            return self._home
        if key == "POWER" and self._dial is not None:  # the box answers, so it is on: POWER puts it to sleep
            return partial(self.async_execute, "power", {"action": "off"})
        if self._inject_url is not None:
            name = self._inject_names.get(key, key)
            return partial(self._inject_key, self._inject_url.replace("{key}", quote(name, safe="")))
        lacks = (
            "it has no vendor key injection (adopt it with extra.key_injection)"
            if key in _VENDOR_ONLY
            else f"its {' + '.join(self.protocols)} services have no action for it"
        )
        raise NotSupportedError(f"this cable box cannot press {key}: {lacks}")

    async def _play_pause(self) -> None:
        transport = await self._call(self._av, "GetTransportInfo", InstanceID=0)
        if transport.get("CurrentTransportState") == "PLAYING":
            await self._call(self._av, "Pause", InstanceID=0)
        else:
            await self._call(self._av, "Play", InstanceID=0, Speed="1")

    async def _seek(self, delta_s: int) -> None:
        position = await self._call(self._av, "GetPositionInfo", InstanceID=0)
        target = max(0, _seconds(str(position.get("RelTime") or "")) + delta_s)
        hours, rest = divmod(target, 3600)
        hms = f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
        await self._call(self._av, "Seek", InstanceID=0, Unit="REL_TIME", Target=hms)

    async def _step_channel(self, delta: int) -> None:
        transport, media = await self._read_playing()
        record = self._ctx.lineup.step(self._playing(transport, media)["channel"], delta)
        if record is None or record.get("idType") != ID_TYPE_DVB_C:
            raise NotSupportedError("the lineup has no DVB-C service to step to")
        await self._play_uri(dvb_uri(record), None)

    async def _volume_key(self, key: str) -> None:
        current = await self._read_volume()  # a key is relative: what the box has now, not what we last set
        if key == "MUTE":
            await self._call(
                self._rc, "SetMute", InstanceID=0, Channel="Master", DesiredMute=not current["muted"]
            )
            return
        level = min(100, max(0, current["level"] + (1 if key == "VOL_UP" else -1)))
        await self._call(self._rc, "SetVolume", InstanceID=0, Channel="Master", DesiredVolume=level)

    async def _home(self) -> None:
        """Back to the box's own screen: the app on screen (launched over DIAL) is stopped."""
        dial = self._need_dial()
        if self._app is not None:
            status = await dial.async_status(self._app)
            if status is not None and status.state == "running":
                await dial.async_stop(self._app, status.run_url)

    async def _inject_key(self, url: str) -> None:
        answer = await async_request(self._ctx.session, "POST", url, limits=self._ctx.limits, data=b"")
        if answer.status not in (200, 201, 202, 204):
            raise BoxAnswerError(f"key injection POST {url}: the box answered HTTP {answer.status}")


def _seconds(hms: str) -> int:
    """`H+:MM:SS[.F]` (AVTransport's REL_TIME) in whole seconds; 0 when the box does not say."""
    try:
        hours, minutes, seconds = hms.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + int(float(seconds))
    except ValueError:
        return 0


def create_driver(
    endpoint: BoxEndpoint, context: DriverContext, events: GenaListener | None = None
) -> DialDlnaDriver:
    return DialDlnaDriver(endpoint, context, events)
