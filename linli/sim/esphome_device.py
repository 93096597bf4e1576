"""A simulated ESPHome node: the native API (plaintext) on 127.0.0.1, announced over mDNS.

It speaks what a real node speaks to Home Assistant, framed as ESPHome frames
its plaintext protocol — a 0x00 preamble, the body length and the message type
as varints, then the protobuf body — with aioesphomeapi's own generated
messages (`aioesphomeapi.api_pb2`) and type ids (`aioesphomeapi.core`):
hello, the legacy API password (a wrong one is answered `invalid_password`
and the connection closed, as nodes with `api: password:` do), device info,
the entity list, state subscriptions, switch and light commands (the new
state is published back, as a relay does once it has switched), ping and
disconnect.

Its mDNS service is `_esphomelib._tcp.local.` with the TXT record ESPHome's
mdns component writes: `friendly_name`, `version`, `mac` (12 lower-case hex
digits), `platform`, `board`, `network`, and `api_encryption` when the node has
a noise key. Only loopback is used; `async_stop()` drops every connection
(the node "goes away") and `async_start()` brings it back on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import zlib
from dataclasses import dataclass, field
from typing import Any, Final

from aioesphomeapi import api_pb2
from aioesphomeapi.core import MESSAGE_TYPE_TO_PROTO
from google.protobuf.message import DecodeError, Message
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

_LOGGER = logging.getLogger(__name__)

SERVICE_TYPE: Final = "_esphomelib._tcp.local."
LOOPBACK: Final = "127.0.0.1"
ESPHOME_VERSION: Final = "2025.10.3"
NOISE: Final = "Noise_NNpsk0_25519_ChaChaPoly_SHA256"
MAX_FRAME: Final = 64 * 1024
_TYPE_OF: Final[dict[type[Message], int]] = {cls: type_id for type_id, cls in MESSAGE_TYPE_TO_PROTO.items()}


@dataclass(slots=True, kw_only=True)
class SimEntity:
    """One entity of the node, as its YAML would declare it."""

    platform: str  # binary_sensor | sensor | switch | light | text_sensor
    object_id: str
    name: str
    device_class: str = ""
    unit: str = ""
    state: Any = None
    entity_category: int = 0  # 0 none, 1 config, 2 diagnostic

    @property
    def key(self) -> int:
        # ESPHome keys entities by a 32-bit hash of their object id (fnv1 on the node; any
        # stable hash does for a client, which only echoes the key back).
        return zlib.crc32(f"{self.platform}.{self.object_id}".encode())


def default_entities() -> list[SimEntity]:
    """A hall node: a door reed switch, a smoke detector, a DHT22 and a relay, as in ESPHome's docs."""
    return [
        SimEntity(
            platform="binary_sensor",
            object_id="front_door",
            name="Front door",
            device_class="door",
            state=False,
        ),
        SimEntity(
            platform="binary_sensor",
            object_id="hall_smoke",
            name="Hall smoke",
            device_class="smoke",
            state=False,
        ),
        SimEntity(
            platform="sensor",
            object_id="hall_temperature",
            name="Hall temperature",
            device_class="temperature",
            unit="°C",
            state=21.5,
        ),
        SimEntity(platform="switch", object_id="hall_relay", name="Hall relay", state=False),
        SimEntity(
            platform="sensor",
            object_id="wifi_signal",
            name="WiFi signal",
            device_class="signal_strength",
            unit="dBm",
            state=-61.0,
            entity_category=2,
        ),
        SimEntity(platform="text_sensor", object_id="ip_address", name="IP address", entity_category=2),
    ]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


async def _read_varint(reader: asyncio.StreamReader) -> int:
    value = shift = 0
    while True:
        byte = (await reader.readexactly(1))[0]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7
        if shift > 28:
            raise ValueError("varint longer than 32 bits")


def frame(message: Message) -> bytes:
    """One plaintext frame: 0x00, varint length, varint type, protobuf body."""
    body = message.SerializeToString()
    return b"\x00" + _varint(len(body)) + _varint(_TYPE_OF[type(message)]) + body


