"""The UPnP services of a household's virtual MediaRenderer (async-upnp-client's server side).

A phone's "cast" button speaks AVTransport and RenderingControl; each action
becomes a command to the household's real TV box through `Screens` and
`gateway.commands`, so it works the same whichever operator's box is there.

(No `from __future__ import annotations` here: the library checks action
parameter annotations against the state variables' Python types.)
"""

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any, ClassVar

from async_upnp_client.const import ServiceInfo
from async_upnp_client.exceptions import UpnpActionError
from async_upnp_client.server import UpnpServerService, callable_action, create_event_var, create_state_var
from defusedxml import ElementTree as DET

from gateway.commands import CommandError

if TYPE_CHECKING:
    from gateway.stb.cast import HouseholdRenderer

_DIDL_TITLE = "{http://purl.org/dc/elements/1.1/}title"


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
    if not metadata or len(metadata) > 16384:
        return None
    try:
        root = DET.fromstring(metadata)
    except Exception:
        return None
    element = root.find(f".//{_DIDL_TITLE}")
    return (element.text or "").strip()[:100] or None if element is not None else None


class _RendererService(UpnpServerService):
    renderer: "HouseholdRenderer"

    async def command(self, kind: str, value: dict[str, Any]) -> Any:
        try:
            return await self.renderer.async_command(kind, value)
        except CommandError as exc:
            raise UpnpActionError(error_code=701, error_desc=f"{exc.code}: {exc.message}"[:200]) from None


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
        "LastChange": create_event_var("string", default=""),
    }

    def _media(self) -> dict[str, Any]:
        return self.renderer.state("media") or {"state": "stopped", "url": None}

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
        self.renderer.pending = (CurrentURI, didl_title(CurrentURIMetaData))
        return {}

    @callable_action(
        name="Play",
        in_args={"InstanceID": "A_ARG_TYPE_InstanceID", "Speed": "TransportPlaySpeed"},
        out_args={},
    )
    async def play(self, InstanceID: int, Speed: str) -> dict[str, Any]:
        pending = self.renderer.pending
        media = self._media()
        if pending is not None and pending[0] != media.get("url"):
            url, title = pending
            command: dict[str, Any] = {"action": "play", "url": url}
            if title:
                command["title"] = title
            await self.command("media", command)
        elif media.get("state") == "paused":
            await self.command("media", {"action": "resume"})
        elif pending is None:
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
        state = {"playing": "PLAYING", "paused": "PAUSED_PLAYBACK"}.get(
            self._media().get("state", ""), "STOPPED"
        )
        if state == "STOPPED" and self.renderer.pending is None:
            state = "NO_MEDIA_PRESENT"
        return {"CurrentTransportState": state, "CurrentTransportStatus": "OK", "CurrentSpeed": "1"}

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
        url = self._media().get("url") or (self.renderer.pending[0] if self.renderer.pending else "")
        return {
            "NrTracks": 1 if url else 0,
            "MediaDuration": "00:00:00",
            "CurrentURI": url or "",
            "CurrentURIMetaData": "",
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
            "TrackMetaData": "AVTransportURIMetaData",
            "TrackURI": "AVTransportURI",
            "RelTime": "RelativeTimePosition",
            "AbsTime": "AbsoluteTimePosition",
            "RelCount": "RelativeCounterPosition",
            "AbsCount": "AbsoluteCounterPosition",
        },
    )
    async def position_info(self, InstanceID: int) -> dict[str, Any]:
        url = self._media().get("url") or ""
        return {
            "Track": 1 if url else 0,
            "TrackDuration": "00:00:00",
            "TrackMetaData": "",
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

    def _volume(self) -> dict[str, Any]:
        return self.renderer.state("volume") or {"level": 0, "muted": False}

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
