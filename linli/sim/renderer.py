"""The UPnP/DLNA MediaRenderer of the simulated cable box, built with async-upnp-client's server side.

AVTransport plays what it is given: a `dvb://<onid>.<tsid>.<sid>` URI tunes the
tuner to that DVB-C service, any other URI is a stream. As AVTransport:1 §2.4.1
says, SetAVTransportURI leaves the transport state as it was (NO_MEDIA_PRESENT
becomes STOPPED): a box that is playing plays the new URI at once — how a
channel change looks on a real renderer. RenderingControl is the box's volume.
The services change the box's `screen`. The box is a MediaRenderer:2 by
default — its AVTransport:2 and RenderingControl:2 add GetStateVariables, which
reads the transport state and URI (or volume and mute) in one action — or a
MediaRenderer:1 (`DialBox(upnp_version=1)`), read with GetTransportInfo and
GetMediaInfo (GetVolume and GetMute).

Both services event `LastChange` to subscribers (GENA, the library's
subscribe handler and NOTIFY): the variables that changed since the last event,
in one `Event` document, at most every 0.2 s — the moderation AVTransport:1 and
RenderingControl:1 (§2.2.1, LastChange) ask of a renderer. So a channel change
made with the box's own remote reaches a subscribed gateway within 0.2 s.

The services, their state variables, argument checks and actions are
async-upnp-client's server side. The control endpoint (`control_handler`) reads
and writes the SOAP envelopes with adapters/upnp/soap.py instead of the library's
element trees, so a SOAP exchange costs the simulated box about what a JSON-RPC
exchange costs the simulated Thunder box: the boxes' own overheads stay out of
the comparison between operators (bench/stb.py).

(No `from __future__ import annotations` here: the library checks action
parameter annotations against the state variables' Python types.)
"""

import asyncio
import weakref
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any, ClassVar, cast
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

import aiohttp
from aiohttp import web
from async_upnp_client.client import UpnpRequester
from async_upnp_client.const import DeviceInfo, HttpRequest, HttpResponse, ServiceInfo
from async_upnp_client.exceptions import UpnpActionError, UpnpActionErrorCode, UpnpValueError
from async_upnp_client.server import (
    UpnpServerAction,
    UpnpServerDevice,
    UpnpServerService,
    callable_action,
    create_event_var,
    create_state_var,
)
from didl_lite import didl_lite

from linli.adapters.upnp import soap
from linli.gateway.stb.channels import parse_dvb_uri
from linli.sim.lineups import BROADCAST_LINEUP

if TYPE_CHECKING:
    from linli.sim.box import SimBox

DIAL_SERVICE = "urn:dial-multiscreen-org:service:dial:1"


def _service(name: str, service_type: str) -> ServiceInfo:
    return ServiceInfo(
        service_id=f"urn:upnp-org:serviceId:{name}",
        service_type=service_type,
        control_url=f"/upnp/control/{name}",
        event_sub_url=f"/upnp/event/{name}",
        scpd_url=f"/upnp/{name}.xml",
        xml=ET.Element("server_service"),
    )


LAST_CHANGE_S = 0.2  # LastChange is evented at most this often (AVTransport:1, RenderingControl:1)


