"""The `esphome` adapter: ESPHome nodes from the discovery inbox into households.

A node announces `_esphomelib._tcp` over mDNS (the manifest declares the type;
discovery browses it and the inbox holds the node until a person decides).
Approving it here connects with aioesphomeapi — the node's API password or
noise key come from this adapter's settings, and a refusal says which one is
missing or wrong — reads its device info and entity list, and makes one
registry device of the household whose capabilities are the node's entities
(entities.py). From then on the node's connection (node.py) feeds the registry.

What is kept (storage `node:<device id>`): the node's address, name and MAC,
and its profile as built from its entities. Secrets are read from the
settings each time, never stored.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Final

from aioesphomeapi import (
    APIConnectionError,
    BadNameAPIError,
    EncryptionPlaintextAPIError,
    InvalidAuthAPIError,
    InvalidEncryptionKeyAPIError,
    RequiresEncryptionAPIError,
)

from linli.adapters.esphome.entities import NodeModel, node_model
from linli.adapters.esphome.node import EsphomeNode, NodeEndpoint, Secrets, new_client
from linli.gateway.commands import Command, UnavailableError
from linli.gateway.discovery import FoundDevice
from linli.gateway.events import DeviceAdded, DeviceRemoved, ProfilesChanged
from linli.gateway.mqtt.topics import device_topic
from linli.gateway.plugins.api import AdapterApi
from linli.gateway.profiles import Profile
from linli.gateway.profiles.loader import build_profile
from linli.gateway.registry import Device

_STORAGE_PREFIX: Final = "node:"
_SETTINGS: Final = "adapters.settings.esphome"


class AdoptError(ValueError):
    """A node that cannot join a household; the message says why and what to do."""


def mac_digits(text: str) -> str:
    digits = re.sub(r"[^0-9a-f]", "", text.lower())
    return digits if len(digits) == 12 else ""


class EsphomeAdapter:
    """Every adopted ESPHome node of this gateway."""

    def __init__(self) -> None:
        self.api: AdapterApi | None = None
        self.nodes: dict[str, EsphomeNode] = {}

    # -- lifecycle -------------------------------------------------------------------------

    async def async_start(self, api: AdapterApi) -> None:
        self.api = api
        stored = await api.storage.async_items(_STORAGE_PREFIX)
        models = {key.removeprefix(_STORAGE_PREFIX): data for key, data in stored.items()}
        for data in models.values():
            self._install_profile(NodeModel.from_dict(data["model"]))
        # The registry loaded before adapters start, so the nodes (whose profiles are built here)
        # were kept waiting for them: now that they are installed, they come back.
        api.registry.revive()
        for device_id, data in models.items():
            model = NodeModel.from_dict(data["model"])
            device = api.registry.device(device_id)
            if device is None:
                api.log.warning(
                    "esphome: node %s (%s) is in this adapter's storage but not in the registry "
                    "(removed while the gateway was down?); approve it again from the inbox",
                    device_id,
                    data["endpoint"].get("name"),
                )
                continue
            await self._attach(device, NodeEndpoint.from_dict(data["endpoint"]), model)
        api.bus.listen(DeviceAdded, self._on_device_added)
        api.bus.listen(DeviceRemoved, self._on_device_removed)
        api.bus.listen(ProfilesChanged, self._on_profiles_changed)
        api.on_discovered(self._adopt_found)

    async def async_stop(self) -> None:
        nodes, self.nodes = list(self.nodes.values()), {}
        await asyncio.gather(*(node.async_stop() for node in nodes), return_exceptions=True)

    def status(self) -> list[dict[str, Any]]:
        return [node.status() for node in self.nodes.values()]

    # -- settings --------------------------------------------------------------------------

    def secrets_for(self, name: str, mac: str) -> Secrets:
        """The node's password / noise key: its own entry (by MAC or name), else the defaults."""
        assert self.api is not None
        config = self.api.config
        per_node: dict[str, Any] = {}
        for key, entry in (config.get("devices") or {}).items():
            if (mac and mac_digits(key) == mac) or key == name:
                per_node = entry
                break
        return Secrets(
            password=per_node.get("password", config.get("password")),
            noise_psk=per_node.get("noise_psk", config.get("noise_psk")),
        )

    # -- adoption --------------------------------------------------------------------------

    async def _adopt_found(self, found: FoundDevice) -> Device:
        """An installer approved a node found over mDNS: connect and take it over."""
        service = found.zeroconf or {}
        txt: dict[str, str] = service.get("txt") or {}
        addresses, port = service.get("addresses") or [], service.get("port")
        label = found.announced_name or found.item_id
        if not addresses or not port:
            raise AdoptError(
                f"{label}: its _esphomelib._tcp service gave no address and port; is it on this network?"
            )
        endpoint = NodeEndpoint(
            address=str(addresses[0]),
            port=int(port),
            name=str(service.get("instance") or ""),
            mac=mac_digits(txt.get("mac", "")),
        )
        return await self.async_adopt(
            found.household_id,
            endpoint,
            name=found.name,
            room=found.room,
            device_id=found.device_id,
            encrypted=bool(txt.get("api_encryption")),
        )

    async def async_adopt(
        self,
        household_id: str,
        endpoint: NodeEndpoint,
        *,
        name: str | None = None,
        room: str | None = None,
        device_id: str | None = None,
        encrypted: bool = False,
    ) -> Device:
        """Connect to the node at `endpoint` and make it a device of the household (durably)."""
        api = self.api
        assert api is not None, "adapter not started"
        registry = api.registry
        if household_id not in registry.households:
            raise AdoptError(f"no household {household_id!r}; add it first")
        where = f"ESPHome node {endpoint.name or '?'} at {endpoint.address}:{endpoint.port}"
        secrets = self.secrets_for(endpoint.name, endpoint.mac)
        node_key = endpoint.mac or endpoint.name
        if encrypted and not secrets.noise_psk:
            raise AdoptError(
                f"{where} encrypts its API (it announces api_encryption) and Linli has no key for it: "
                f"set {_SETTINGS}.devices.{node_key}.noise_psk to the node's `api: encryption: key:`"
            )
        info, entities = await self._read_node(endpoint, secrets, where, node_key)
        endpoint.mac = endpoint.mac or mac_digits(info.mac_address)
        endpoint.name = endpoint.name or info.name
        try:
            model = node_model(info, entities)
        except ValueError as exc:
            raise AdoptError(str(exc)) from None
        unique_id = f"mac:{endpoint.mac}" if endpoint.mac else f"esphome:{endpoint.name}"
        for other in registry.iter_devices():
            if other.unique_id == unique_id and other.profile.id.startswith("esphome/"):
                raise AdoptError(
                    f"{where} is already device {other.id!r} of household {other.household_id}; "
                    "remove it there first"
                )
        if device_id is None:
            device_id = self._new_device_id(household_id, endpoint.name or "esphome")
        profile = self._install_profile(model)
        await api.storage.async_set(
            _STORAGE_PREFIX + device_id, {"endpoint": endpoint.as_dict(), "model": model.as_dict()}
        )
        try:
            device = await registry.async_add_device(
                device_id,
                household_id=household_id,
                name=name or info.friendly_name or info.name,
                profile_id=profile.id,
                topic=device_topic(household_id, device_id),
                room=room or info.suggested_area or None,
                firmware=info.esphome_version or None,
                unique_id=unique_id,
            )
        except Exception:
            await api.storage.async_delete(_STORAGE_PREFIX + device_id)
            raise
        await self._attach(device, endpoint, model)
        api.log.info(
            "esphome: %s joined household %s as %s (%d capabilities, %d entities unmapped)",
            where,
            household_id,
            device_id,
            len(model.capabilities),
            len(model.unmapped),
        )
        return device

    async def _read_node(
        self, endpoint: NodeEndpoint, secrets: Secrets, where: str, node_key: str
    ) -> tuple[Any, list[Any]]:
        """Device info and entity list, or an AdoptError saying what the node needs."""
        assert self.api is not None
        timeout = float(self.api.config.get("connect_timeout_s", 10))
        client = new_client(endpoint, secrets)
        try:
            async with asyncio.timeout(timeout):
                await client.connect(login=True)
                info, entities, _services = await client.device_info_and_list_entities()
        except InvalidAuthAPIError:
            hint = "is not the node's" if secrets.password else "is not set, and the node has one"
            raise AdoptError(
                f"{where} refused the API password: {_SETTINGS}.devices.{node_key}.password (or "
                f"{_SETTINGS}.password) {hint}; set it to the node's `api: password:`"
            ) from None
        except (RequiresEncryptionAPIError, EncryptionPlaintextAPIError):
            raise AdoptError(
                f"{where} encrypts its API: set {_SETTINGS}.devices.{node_key}.noise_psk to the "
                "node's `api: encryption: key:`"
            ) from None
        except InvalidEncryptionKeyAPIError:
            raise AdoptError(
                f"{where} refused the encryption key: {_SETTINGS}.devices.{node_key}.noise_psk is not "
                "the node's `api: encryption: key:`"
            ) from None
        except BadNameAPIError as exc:
            raise AdoptError(
                f"{where} is a different node than announced ({exc}); it may have a new address: "
                "wait for its next announcement"
            ) from None
        except (APIConnectionError, OSError, TimeoutError) as exc:
            raise AdoptError(
                f"{where} cannot be reached over the ESPHome API ({str(exc) or type(exc).__name__}); "
                "check that it is on and that `api:` is in its YAML"
            ) from None
        finally:
            await client.disconnect(force=True)
        return info, entities

    def _new_device_id(self, household_id: str, node_name: str) -> str:
        assert self.api is not None
        slug = re.sub(r"[^a-z0-9]+", "-", node_name.lower()).strip("-")[:32] or "esphome"
        device_id, suffix = f"{household_id}-{slug}", 2
        while device_id in self.api.registry.devices:
            device_id = f"{household_id}-{slug}-{suffix}"
            suffix += 1
        return device_id

    def _install_profile(self, model: NodeModel) -> Profile:
        """Make the node's profile known to the gateway's profile set (the registry looks it up)."""
        assert self.api is not None
        profile = build_profile(model.profile, f"adapter storage esphome/{model.profile['id']}")
        self.api.install_profile(profile)
        return profile

    def _on_profiles_changed(self, event: ProfilesChanged) -> None:
        """A reload of the profile folders replaced the set: the nodes' own profiles go back in."""
        for node in self.nodes.values():
            if node.model.profile["id"] in event.removed:
                self._install_profile(node.model)

    # -- the live side ---------------------------------------------------------------------

    async def _attach(self, device: Device, endpoint: NodeEndpoint, model: NodeModel) -> None:
        assert self.api is not None
        node = EsphomeNode(
            self.api,
            device.id,
            endpoint,
            model,
            self.secrets_for(endpoint.name, endpoint.mac),
            confirm_timeout_s=float(self.api.config.get("confirm_timeout_s", 3)),
        )
        self.nodes[device.id] = node
        self._register(device.id)
        # mqtt_device routes commands for every new device; ours must win (as the STB fleets do).
        asyncio.get_running_loop().call_soon(self._register, device.id)
        await node.async_start()

    def _register(self, device_id: str) -> None:
        if self.api is not None and device_id in self.nodes:
            self.api.commands.register(device_id, self.async_command)

    def _on_device_added(self, event: DeviceAdded) -> None:
        if event.device_id in self.nodes:
            asyncio.get_running_loop().call_soon(self._register, event.device_id)

    def _on_device_removed(self, event: DeviceRemoved) -> None:
        node = self.nodes.pop(event.device_id, None)
        if node is not None and self.api is not None:
            self.api.commands.unregister(event.device_id)
            self.api.spawn(self._forget(node), f"forget-{node.device_id}")

    async def _forget(self, node: EsphomeNode) -> None:
        assert self.api is not None
        await node.async_stop()
        await self.api.storage.async_delete(_STORAGE_PREFIX + node.device_id)

    async def async_command(self, command: Command) -> dict[str, Any]:
        node = self.nodes.get(command.device_id)
        if node is None:
            raise UnavailableError(f"{command.device_id}: this ESPHome node was removed")
        return await node.async_command(command.capability, command.value)
