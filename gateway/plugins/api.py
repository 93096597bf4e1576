"""The adapter API: the only door from an adapter into the gateway.

An adapter gets one `AdapterApi` in `async_start(api)`. Through it, and only as
far as its manifest's `permissions` allow, it reaches the bus, the registry,
command routing, alert delivery channels, MQTT, its own settings and its own
storage namespace — never another adapter. An adapter that takes over the
devices its manifest's `discovery` block declares says so with `on_discovered`:
inbox items it claims then come to it when a person approves them. Everything it
registers is tracked,
so that when the adapter stops or is disabled (it crashed), its command
handlers, listeners and channels go with it and nothing of it is left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from linli.gateway.component import (
    ComponentApi,
    RegistryView,
    TrackedBus,
    TrackedCommands,
    TrackedNotifier,
)
from linli.gateway.plugins.manifest import Manifest
from linli.gateway.plugins.storage import AdapterStorage

if TYPE_CHECKING:
    from linli.gateway.discovery.adopters import FoundAdopter
    from linli.gateway.mqtt.link import MqttLink
    from linli.gateway.profiles import Profile


def _refuse(adapter_id: str, permission: str, what: str) -> PermissionError:
    return PermissionError(
        f"adapter {adapter_id!r} used {what} without the {permission!r} permission; "
        f"add it to 'permissions' in its manifest.json"
    )


class AdapterApi(ComponentApi):
    """What one adapter may use of the gateway: the component API, narrowed by its manifest."""

    def __init__(
        self,
        host: ComponentApi,
        manifest: Manifest,
        settings: dict[str, Any],
        on_crash: Callable[[str, BaseException], None],
    ) -> None:
        super().__init__(host._gateway, manifest.id, settings)
        self.manifest = manifest
        self.id = manifest.id
        self.log = logging.getLogger(f"linli.adapters.{manifest.id}")
        self._on_crash = on_crash
        self._permissions = manifest.permissions
        self._registry_view = RegistryView(
            host.registry,
            manifest.id,
            writable="registry.write" in manifest.permissions,
            refuse=lambda what: _refuse(manifest.id, "registry.write", what),
        )
        self._storage = AdapterStorage(host.store, manifest.id)
        self._unregister: list[Callable[[], None]] = []

    def _need(self, permission: str, what: str) -> None:
        if permission not in self._permissions:
            raise _refuse(self.id, permission, what)

    def _never(self, what: str) -> NoReturn:
        raise PermissionError(f"adapter {self.id!r} cannot reach {what}: it is not part of the adapter API")

    @property
    def config(self) -> Mapping[str, Any]:
        """The adapter's own settings (adapters.settings.<id>), checked against its manifest."""
        return self.settings

    # -- the permitted parts ---------------------------------------------------

    @property
    def bus(self) -> TrackedBus:
        self._need("bus", "the event bus")
        return self._bus

    @property
    def registry(self) -> RegistryView:  # type: ignore[override]  # narrowed on purpose: the allow-list
        if not self._permissions & {"registry.read", "registry.write"}:
            raise _refuse(self.id, "registry.read", "the registry")
        return self._registry_view

    @property
    def commands(self) -> TrackedCommands:
        self._need("commands", "command routing")
        return self._commands

    @property
    def notifier(self) -> TrackedNotifier:
        self._need("notify", "alert delivery channels")
        return self._notifier

    @property
    def storage(self) -> AdapterStorage:
        self._need("storage", "its storage namespace")
        return self._storage

    @property
    def mqtt(self) -> MqttLink:
        self._need("mqtt", "the MQTT link")
        return self._gateway.mqtt

    def install_profile(self, profile: Profile) -> None:
        """A device profile the adapter built for what it adopts (an ESPHome node's own entities)."""
        self._need("registry.write", "installing a device profile")
        self._gateway.profiles.profiles[profile.id] = profile

    # -- what the component API has and an adapter does not ----------------------

    @property
    def store(self) -> NoReturn:
        self._never("the gateway's database (use api.storage, its own namespace)")

    @property
    def privacy(self) -> NoReturn:
        self._never("the privacy decisions")

    @property
    def profiles(self) -> NoReturn:
        self._never("the profile set")

    @property
    def mqtt_credentials(self) -> NoReturn:
        self._never("the devices' MQTT credentials")

    @property
    def broker(self) -> NoReturn:
        self._never("the broker")

    # -- discovered devices ----------------------------------------------------

    def on_discovered(self, adopt: FoundAdopter) -> bool:
        """Take over the inbox items the manifest's `discovery` block claims, when approved.

        `adopt(found)` gets a `gateway.discovery.FoundDevice` (where the device was
        found, the household, name and room the person chose) and returns the registry
        device it made; an exception refuses the approval with its message. False when
        the gateway runs no discovery (devices are then adopted by address only).
        """
        self._need("registry.write", "adopting discovered devices")
        if not self.manifest.discovery:
            raise ValueError(f"adapter {self.id} declares nothing it discovers (manifest 'discovery')")
        from linli.gateway.discovery import DISCOVERY  # (the discovery package imports this one)

        discovery = self._gateway.peer(DISCOVERY)
        if discovery is None:
            return False
        self._unregister.append(discovery.register_adopter(self.id, self.manifest.discovery, adopt))
        return True

    # -- background work -------------------------------------------------------

    def _crashed(self, job: str, exc: BaseException) -> None:
        """A background job that raised disables the adapter (crash isolation)."""
        self._on_crash(self.id, exc)

    async def async_release(self) -> None:
        """Cancel the adapter's jobs and take back everything it registered."""
        for unregister in self._unregister:
            unregister()
        self._unregister.clear()
        await super().async_release()