class NotifyRequester(UpnpRequester):
    """How a box sends its NOTIFYs: over one keep-alive session of its own. A subscriber
    that does not answer is its own loss (its subscription lapses), never the box's."""

    def __init__(self, timeout_s: float = 2.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def async_http_request(self, http_request: HttpRequest) -> HttpResponse:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = http_request.body.encode() if http_request.body is not None else None
        try:
            async with self._session.request(
                http_request.method, http_request.url, headers=dict(http_request.headers), data=body
            ) as response:
                await response.read()
                return HttpResponse(response.status, dict(response.headers), None)
        except (aiohttp.ClientError, TimeoutError, OSError):
            return HttpResponse(599, {}, None)

    async def async_close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _BoxService(UpnpServerService):
    box: "SimBox"
    #: The `Event` namespace of this service's LastChange (None: the service has none).
    LAST_CHANGE_NS: ClassVar[str | None] = None

    def __init__(self, requester: UpnpRequester) -> None:
        super().__init__(requester)
        self._flush_at: asyncio.TimerHandle | None = None
        self._sent: dict[str, tuple[str, str]] = {}  # as the last LastChange reported them

    def check(self) -> None:
        if self.box.misbehave == "fault":
            raise UpnpActionError(
                error_code=UpnpActionErrorCode.ACTION_FAILED.value, error_desc="Tuner hardware fault"
            )

    def evented(self) -> dict[str, tuple[str, str]]:
        """The variables LastChange reports: name → (extra attributes, value)."""
        return {}

    def changed(self) -> None:
        """Something evented may have changed: LastChange goes out with the next moderated event."""
        if self.LAST_CHANGE_NS is None or self._flush_at is not None:
            return
        self._flush_at = asyncio.get_running_loop().call_later(LAST_CHANGE_S, self._flush)

    def _flush(self) -> None:
        self._flush_at = None
        now = self.evented()
        news = {name: value for name, value in now.items() if self._sent.get(name) != value}
        if not news:
            return
        self._sent = now
        variables = "".join(
            f"<{name}{attrs} val={quoteattr(value)}/>" for name, (attrs, value) in news.items()
        )
        # The library's eventable variable NOTIFYs every subscriber when its value changes.
        self.state_variable(
            "LastChange"
        ).value = f'<Event xmlns="{self.LAST_CHANGE_NS}"><InstanceID val="0">{variables}</InstanceID></Event>'


class AVTransportService(_BoxService):
    SERVICE_DEFINITION = _service("AVTransport", "urn:schemas-upnp-org:service:AVTransport:1")
    STATE_VARIABLE_DEFINITIONS: ClassVar[dict[str, Any]] = {
        "A_ARG_TYPE_InstanceID": create_state_var("ui4"),
        "AVTransportURI": create_state_var("string", default=""),
        "AVTransportURIMetaData": create_state_var("string", default=""),
        "NextAVTransportURI": create_state_var("string", default=""),
        "NextAVTransportURIMetaData": create_state_var("string", default=""),
        "TransportState": create_state_var(
            "string",
            allowed=["STOPPED", "PLAYING", "PAUSED_PLAYBACK", "TRANSITIONING", "NO_MEDIA_PRESENT"],
            default="NO_MEDIA_PRESENT",
        ),
        "TransportStatus": create_state_var("string", allowed=["OK", "ERROR_OCCURRED"], default="OK"),
        "TransportPlaySpeed": create_state_var("string", default="1"),
        "NumberOfTracks": create_state_var("ui4", default="0"),
        "CurrentMediaDuration": create_state_var("string", default="NOT_IMPLEMENTED"),
        "PlaybackStorageMedium": create_state_var("string", default="NETWORK"),
        "RecordStorageMedium": create_state_var("string", default="NOT_IMPLEMENTED"),
        "RecordMediumWriteStatus": create_state_var("string", default="NOT_IMPLEMENTED"),
        "LastChange": create_event_var("string", default=""),
    }

    LAST_CHANGE_NS = "urn:schemas-upnp-org:metadata-1-0/AVT/"

    def __init__(self, requester: UpnpRequester) -> None:
        super().__init__(requester)
        self.uri = ""
        self.metadata = ""
        self.transport = "NO_MEDIA_PRESENT"

    def evented(self) -> dict[str, tuple[str, str]]:
        return {
            "TransportState": ("", self.transport),
            "AVTransportURI": ("", self.uri),
            "AVTransportURIMetaData": ("", self.metadata),
        }

    def _show(self) -> None:
        self.changed()
        screen = self.box.screen
        triplet = parse_dvb_uri(self.uri) if self.uri else None
        if triplet is not None:
            screen.media_url, screen.media_title, screen.media_state = None, None, "stopped"
            if self.transport == "PLAYING":
                record = next(
                    (r for r in BROADCAST_LINEUP if (r["onid"], r["tsid"], r["sid"]) == triplet),
                    {
                        "idType": 10,
                        "name": self.uri,
                        "onid": triplet[0],
                        "tsid": triplet[1],
                        "sid": triplet[2],
                    },
                )
                screen.channel = dict(record)
            else:
                screen.channel = None
            return
        screen.channel = None
        screen.media_url = self.uri or None
        screen.media_title = _title(self.metadata)
        screen.media_state = {"PLAYING": "playing", "PAUSED_PLAYBACK": "paused"}.get(
            self.transport, "stopped"
        )

    @callable_action(
        name="SetAVTransportURI",
        in_args={
            "InstanceID": "A_ARG_TYPE_InstanceID",
            "CurrentURI": "AVTransportURI",
            "CurrentURIMetaData": "AVTransportURIMetaData",
        },
        out_args={},
    )
    async def set_uri(self, InstanceID: int, CurrentURI: str, CurrentURIMetaData: str) -> dict[str, Any]:
        self.check()
        self.uri, self.metadata = CurrentURI, CurrentURIMetaData
        if self.transport == "NO_MEDIA_PRESENT" or getattr(self.box, "stops_on_new_uri", False):
            self.transport = "STOPPED"
        self._show()
        return {}

    @callable_action(
        name="Play",
        in_args={"InstanceID": "A_ARG_TYPE_InstanceID", "Speed": "TransportPlaySpeed"},
        out_args={},
    )
    async def play(self, InstanceID: int, Speed: str) -> dict[str, Any]:
        self.check()
        if not self.uri:
            raise UpnpActionError(error_code=701, error_desc="Transition not available")
        self.transport = "PLAYING"
        self._show()
        return {}

    @callable_action(name="Pause", in_args={"InstanceID": "A_ARG_TYPE_InstanceID"}, out_args={})
    async def pause(self, InstanceID: int) -> dict[str, Any]:
        self.check()
        if self.transport != "PLAYING" or parse_dvb_uri(self.uri):
            raise UpnpActionError(error_code=701, error_desc="Transition not available")
        self.transport = "PAUSED_PLAYBACK"
        self._show()
        return {}

    @callable_action(name="Stop", in_args={"InstanceID": "A_ARG_TYPE_InstanceID"}, out_args={})
    async def stop(self, InstanceID: int) -> dict[str, Any]:
        self.check()
        self.transport = "STOPPED" if self.uri else "NO_MEDIA_PRESENT"
        self._show()
        return {}

    @callable_action(
        name="GetTransportInfo",
        in_args={"InstanceID": "A_ARG_TYPE_InstanceID"},
        out_args={
            "CurrentTransportState": "TransportState",
            "CurrentTransportStatus": "TransportStatus",
            "CurrentSpeed": "TransportPlaySpeed",
        },
    )
    async def transport_info(self, InstanceID: int) -> dict[str, Any]:
        self.check()
        return {"CurrentTransportState": self.transport, "CurrentTransportStatus": "OK", "CurrentSpeed": "1"}

    @callable_action(
        name="GetMediaInfo",
        in_args={"InstanceID": "A_ARG_TYPE_InstanceID"},
        out_args={
            "NrTracks": "NumberOfTracks",
            "MediaDuration": "CurrentMediaDuration",
            "CurrentURI": "AVTransportURI",
            "CurrentURIMetaData": "AVTransportURIMetaData",
            "NextURI": "NextAVTransportURI",
            "NextURIMetaData": "NextAVTransportURIMetaData",
            "PlayMedium": "PlaybackStorageMedium",
            "RecordMedium": "RecordStorageMedium",
            "WriteStatus": "RecordMediumWriteStatus",
        },
    )
    async def media_info(self, InstanceID: int) -> dict[str, Any]:
        self.check()
        return {
            "NrTracks": 1 if self.uri else 0,
            "MediaDuration": "NOT_IMPLEMENTED",
            "CurrentURI": self.uri,
            "CurrentURIMetaData": self.metadata,
            "NextURI": "",
            "NextURIMetaData": "",
            "PlayMedium": "NETWORK",
            "RecordMedium": "NOT_IMPLEMENTED",
            "WriteStatus": "NOT_IMPLEMENTED",
        }


def _title(metadata: str) -> str | None:
    if not metadata:
        return None
    try:
        items = didl_lite.from_xml_string(metadata)
    except Exception:
        return None
    return str(getattr(items[0], "title", "")) or None if items else None


class RenderingControlService(_BoxService):
    SERVICE_DEFINITION = _service("RenderingControl", "urn:schemas-upnp-org:service:RenderingControl:1")
    STATE_VARIABLE_DEFINITIONS: ClassVar[dict[str, Any]] = {
        "A_ARG_TYPE_InstanceID": create_state_var("ui4"),
        "A_ARG_TYPE_Channel": create_state_var("string", allowed=["Master"], default="Master"),
        "Volume": create_state_var(
            "ui2", allowed_range={"min": "0", "max": "100", "step": "1"}, default="20"
        ),
        "Mute": create_state_var("boolean", default="0"),
        "LastChange": create_event_var("string", default=""),
    }
    LAST_CHANGE_NS = "urn:schemas-upnp-org:metadata-1-0/RCS/"

    def evented(self) -> dict[str, tuple[str, str]]:
        master = ' channel="Master"'
        screen = self.box.screen
        return {"Volume": (master, str(screen.volume)), "Mute": (master, "1" if screen.muted else "0")}

    @callable_action(
        name="GetVolume",
        in_args={"InstanceID": "A_ARG_TYPE_InstanceID", "Channel": "A_ARG_TYPE_Channel"},
        out_args={"CurrentVolume": "Volume"},
    )
    async def get_volume(self, InstanceID: int, Channel: str) -> dict[str, Any]:
        self.check()
        return {"CurrentVolume": self.box.screen.volume}

    @callable_action(
        name="SetVolume",
        in_args={
            "InstanceID": "A_ARG_TYPE_InstanceID",
            "Channel": "A_ARG_TYPE_Channel",
            "DesiredVolume": "Volume",
        },
        out_args={},
    )
    async def set_volume(self, InstanceID: int, Channel: str, DesiredVolume: int) -> dict[str, Any]:
        self.check()
        self.box.screen.volume = DesiredVolume
        self.changed()
        return {}

    @callable_action(
        name="GetMute",
        in_args={"InstanceID": "A_ARG_TYPE_InstanceID", "Channel": "A_ARG_TYPE_Channel"},
        out_args={"CurrentMute": "Mute"},
    )
    async def get_mute(self, InstanceID: int, Channel: str) -> dict[str, Any]:
        self.check()
        return {"CurrentMute": self.box.screen.muted}

    @callable_action(
        name="SetMute",
        in_args={
            "InstanceID": "A_ARG_TYPE_InstanceID",
            "Channel": "A_ARG_TYPE_Channel",
            "DesiredMute": "Mute",
        },
        out_args={},
    )
    async def set_mute(self, InstanceID: int, Channel: str, DesiredMute: bool) -> dict[str, Any]:
        self.check()
        self.box.screen.muted = DesiredMute
        self.changed()
        return {}


_AVS_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?><stateVariableValuePairs xmlns="urn:schemas-upnp-org:av:avs" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xsi:schemaLocation="urn:schemas-upnp-org:av:avs http://www.upnp.org/schemas/av/avs.xsd">'
)
_STATE_VARIABLE_LISTS = {
    "A_ARG_TYPE_StateVariableList": create_state_var("string", default=""),
    "A_ARG_TYPE_StateVariableValuePairs": create_state_var("string", default=""),
}


