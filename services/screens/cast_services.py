"""The UPnP services of a household's virtual MediaRenderer (async-upnp-client's server side).

A phone's "cast" button speaks AVTransport and RenderingControl; each action
becomes a command to the household's real TV box through `Screens` and
`gateway.commands`, so it works the same whichever operator's box is there.

(No `from __future__ import annotations` here: the library checks action
parameter annotations against the state variables' Python types.)
"""

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from xml.sax.saxutils import quoteattr

from async_upnp_client.const import ServiceInfo
from async_upnp_client.exceptions import UpnpActionError
from async_upnp_client.server import UpnpServerService, callable_action, create_event_var, create_state_var
from defusedxml import ElementTree as DET

from linli.gateway.commands import CommandError

if TYPE_CHECKING:
    from linli.services.screens.cast import HouseholdRenderer

_DIDL_TITLE = "{http://purl.org/dc/elements/1.1/}title"
_PLAYABLE = re.compile(r"^(https?|rtsp|rtp|udp|igmp)://\S+$")
MAX_METADATA = 16384  # a DIDL-Lite item phones send is 1-2 KiB; more is not kept


def service_info(prefix: str, name: str, service_type: str) -> ServiceInfo:
    return ServiceInfo(
        service_id=f"urn:upnp-org:serviceId:{name}",
        service_type=service_type,
        control_url=f"{prefix}/upnp/control/{name}",
        event_sub_url=f"{prefix}/upnp/event/{name}",
        scpd_url=f"{prefix}/upnp/{name}.xml",
        xml=ET.Element("server_service"),
    )


def didl_title(metadata: str) -> str | None:
    """The dc:title of a DIDL-Lite item (parsed with defusedxml, at most 16 KiB)."""
    if not metadata or len(metadata) > MAX_METADATA:
        return None
    try:
        root = DET.fromstring(metadata)
    except Exception:
        return None
    element = root.find(f".//{_DIDL_TITLE}")
    return (element.text or "").strip()[:100] or None if element is not None else None


class _RendererService(UpnpServerService):
    renderer: "HouseholdRenderer"
    #: The `Event` namespace of this service's LastChange (None: the service has none).
    LAST_CHANGE_NS: ClassVar[str | None] = None

    async def command(self, kind: str, value: dict[str, Any]) -> Any:
        try:
            return await self.renderer.async_command(kind, value)
        except CommandError as exc:
            raise UpnpActionError(error_code=701, error_desc=f"{exc.code}: {exc.message}"[:200]) from None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def prune(self) -> None:
        """Forget subscriptions that lapsed (the library does so only when it next sends an event)."""
        now = datetime.now()
        self._subscribers = [s for s in self._subscribers if now < s.expiration]

    def evented(self) -> dict[str, tuple[str, str]]:
        """What LastChange reports, read from the TV box's state: name → (extra attributes, value)."""
        return {}

    def last_change(self) -> str:
        """The LastChange document (AVTransport:1 / RenderingControl:1 §2.2.1) of the TV's state now.

        Every event carries the instance's whole evented state, not only what changed: the
        initial event a subscriber gets is then complete, and one that missed a NOTIFY is right
        again at the next. It is sent only when something in it changed.
        """
        variables = "".join(
            f"<{name}{attrs} val={quoteattr(value)}/>" for name, (attrs, value) in self.evented().items()
        )
        return f'<Event xmlns="{self.LAST_CHANGE_NS}"><InstanceID val="0">{variables}</InstanceID></Event>'

    def publish(self) -> bool:
        """Event LastChange to the subscribers if the TV's state changed (False: nothing to say)."""
        if self.LAST_CHANGE_NS is None:
            return False
        document = self.last_change()
        variable = self.state_variable("LastChange")
        if variable.value == document:
            return False
        variable.value = document  # the library's eventable variable NOTIFYs every subscriber
        return True