@dataclass(slots=True, eq=False)  # one per connection, kept in a set by identity
class _Client:
    writer: asyncio.StreamWriter
    subscribed: bool = False
    authenticated: bool = False


@dataclass(slots=True, kw_only=True)
class SimEsphomeDevice:
    """One node; `entities` by object id, `commands` records what reached it."""

    name: str = "hall-node"
    friendly_name: str = "Hall node"
    mac: str = "a4:cf:12:b3:c4:d5"
    password: str | None = None
    encryption: bool = False  # announce a noise key (the node cannot then be reached in plaintext)
    board: str = "esp32dev"
    platform: str = "ESP32"
    entity_list: list[SimEntity] = field(default_factory=default_entities)
    port: int = 0
    commands: list[tuple[str, Any]] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _clients: set[_Client] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _zeroconf: AsyncZeroconf | None = None
    _service: AsyncServiceInfo | None = None

    @property
    def entities(self) -> dict[str, SimEntity]:
        return {e.object_id: e for e in self.entity_list}

    @property
    def mac_digits(self) -> str:
        return self.mac.replace(":", "").lower()

    # -- life --------------------------------------------------------------------------

    async def async_start(self) -> None:
        """Listen (again, on the same port once one was taken)."""
        self._server = await asyncio.start_server(self._serve, LOOPBACK, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def async_stop(self) -> None:
        """The node goes away: the listener closes and every connection drops."""
        if self._server is not None:
            self._server.close()
        for client in list(self._clients):
            client.writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def async_announce(self) -> None:
        """Register `_esphomelib._tcp` on loopback, with the TXT record ESPHome's mdns component writes."""
        txt = {
            "friendly_name": self.friendly_name,
            "version": ESPHOME_VERSION,
            "mac": self.mac_digits,
            "platform": self.platform,
            "board": self.board,
            "network": "wifi",
        }
        if self.encryption:
            txt["api_encryption"] = NOISE
        self._service = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{self.name}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(LOOPBACK)],
            port=self.port,
            properties=txt,
            server=f"{self.name}.local.",
        )
        self._zeroconf = AsyncZeroconf(interfaces=[LOOPBACK], ip_version=IPVersion.V4Only)
        await self._zeroconf.async_register_service(self._service)

    async def async_unannounce(self) -> None:
        if self._zeroconf is not None:
            with contextlib.suppress(Exception):
                await self._zeroconf.async_close()
            self._zeroconf = None

    # -- what the node's sensors see -------------------------------------------------------

    def set_state(self, object_id: str, value: Any) -> None:
        """A sensor changes (a door opens, smoke is seen): pushed to every subscriber."""
        entity = self.entities[object_id]
        entity.state = value
        message = self._state_message(entity)
        for client in list(self._clients):
            if client.subscribed and message is not None:
                client.writer.write(frame(message))

    # -- the protocol ----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        client = _Client(writer)
        self._clients.add(client)
        try:
            while True:
                if (await reader.readexactly(1)) != b"\x00":
                    return  # a noise client (0x01) or junk: a plaintext node hangs up
                length = await _read_varint(reader)
                type_id = await _read_varint(reader)
                if length > MAX_FRAME:
                    return
                body = await reader.readexactly(length)
                cls = MESSAGE_TYPE_TO_PROTO.get(type_id)
                if cls is None:
                    continue  # messages a node does not know are ignored, as ESPHome does
                message = cls()
                message.ParseFromString(body)
                if not await self._handle(client, message):
                    return
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, DecodeError, ValueError):
            return
        except asyncio.CancelledError:
            return
        finally:
            self._clients.discard(client)
            writer.close()
            self._tasks.discard(task)

    async def _handle(self, client: _Client, message: Message) -> bool:
        """Answer one request; False to hang up."""
        write = client.writer.write
        if isinstance(message, api_pb2.HelloRequest):
            write(
                frame(
                    api_pb2.HelloResponse(
                        api_version_major=1,
                        api_version_minor=10,
                        server_info=f"{self.name} (esphome v{ESPHOME_VERSION})",
                        name=self.name,
                    )
                )
            )
            client.authenticated = self.password is None
        elif isinstance(message, api_pb2.AuthenticationRequest):
            if self.password is not None and message.password != self.password:
                write(frame(api_pb2.AuthenticationResponse(invalid_password=True)))
                await client.writer.drain()
                return False
            client.authenticated = True
        elif isinstance(message, api_pb2.PingRequest):
            write(frame(api_pb2.PingResponse()))
        elif isinstance(message, api_pb2.DisconnectRequest):
            write(frame(api_pb2.DisconnectResponse()))
            await client.writer.drain()
            return False
        elif not client.authenticated:
            return False  # everything else needs the password first
        elif isinstance(message, api_pb2.DeviceInfoRequest):
            write(frame(self._device_info()))
        elif isinstance(message, api_pb2.ListEntitiesRequest):
            for entity in self.entity_list:
                write(frame(self._entity_message(entity)))
            write(frame(api_pb2.ListEntitiesDoneResponse()))
        elif isinstance(message, api_pb2.SubscribeStatesRequest):
            client.subscribed = True
            for entity in self.entity_list:
                state = self._state_message(entity)
                if state is not None:
                    write(frame(state))
        elif isinstance(message, api_pb2.SwitchCommandRequest | api_pb2.LightCommandRequest):
            self._command(message)
        return True

    def _device_info(self) -> api_pb2.DeviceInfoResponse:
        return api_pb2.DeviceInfoResponse(
            uses_password=self.password is not None,
            name=self.name,
            friendly_name=self.friendly_name,
            mac_address=self.mac.upper(),
            esphome_version=ESPHOME_VERSION,
            compilation_time="Oct 20 2025, 10:00:00",
            model=self.board,
            manufacturer="Espressif",
            api_encryption_supported=True,
        )

    def _entity_message(self, entity: SimEntity) -> Message:
        common: dict[str, Any] = {
            "object_id": entity.object_id,
            "key": entity.key,
            "name": entity.name,
            "entity_category": entity.entity_category,
        }
        if entity.platform == "binary_sensor":
            return api_pb2.ListEntitiesBinarySensorResponse(device_class=entity.device_class, **common)
        if entity.platform == "sensor":
            return api_pb2.ListEntitiesSensorResponse(
                device_class=entity.device_class,
                unit_of_measurement=entity.unit,
                accuracy_decimals=1,
                state_class=1,  # measurement
                **common,
            )
        if entity.platform == "switch":
            return api_pb2.ListEntitiesSwitchResponse(device_class=entity.device_class, **common)
        if entity.platform == "light":
            return api_pb2.ListEntitiesLightResponse(supported_color_modes=[1], **common)  # on/off
        if entity.platform == "text_sensor":
            return api_pb2.ListEntitiesTextSensorResponse(device_class=entity.device_class, **common)
        raise ValueError(f"sim entity {entity.object_id}: no platform {entity.platform!r}")

    def _state_message(self, entity: SimEntity) -> Message | None:
        key, state = entity.key, entity.state
        if entity.platform == "binary_sensor":
            return api_pb2.BinarySensorStateResponse(key=key, state=bool(state), missing_state=state is None)
        if entity.platform == "sensor":
            missing = state is None
            return api_pb2.SensorStateResponse(
                key=key, state=math.nan if missing else float(state), missing_state=missing
            )
        if entity.platform == "switch":
            return api_pb2.SwitchStateResponse(key=key, state=bool(state))
        if entity.platform == "light":
            return api_pb2.LightStateResponse(key=key, state=bool(state), color_mode=1)
        if entity.platform == "text_sensor" and state is not None:
            return api_pb2.TextSensorStateResponse(key=key, state=str(state))
        return None

    def _command(self, message: api_pb2.SwitchCommandRequest | api_pb2.LightCommandRequest) -> None:
        entity = next((e for e in self.entity_list if e.key == message.key), None)
        if entity is None:
            _LOGGER.debug("sim esphome %s: command for unknown key %s", self.name, message.key)
            return
        if isinstance(message, api_pb2.LightCommandRequest) and not message.has_state:
            return
        self.commands.append((entity.object_id, bool(message.state)))
        self.set_state(entity.object_id, bool(message.state))  # the relay clicks, the node reports it