def value_pairs(known: dict[str, str], wanted: str, channel: set[str] | frozenset[str] = frozenset()) -> str:
    """A `stateVariableValuePairs` document (AVTransport:2 / RenderingControl:2 GetStateVariables)."""
    names = [name.strip() for name in wanted.split(",") if name.strip()]
    if names == ["*"]:
        names = list(known)
    unknown = [name for name in names if name not in known]
    if not names or unknown:
        raise UpnpActionError(error_code=704, error_desc=f"Invalid State Variable List: {', '.join(unknown)}")
    master = ' channel="Master"'
    pairs = "".join(
        f'<stateVariable variableName="{name}"{master if name in channel else ""}>'
        f"{xml_escape(known[name])}</stateVariable>"
        for name in names
    )
    return f"{_AVS_HEAD}{pairs}</stateVariableValuePairs>"


class AVTransport2Service(AVTransportService):
    """AVTransport:2: everything of :1, and GetStateVariables (one read for the state and URI)."""

    SERVICE_DEFINITION = _service("AVTransport", "urn:schemas-upnp-org:service:AVTransport:2")
    STATE_VARIABLE_DEFINITIONS: ClassVar[dict[str, Any]] = {
        **AVTransportService.STATE_VARIABLE_DEFINITIONS,
        **_STATE_VARIABLE_LISTS,
    }

    @callable_action(
        name="GetStateVariables",
        in_args={"InstanceID": "A_ARG_TYPE_InstanceID", "StateVariableList": "A_ARG_TYPE_StateVariableList"},
        out_args={"StateVariableValuePairs": "A_ARG_TYPE_StateVariableValuePairs"},
    )
    async def get_state_variables(self, InstanceID: int, StateVariableList: str) -> dict[str, Any]:
        self.check()
        known = {
            "TransportState": self.transport,
            "TransportStatus": "OK",
            "TransportPlaySpeed": "1",
            "AVTransportURI": self.uri,
            "AVTransportURIMetaData": self.metadata,
            "NumberOfTracks": "1" if self.uri else "0",
        }
        return {"StateVariableValuePairs": value_pairs(known, StateVariableList)}