class CastAVTransport(_RendererService):
    SERVICE_DEFINITION: ClassVar[ServiceInfo]  # type: ignore[misc]
    STATE_VARIABLE_DEFINITIONS: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
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
        "CurrentMediaDuration": create_state_var("string", default="00:00:00"),
        "CurrentTrack": create_state_var("ui4", default="0"),
        "CurrentTrackDuration": create_state_var("string", default="00:00:00"),
        "RelativeTimePosition": create_state_var("string", default="00:00:00"),
        "AbsoluteTimePosition": create_state_var("string", default="00:00:00"),
        "RelativeCounterPosition": create_state_var("i4", default="0"),
        "AbsoluteCounterPosition": create_state_var("i4", default="0"),
        "PlaybackStorageMedium": create_state_var("string", default="NETWORK"),
        "RecordStorageMedium": create_state_var("string", default="NOT_IMPLEMENTED"),
        "RecordMediumWriteStatus": create_state_var("string", default="NOT_IMPLEMENTED"),
        "CurrentTrackURI": create_state_var("string", default=""),
        "CurrentTrackMetaData": create_state_var("string", default=""),
        "LastChange": create_event_var("string", default=""),
    }
    LAST_CHANGE_NS = "urn:schemas-upnp-org:metadata-1-0/AVT/"

    def _media(self) -> dict[str, Any]:
        return self.renderer.state("media") or {"state": "stopped", "url": None}

    def _uri(self) -> tuple[str, str]:
        """The transport's URI and its DIDL-Lite metadata: what the box plays, else what was set."""
        url = self._media().get("url") or ""
        pending = self.renderer.pending
        if pending is not None and (not url or url == pending[0]):
            return pending[0], pending[2]
        return url, ""

    def transport_state(self) -> str:
        state = self._media().get("state", "")
        if state == "playing":
            return "PLAYING"
        if state == "paused":
            return "PAUSED_PLAYBACK"
        return "STOPPED" if self._uri()[0] else "NO_MEDIA_PRESENT"

    def evented(self) -> dict[str, tuple[str, str]]:
        uri, metadata = self._uri()
        return {
            "TransportState": ("", self.transport_state()),
            "TransportStatus": ("", "OK"),
            "TransportPlaySpeed": ("", "1"),
            "NumberOfTracks": ("", "1" if uri else "0"),
            "CurrentTrack": ("", "1" if uri else "0"),
            "AVTransportURI": ("", uri),
            "AVTransportURIMetaData": ("", metadata),
            "CurrentTrackURI": ("", uri),
            "CurrentTrackMetaData": ("", metadata),
        }

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
        if len(CurrentURI) > 2048 or not _PLAYABLE.match(CurrentURI):
            # what the box's `media` command takes (gateway/stb/schemas.py): no file:, dvb:, ...
            raise UpnpActionError(
                error_code=714,
                error_desc="Illegal MIME-type: the TV plays http(s), rtsp, rtp and udp streams",
            )
        metadata = CurrentURIMetaData if len(CurrentURIMetaData) <= MAX_METADATA else ""
        self.renderer.pending = (CurrentURI, didl_title(metadata), metadata)
        self.renderer.changed()
        return {}

    @callable_action(
        name="Play",
        in_args={"InstanceID": "A_ARG_TYPE_InstanceID", "Speed": "TransportPlaySpeed"},
        out_args={},
    )
    async def play(self, InstanceID: int, Speed: str) -> dict[str, Any]:
        media = self._media()
        playing = media.get("url")
        url = self.renderer.pending[0] if self.renderer.pending is not None else playing
        if media.get("state") == "paused" and url == playing:
            await self.command("media", {"action": "resume"})
        elif media.get("state") == "playing" and url == playing:
            pass  # Play while playing the same URI changes nothing (AVTransport:1 §2.4.9)
        elif url:
            # A new URI, or the same one after Stop: the box is given the stream again, whichever
            # operator's it is (a stopped cable box keeps the URI, a carrier box forgets it).
            pending = self.renderer.pending
            command: dict[str, Any] = {"action": "play", "url": url}
            if pending is not None and pending[0] == url and pending[1]:
                command["title"] = pending[1]
            await self.command("media", command)
        else:
            raise UpnpActionError(error_code=701, error_desc="Transition not available: no URI set")
        return {}

    @callable_action(name="Pause", in_args={"InstanceID": "A_ARG_TYPE_InstanceID"}, out_args={})
    async def pause(self, InstanceID: int) -> dict[str, Any]:
        await self.command("media", {"action": "pause"})
        return {}

    @callable_action(name="Stop", in_args={"InstanceID": "A_ARG_TYPE_InstanceID"}, out_args={})
    async def stop(self, InstanceID: int) -> dict[str, Any]:
        await self.command("media", {"action": "stop"})
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
        return {
            "CurrentTransportState": self.transport_state(),
            "CurrentTransportStatus": "OK",
            "CurrentSpeed": "1",
        }

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
        url, metadata = self._uri()
        return {
            "NrTracks": 1 if url else 0,
            "MediaDuration": "00:00:00",
            "CurrentURI": url,
            "CurrentURIMetaData": metadata,
            "NextURI": "",
            "NextURIMetaData": "",
            "PlayMedium": "NETWORK",
            "RecordMedium": "NOT_IMPLEMENTED",
            "WriteStatus": "NOT_IMPLEMENTED",
        }

    @callable_action(
        name="GetPositionInfo",
        in_args={"InstanceID": "A_ARG_TYPE_InstanceID"},
        out_args={
            "Track": "CurrentTrack",
            "TrackDuration": "CurrentTrackDuration",
            "TrackMetaData": "CurrentTrackMetaData",
            "TrackURI": "CurrentTrackURI",
            "RelTime": "RelativeTimePosition",
            "AbsTime": "AbsoluteTimePosition",
            "RelCount": "RelativeCounterPosition",
            "AbsCount": "AbsoluteCounterPosition",
        },
    )
    async def position_info(self, InstanceID: int) -> dict[str, Any]:
        url, metadata = self._uri()
        return {
            "Track": 1 if url else 0,
            "TrackDuration": "00:00:00",
            "TrackMetaData": metadata,
            "TrackURI": url,
            "RelTime": "00:00:00",
            "AbsTime": "00:00:00",
            "RelCount": 0,
            "AbsCount": 0,
        }


