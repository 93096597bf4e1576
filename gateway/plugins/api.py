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

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from linli.gateway.bus import EventBus, Overflow, Subscription
from linli.gateway.commands import CommandHandler
from linli.gateway.events import Event
from linli.gateway.notify import Channel
from linli.gateway.plugins.manifest import Manifest
from linli.gateway.plugins.storage import AdapterStorage

if TYPE_CHECKING:
    from linli.gateway.discovery.adopters import FoundAdopter
    from linli.gateway.mqtt.link import MqttLink
    from linli.gateway.registry import Registry
    from linli.gateway.runtime import Gateway

E = TypeVar("E", bound=Event)

_REGISTRY_WRITES = frozenset(
    {
        "async_add_building",
        "async_add_unit",
        "async_add_household",
        "async_add_device",
        "async_import",
        "async_add_resident",
        "async_assign_device",
        "async_remove_device",
        "report",
        "set_available",
        "async_persist_availability",
    }
)


def _refuse(adapter_id: str, permission: str, what: str) -> PermissionError:
    return PermissionError(
        f"adapter {adapter_id!r} used {what} without the {permission!r} permission; "
        f"add it to 'permissions' in its manifest.json"
    )


class RegistryView:
    """The registry as an adapter may use it: reads always, writes with `registry.write`."""

    def __init__(self, registry: Registry, adapter_id: str, writable: bool) -> None:
        self._registry = registry
        self._adapter_id = adapter_id
        self._writable = writable

    def __getattr__(self, name: str) -> Any:
        if name in _REGISTRY_WRITES and not self._writable:
            raise _refuse(self._adapter_id, "registry.write", f"registry.{name}")
        return getattr(self._registry, name)


class TrackedBus:
    """The bus, remembering what the adapter listens to."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._unlisten: list[Callable[[], None]] = []
        self._subscriptions: list[Subscription[Any]] = []

    def fire(self, event: Event) -> None:
        self._bus.fire(event)

    def has_listeners(self, event_type: type[Event], household: str | None = None) -> bool:
        return self._bus.has_listeners(event_type, household)

    def listen(
        self, event_type: type[E], callback: Callable[[E], None], *, household: str | None = None
    ) -> Callable[[], None]:
        remove = self._bus.listen(event_type, callback, household=household)
        self._unlisten.append(remove)
        return remove

    def subscribe(
        self,
        event_type: type[E],
        *,
        household: str | None = None,
        maxsize: int | None = None,
        overflow: Overflow = Overflow.DROP_OLDEST,
    ) -> Subscription[E]:
        sub = self._bus.subscribe(event_type, household=household, maxsize=maxsize, overflow=overflow)
        self._subscriptions.append(sub)
        return sub

    def release(self) -> None:
        for remove in self._unlisten:
            remove()
        for sub in self._subscriptions:
            sub.close()
        self._unlisten.clear()
        self._subscriptions.clear()


class TrackedCommands:
    """Command routing for the adapter's own devices."""

    def __init__(self, gateway: Gateway) -> None:
        self._commands = gateway.commands
        self._registered: dict[str, CommandHandler] = {}

    def register(self, device_id: str, handler: CommandHandler) -> None:
        self._commands.register(device_id, handler)
        self._registered[device_id] = handler

    def unregister(self, device_id: str) -> None:
        if self._registered.pop(device_id, None) is not None:
            self._commands.unregister(device_id)

    async def async_send(self, device_id: str, capability: str, value: Any, **kwargs: Any) -> Any:
        return await self._commands.async_send(device_id, capability, value, **kwargs)

    def release(self) -> None:
        for device_id in list(self._registered):
            self.unregister(device_id)


class TrackedNotifier:
    def __init__(self, gateway: Gateway) -> None:
        self._notifier = gateway.notifier
        self._names: set[str] = set()

    def register(self, channel: Channel) -> None:
        self._notifier.register(channel)
        self._names.add(channel.name)

    def unregister(self, name: str) -> None:
        self._names.discard(name)
        self._notifier.unregister(name)

    def release(self) -> None:
        for name in list(self._names):
            self.unregister(name)


class AdapterApi:
    """What one adapter may use of the gateway (see the module docstring)."""

    def __init__(
        self,
        gateway: Gateway,
        manifest: Manifest,
        settings: dict[str, Any],
        on_crash: Callable[[str, BaseException], None],
    ) -> None:
        self._gateway = gateway
        self.manifest = manifest
        self.id = manifest.id
        self.config = settings
        self.log = logging.getLogger(f"adapters.{manifest.id}")
        self._on_crash = on_crash
        self._permissions = manifest.permissions
        self._bus = TrackedBus(gateway.bus)
        self._commands = TrackedCommands(gateway)
        self._notifier = TrackedNotifier(gateway)
        self._registry = RegistryView(
            gateway.registry, manifest.id, writable="registry.write" in manifest.permissions
        )
        self._storage = AdapterStorage(gateway.store, manifest.id)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unregister: list[Callable[[], None]] = []

    def _need(self, permission: str, what: str) -> None:
        if permission not in self._permissions:
            raise _refuse(self.id, permission, what)

    # -- what the gateway is ---------------------------------------------------

    @property
    def gateway_id(self) -> str:
        return self._gateway.id

    @property
    def community_id(self) -> str:
        return self._gateway.registry.community_id

    @property
    def portal_url(self) -> str:
        """Where devices on the residents' network reach the portal (no trailing slash)."""
        portal = self._gateway.config["portal"]
        if portal.get("public_url"):
            return str(portal["public_url"]).rstrip("/")
        host = portal["host"] if portal["host"] not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{portal['port']}"

    # -- the permitted parts ---------------------------------------------------

    @property
    def bus(self) -> TrackedBus:
        self._need("bus", "the event bus")
        return self._bus

    @property
    def registry(self) -> RegistryView:
        if not self._permissions & {"registry.read", "registry.write"}:
            raise _refuse(self.id, "registry.read", "the registry")
        return self._registry

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
        discovery = self._gateway.components.get("discovery")
        register = getattr(discovery, "register_adopter", None)
        if register is None:
            return False
        self._unregister.append(register(self.id, self.manifest.discovery, adopt))
        return True

    # -- background work -------------------------------------------------------

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        """Run a background job for the adapter. If it fails, the adapter is disabled (crash isolation)."""

        async def run() -> Any:
            try:
                return await coro
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._on_crash(self.id, exc)
                return None

        task = asyncio.create_task(run(), name=f"linli-adapter-{self.id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def async_release(self) -> None:
        """Cancel the adapter's jobs and take back everything it registered."""
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for unregister in self._unregister:
            unregister()
        self._unregister.clear()
        self._bus.release()
        self._commands.release()
        self._notifier.release()