class RenderingControl2Service(RenderingControlService):
    """RenderingControl:2: everything of :1, and GetStateVariables (volume and mute in one read)."""

    SERVICE_DEFINITION = _service("RenderingControl", "urn:schemas-upnp-org:service:RenderingControl:2")
    STATE_VARIABLE_DEFINITIONS: ClassVar[dict[str, Any]] = {
        **RenderingControlService.STATE_VARIABLE_DEFINITIONS,
        **_STATE_VARIABLE_LISTS,
    }

    @callable_action(
        name="GetStateVariables",
        in_args={"InstanceID": "A_ARG_TYPE_InstanceID", "StateVariableList": "A_ARG_TYPE_StateVariableList"},
        out_args={"StateVariableValuePairs": "A_ARG_TYPE_StateVariableValuePairs"},
    )
    async def get_state_variables(self, InstanceID: int, StateVariableList: str) -> dict[str, Any]:
        self.check()
        screen = self.box.screen
        known = {"Volume": str(screen.volume), "Mute": "1" if screen.muted else "0"}
        return {"StateVariableValuePairs": value_pairs(known, StateVariableList, {"Volume", "Mute"})}


class ConnectionManagerService(_BoxService):
    SERVICE_DEFINITION = _service("ConnectionManager", "urn:schemas-upnp-org:service:ConnectionManager:1")
    STATE_VARIABLE_DEFINITIONS: ClassVar[dict[str, Any]] = {
        "SourceProtocolInfo": create_state_var("string", default=""),
        "SinkProtocolInfo": create_state_var(
            "string", default="http-get:*:video/mp4:*,http-get:*:application/vnd.apple.mpegurl:*,dvb:*:*:*"
        ),
    }

    @callable_action(
        name="GetProtocolInfo",
        in_args={},
        out_args={"Source": "SourceProtocolInfo", "Sink": "SinkProtocolInfo"},
    )
    async def protocol_info(self) -> dict[str, Any]:
        return {
            "Source": self.state_variable("SourceProtocolInfo"),
            "Sink": self.state_variable("SinkProtocolInfo"),
        }


