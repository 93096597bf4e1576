"""One adopted ESPHome node, live: its connection, its states into the registry, commands to it.

The connection is aioesphomeapi's `APIClient` kept up by its `ReconnectLogic`
(the way Home Assistant keeps its ESPHome entries connected): connected means
available, a lost connection means unavailable until the next successful
reconnect. States the node pushes are mapped through the node's own profile
(entities.py) and reported to the registry like any device's, so
`StateChanged` reaches the services (a smoke binary_sensor turning on raises
the smoke alert).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aioesphomeapi import APIClient, APIConnectionError, EntityState, ReconnectLogic

from linli.adapters.esphome.entities import NodeModel
from linli.gateway.commands import CommandError, NotSupportedError, UnavailableError
from linli.gateway.profiles import MappingError

if TYPE_CHECKING:
    from linli.gateway.plugins.api import AdapterApi

CLIENT_INFO: Final = "Linli"
ORIGIN: Final = "esphome"


class InvalidCommandError(CommandError):
    code = "invalid_command"


@dataclass(slots=True, kw_only=True)
class NodeEndpoint:
    """Where a node is and who it is (kept in the adapter's storage; secrets never are)."""

    address: str
    port: int
    name: str  # the node's own name (`esphome: name:`), also its mDNS instance
    mac: str  # 12 lower-case hex digits

    def as_dict(self) -> dict[str, Any]:
        return {"address": self.address, "port": self.port, "name": self.name, "mac": self.mac}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeEndpoint:
        return cls(address=data["address"], port=int(data["port"]), name=data["name"], mac=data["mac"])


@dataclass(slots=True, frozen=True, kw_only=True)
class Secrets:
    """The node's legacy API password or its noise key, from the adapter's settings."""

    password: str | None = None
    noise_psk: str | None = None


def new_client(endpoint: NodeEndpoint, secrets: Secrets) -> APIClient:
    return APIClient(
        endpoint.address,
        endpoint.port,
        secrets.password,
        client_info=CLIENT_INFO,
        noise_psk=secrets.noise_psk,
        expected_name=endpoint.name or None,
    )


class EsphomeNode:
    """The live side of one registry device adopted from ESPHome."""

    def __init__(
        self,
        api: AdapterApi,
        device_id: str,
        endpoint: NodeEndpoint,
        model: NodeModel,
        secrets: Secrets,
        *,
        confirm_timeout_s: float,
    ) -> None:
        self.api = api
        self.device_id = device_id
        self.endpoint = endpoint
        self.model = model
        self.confirm_timeout_s = confirm_timeout_s
        self.client = new_client(endpoint, secrets)
        self.connected = False
        self.last_error: str | None = None
        self._keys_by_capability = {cap: key for key, cap in model.capabilities.items()}
        self._waiters: dict[str, list[tuple[bool, asyncio.Future[bool]]]] = {}
        self._logic = ReconnectLogic(
            client=self.client,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            on_connect_error=self._on_connect_error,
            # discovery (adapters/discovery/zeroconf.py) already browses mDNS; the client must
            # not open a Zeroconf of its own on every interface
            zeroconf_wake=False,
        )

    async def async_start(self) -> None:
        await self._logic.start()

    async def async_stop(self) -> None:
        await self._logic.stop()
        with contextlib.suppress(APIConnectionError, OSError):
            await self.client.disconnect()
        for waiters in self._waiters.values():
            for _, future in waiters:
                future.cancel()
        self._waiters.clear()

    def status(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "address": f"{self.endpoint.address}:{self.endpoint.port}",
            "name": self.endpoint.name,
            "mac": self.endpoint.mac,
            "connected": self.connected,
            "last_error": self.last_error,
            "unmapped": self.model.unmapped,
        }

    # -- the connection --------------------------------------------------------------------

    def _device(self) -> Any:
        return self.api.registry.device(self.device_id)

    async def _on_connect(self) -> None:
        self.connected = True
        self.last_error = None
        self.client.subscribe_states(self._on_state)
        device = self._device()
        if device is not None:
            self.api.registry.set_available(device, True, time.time(), "ESPHome API connected")

    async def _on_disconnect(self, expected: bool) -> None:
        self.connected = False
        device = self._device()
        if device is not None:
            reason = "ESPHome API disconnected" if expected else "ESPHome node unreachable (connection lost)"
            self.api.registry.set_available(device, False, time.time(), reason)

    async def _on_connect_error(self, error: Exception) -> None:
        self.last_error = str(error) or type(error).__name__

    # -- states in -------------------------------------------------------------------------

    def _on_state(self, state: EntityState) -> None:
        capability = self.model.capabilities.get(state.key)
        if capability is None or getattr(state, "missing_state", False):
            return  # an unmapped entity, or one with no reading yet
        raw = getattr(state, "state", None)
        if isinstance(raw, float) and not math.isfinite(raw):
            return  # ESPHome sends NaN for "no reading"
        if self.model.platforms.get(capability) in ("switch", "light", "binary_sensor"):
            raw = bool(raw)
        device = self._device()
        if device is None:
            return
        try:
            values = device.profile.map_payload({capability: raw})
        except MappingError as exc:
            self.api.log.warning("esphome %s: state of %s refused: %s", self.device_id, capability, exc)
            return
        self.api.registry.report(device, values, time.time(), ORIGIN)
        for wanted, future in self._waiters.get(capability, ()):
            if values[capability] == wanted and not future.done():
                future.set_result(True)

    # -- commands out ----------------------------------------------------------------------

    async def async_command(self, capability: str, value: Any) -> dict[str, Any]:
        """Switch a relay or a light; returns once the node reports the new state."""
        platform = self.model.platforms.get(capability)
        if platform not in ("switch", "light"):
            writable = [k for k, p in self.model.platforms.items() if p in ("switch", "light")]
            raise NotSupportedError(
                f"{self.device_id}: {capability!r} cannot be commanded "
                f"(writable here: {', '.join(writable) or 'none'})"
            )
        if isinstance(value, dict) and "on" in value:
            value = value["on"]
        if not isinstance(value, bool):
            raise InvalidCommandError(
                f"{self.device_id}: {capability} takes true (on) or false (off), got {value!r}"
            )
        if not self.connected:
            raise UnavailableError(
                f"{self.device_id}: the ESPHome node at {self.endpoint.address}:{self.endpoint.port} "
                f"is not connected ({self.last_error or 'reconnecting'})"
            )
        key = self._keys_by_capability[capability]
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(capability, []).append((value, future))
        try:
            if platform == "switch":
                self.client.switch_command(key, value)
            else:
                self.client.light_command(key, state=value)
            async with asyncio.timeout(self.confirm_timeout_s):
                await future
        except TimeoutError:
            raise CommandError(
                f"{self.device_id}: the node did not report {capability} as "
                f"{'on' if value else 'off'} within {self.confirm_timeout_s:g} s"
            ) from None
        except APIConnectionError as exc:
            raise UnavailableError(f"{self.device_id}: the connection to the node broke: {exc}") from None
        finally:
            waiters = self._waiters.get(capability, [])
            if (value, future) in waiters:
                waiters.remove((value, future))
        return {"device_id": self.device_id, "capability": capability, "state": value}