class CastRenderingControl(_RendererService):
    SERVICE_DEFINITION: ClassVar[ServiceInfo]  # type: ignore[misc]
    STATE_VARIABLE_DEFINITIONS: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "A_ARG_TYPE_InstanceID": create_state_var("ui4"),
        "A_ARG_TYPE_Channel": create_state_var("string", allowed=["Master"], default="Master"),
        "Volume": create_state_var("ui2", allowed_range={"min": "0", "max": "100", "step": "1"}, default="0"),
        "Mute": create_state_var("boolean", default="0"),
        "LastChange": create_event_var("string", default=""),
    }
    LAST_CHANGE_NS = "urn:schemas-upnp-org:metadata-1-0/RCS/"

    def _volume(self) -> dict[str, Any]:
        return self.renderer.state("volume") or {"level": 0, "muted": False}

    def evented(self) -> dict[str, tuple[str, str]]:
        volume = self._volume()
        master = ' channel="Master"'
        return {
            "Volume": (master, str(int(volume.get("level") or 0))),
            "Mute": (master, "1" if volume.get("muted") else "0"),
        }

    @callable_action(
        name="GetVolume",
        in_args={"InstanceID": "A_ARG_TYPE_InstanceID", "Channel": "A_ARG_TYPE_Channel"},
        out_args={"CurrentVolume": "Volume"},
    )
    async def get_volume(self, InstanceID: int, Channel: str) -> dict[str, Any]:
        return {"CurrentVolume": int(self._volume()["level"])}

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
        await self.command("volume", {"action": "set", "level": DesiredVolume})
        return {}

    @callable_action(
        name="GetMute",
        in_args={"InstanceID": "A_ARG_TYPE_InstanceID", "Channel": "A_ARG_TYPE_Channel"},
        out_args={"CurrentMute": "Mute"},
    )
    async def get_mute(self, InstanceID: int, Channel: str) -> dict[str, Any]:
        return {"CurrentMute": bool(self._volume()["muted"])}

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
        await self.command("volume", {"action": "mute", "muted": DesiredMute})
        return {}


class CastConnectionManager(_RendererService):
    SERVICE_DEFINITION: ClassVar[ServiceInfo]  # type: ignore[misc]
    STATE_VARIABLE_DEFINITIONS: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "SourceProtocolInfo": create_state_var("string", default=""),
        "SinkProtocolInfo": create_state_var(
            "string",
            default="http-get:*:video/mp4:*,http-get:*:video/mpeg:*,http-get:*:application/vnd.apple.mpegurl:*,"
            "http-get:*:audio/mpeg:*,http-get:*:audio/mp4:*",
        ),
        "A_ARG_TYPE_ConnectionID": create_state_var("i4", default="0"),
        "CurrentConnectionIDs": create_state_var("string", default="0"),
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

    @callable_action(
        name="GetCurrentConnectionIDs", in_args={}, out_args={"ConnectionIDs": "CurrentConnectionIDs"}
    )
    async def connection_ids(self) -> dict[str, Any]:
        return {"ConnectionIDs": "0"}