class ConnectionManager2Service(ConnectionManagerService):
    SERVICE_DEFINITION = _service("ConnectionManager", "urn:schemas-upnp-org:service:ConnectionManager:2")


#: The services of a MediaRenderer:1 and of a MediaRenderer:2 box.
SERVICES_OF: dict[int, list[Any]] = {
    1: [AVTransportService, RenderingControlService, ConnectionManagerService],
    2: [AVTransport2Service, RenderingControl2Service, ConnectionManager2Service],
}


class MediaRendererDevice(UpnpServerDevice):
    """The box's root device; each box gets its own UDN and name (see `for_box`)."""

    EMBEDDED_DEVICES: ClassVar[list[Any]] = []
    SERVICES: ClassVar[list[Any]] = SERVICES_OF[2]

    @classmethod
    def for_box(
        cls, box: "SimBox", udn: str, requester: UpnpRequester, version: int = 2
    ) -> "MediaRendererDevice":
        info = DeviceInfo(
            device_type=f"urn:schemas-upnp-org:device:MediaRenderer:{version}",
            friendly_name=f"{box.name}",
            manufacturer="Linli Sim Cable",
            manufacturer_url=None,
            model_description="Two-way DVB-C set-top box (simulated)",
            model_name="DVB-C-SIM-2W",
            model_number="2.3.0",
            model_url=None,
            serial_number=None,
            udn=udn,
            upc=None,
            presentation_url=None,
            url="/description.xml",
            icons=[],
            xml=ET.Element("server_device"),
        )
        kind = type("BoxRenderer", (cls,), {"DEVICE_DEFINITION": info, "SERVICES": SERVICES_OF[version]})
        device = kind(requester, box.base_url)
        for service in device.all_services:
            service.box = box  # type: ignore[attr-defined]
        return device


#: Each action's in- and out-arguments by name, worked out once per action (and box).
_SIGNATURES: "weakref.WeakKeyDictionary[Any, tuple[dict[str, Any], dict[str, Any]]]" = (
    weakref.WeakKeyDictionary()
)


def _fault(code: int, description: str) -> web.Response:
    return web.Response(status=500, body=soap.fault_envelope(code, description), content_type="text/xml")


async def control_handler(service: UpnpServerService, request: web.Request) -> web.Response:
    """POST to a service's control URL: one action, its answer or a UPnP error (UDA 1.1 §3.2)."""
    action_name = request.headers.get("SOAPAction", "").strip().strip('"').rpartition("#")[2]
    try:
        message = soap.parse(await request.read())
    except soap.SoapError as exc:
        return web.Response(status=400, text=f"not a SOAP control message: {exc}")
    if action_name not in service.actions or message.name != action_name:
        return _fault(401, "Invalid Action")
    counter = getattr(getattr(service, "box", None), "soap_actions", None)
    if counter is not None:
        counter[action_name] += 1
    action = service.action(action_name)
    signature = _SIGNATURES.get(action)
    if signature is None:
        signature = _SIGNATURES[action] = (
            {argument.name: argument.related_state_variable for argument in action.in_arguments()},
            {argument.name: argument.related_state_variable for argument in action.out_arguments()},
        )
    inputs, outputs = signature
    arguments: dict[str, Any] = {}
    try:
        for name, text in message.values.items():
            variable = inputs.get(name)
            if variable is None:
                return _fault(402, f"Invalid Args: no argument {name}")
            # Coerced and checked against its state variable once, as the library's own
            # handler would (its async_handle_action checks every argument a second time).
            value = arguments[name] = variable.coerce_python(text)
            variable.validate_value(value)
        missing = [name for name in inputs if name not in arguments]
        if missing:
            return _fault(402, f"Invalid Args: missing {', '.join(missing)}")
        result = await cast(UpnpServerAction, action).async_handle(**arguments)
    except UpnpActionError as exc:
        return _fault(exc.error_code or UpnpActionErrorCode.ACTION_FAILED.value, exc.error_desc or "")
    except (UpnpValueError, ValueError, TypeError) as exc:
        return _fault(402, f"Invalid Args: {exc}"[:200])
    values = []
    for name, value in result.items():
        variable = outputs[name]
        variable.validate_value(value)
        values.append((name, variable.coerce_upnp(value)))
    body = soap.envelope(service.service_type, f"{action_name}Response", values)
    return web.Response(body=body, content_type="text/xml", charset="utf-8")
