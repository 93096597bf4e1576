"""The component model: the one way services, adapters, discovery sources and the portal plug in.

A component is a class with a `name`, the names it `requires`, and two coroutines:

    class Health:
        name = "health"
        requires = ("registry",)
        migrations = MIGRATIONS           # optional: its own tables (gateway/store/migrations.py)
        config_schema = SCHEMA            # optional: JSON Schema of its config section `[health]`

        async def async_start(self, api: ComponentApi) -> None: ...
        async def async_stop(self) -> None: ...

`async_start` gets a `ComponentApi`: the bus, the registry, command routing, the
notifier, the store, MQTT, its own settings, `spawn` for background jobs and
`on_stop` for anything else to undo. Everything registered through it — bus
listeners and subscriptions, command handlers, notification channels, jobs,
`on_stop` callbacks — is released by the gateway when the component stops or
fails to start, so a component never writes its own `_unlisten` loop (Home
Assistant's `async_on_unload`, Zigbee2MQTT's extensions).

A component that cannot start *yet* (a server not up, a device not answering)
raises `NotReady("why")`: it is `retrying` with that reason and started again
with backoff (Home Assistant's config-entry states), and what requires it waits.
Any other exception is a fault: the gateway's start fails, naming the component.

Peers are found by a typed key (aiohttp's `AppKey`): the package that defines a
component defines its key (`ALERTS = ComponentKey("alerts", AlertEngine)`), and
`api.peer(ALERTS)` is an `AlertEngine` or None — never an untyped lookup by string.

Adapters get the same API, narrowed by their manifest's permissions
(gateway/plugins/api.py); the registry they see is an allow-list (`RegistryView`).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

from linli.gateway.bus import EventBus, Overflow, Subscription
from linli.gateway.commands import CommandHandler, Commands
from linli.gateway.events import Event
from linli.gateway.notify import Channel, Notifier

if TYPE_CHECKING:
    from linli.gateway.mqtt.broker import Broker
    from linli.gateway.mqtt.credentials import MqttCredentials
    from linli.gateway.mqtt.link import MqttLink
    from linli.gateway.privacy import Privacy
    from linli.gateway.profiles import ProfileSet
    from linli.gateway.registry import Device, Household, Registry, Resident
    from linli.gateway.runtime import Gateway
    from linli.gateway.store import Store

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
E = TypeVar("E", bound=Event)


class NotReady(Exception):
    """Raised by `async_start`: what the component needs is not there yet; it is retried with backoff."""


class ComponentKey(Generic[T]):
    """A typed name for a component, defined beside it: `api.peer(KEY)` is a `T` (aiohttp's AppKey)."""

    __slots__ = ("kind", "name")

    def __init__(self, name: str, kind: type[T]) -> None:
        self.name = name
        self.kind = kind

    def __repr__(self) -> str:
        return f"ComponentKey({self.name!r}, {self.kind.__name__})"


class Provision(Generic[T]):
    """A name for something one component offers others without either knowing the other.

    Defined where its users are (in the core, when the core uses it); a component above
    provides it (`api.provide(KEY, value)`) and the users read it (`api.provided(KEY)`),
    so the dependency points down: the uplink counts open alerts without knowing the alert
    engine's tables, and the alert engine says how they are counted.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Provision({self.name!r})"


@runtime_checkable
class Component(Protocol):
    """What the gateway starts and stops (see the module docstring)."""

    name: str
    requires: tuple[str, ...]

    async def async_start(self, api: ComponentApi) -> None: ...
    async def async_stop(self) -> None: ...


def component_class(spec: str) -> type[Any]:
    """The class `package.module:Class` names (configured by the composition root or the config file).

    The core imports components only this way, by the string it was given: it names none itself.
    """
    module_name, _, attr = spec.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"component {spec!r} cannot be loaded: {exc}") from exc
    if not isinstance(found, type):
        raise ImportError(f"component {spec!r} is not a class")
    return found


class ComponentState(StrEnum):
    """Where a component is; always shown with a reason a person can act on."""

    WAITING = "waiting"  # configured; not started yet, or waiting for one it requires
    RUNNING = "running"
    RETRYING = "retrying"  # raised NotReady: started again at `retry_at`
    FAILED = "failed"  # raised anything else
    STOPPED = "stopped"


@dataclass(slots=True)
class ComponentStatus:
    name: str
    state: ComponentState = ComponentState.WAITING
    reason: str | None = None
    since: float = 0.0
    attempts: int = 0
    retry_at: float | None = None  # time.time() of the next attempt while retrying

    def set(self, state: ComponentState, reason: str | None) -> None:
        self.state, self.reason, self.since = state, reason, time.time()

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.value,
            "reason": self.reason,
            "since": self.since,
            "attempts": self.attempts,
            "retry_at": self.retry_at,
        }


# -- what a component registers, remembered so that stopping releases it ------------


class TrackedBus:
    """The event bus, remembering every listener and subscription made through it."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._unlisten: list[Callable[[], None]] = []
        self._subscriptions: list[Subscription[Any]] = []

    def fire(self, event: Event) -> None:
        self._bus.fire(event)

    def has_listeners(self, event_type: type[Event], household: str | None = None) -> bool:
        return self._bus.has_listeners(event_type, household)

    def listen(
        self, event_type: type[E], callback: Callable[[E], Any], *, household: str | None = None
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

    def __getattr__(self, name: str) -> Any:
        # The bus's read-only figures (stats, queue sizes) pass through; registrations do not.
        if name.startswith("_") or name in {"close"}:
            raise AttributeError(name)
        return getattr(self._bus, name)

    def release(self) -> None:
        for remove in self._unlisten:
            remove()
        for sub in self._subscriptions:
            sub.close()
        self._unlisten.clear()
        self._subscriptions.clear()


class TrackedCommands:
    """Command routing, remembering the device handlers registered through it."""

    def __init__(self, commands: Commands) -> None:
        self._commands = commands
        self._registered: dict[str, CommandHandler] = {}

    def register(self, device_id: str, handler: CommandHandler) -> None:
        self._commands.register(device_id, handler)
        self._registered[device_id] = handler

    def unregister(self, device_id: str) -> None:
        if self._registered.pop(device_id, None) is not None:
            self._commands.unregister(device_id)

    async def async_send(self, device_id: str, capability: str, value: Any, **kwargs: Any) -> Any:
        return await self._commands.async_send(device_id, capability, value, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._commands, name)

    def release(self) -> None:
        for device_id in list(self._registered):
            self.unregister(device_id)


class TrackedNotifier:
    """Alert delivery, remembering the channels registered through it."""

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier
        self._names: set[str] = set()

    def register(self, channel: Channel) -> None:
        self._notifier.register(channel)
        self._names.add(channel.name)

    def unregister(self, name: str) -> None:
        self._names.discard(name)
        self._notifier.unregister(name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._notifier, name)

    def release(self) -> None:
        for name in list(self._names):
            self.unregister(name)


#: What a plugin may read of the registry. An allow-list: a method added to the
#: registry is unreachable from a plugin until it is named here.
REGISTRY_READS: frozenset[str] = frozenset(
    {
        "community_id",
        "community_name",
        "buildings",
        "units",
        "households",
        "devices",
        "residents",
        "device",
        "device_by_topic",
        "household_devices",
        "household_residents",
        "iter_devices",
        "resident_of",
        "structure_of",
    }
)
#: What a plugin with `registry.write` may change: its own devices and what they report.
REGISTRY_WRITES: frozenset[str] = frozenset(
    {
        "async_add_device",
        "async_remove_device",
        "async_assign_device",
        "report",
        "set_available",
        "async_persist_availability",
        "revive",  # bring back its devices whose profile loaded late
    }
)


class RegistryView:
    """The registry as a plugin may use it: the reads in REGISTRY_READS, the writes in REGISTRY_WRITES.

    Households, buildings, units and residents are people's data and the community's
    structure: no plugin creates, renames or removes them.
    """

    def __init__(self, registry: Registry, owner: str, writable: bool, refuse: Callable[[str], Exception]):
        self._registry = registry
        self._owner = owner
        self._writable = writable
        self._refuse = refuse

    def __getattr__(self, name: str) -> Any:
        if name in REGISTRY_READS:
            return getattr(self._registry, name)
        if name in REGISTRY_WRITES:
            if not self._writable:
                raise self._refuse(f"registry.{name}")
            return getattr(self._registry, name)
        raise AttributeError(
            f"{self._owner!r} may not use registry.{name}: plugins see the registry's reads and "
            f"their own devices' writes only (gateway/component.py REGISTRY_READS / REGISTRY_WRITES)"
        )

    # Typed shortcuts for the commonest reads (the rest go through __getattr__).
    def device(self, device_id: str) -> Device | None:
        return self._registry.device(device_id)

    def household_devices(self, household_id: str) -> list[Device]:
        return self._registry.household_devices(household_id)

    def iter_devices(self) -> Iterator[Device]:
        return self._registry.iter_devices()

    @property
    def households(self) -> Mapping[str, Household]:
        return self._registry.households

    def household_residents(self, household_id: str) -> list[Resident]:
        return self._registry.household_residents(household_id)


class ComponentApi:
    """What one component may use of the gateway; what it registers is released when it stops."""

    def __init__(self, gateway: Gateway, name: str, settings: Mapping[str, Any] | None = None) -> None:
        self._gateway = gateway
        self.name = name
        self.log = logging.getLogger(f"linli.component.{name}")
        self.settings: Mapping[str, Any] = settings if settings is not None else gateway.config.get(name, {})
        self._bus = TrackedBus(gateway.bus)
        self._commands = TrackedCommands(gateway.commands)
        self._notifier = TrackedNotifier(gateway.notifier)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_stop: list[Callable[[], Any]] = []

    # -- what the gateway is ---------------------------------------------------------

    @property
    def gateway_id(self) -> str:
        return self._gateway.id

    @property
    def community_id(self) -> str:
        return self._gateway.registry.community_id

    @property
    def data_dir(self) -> Path:
        return self._gateway.data_dir

    @property
    def config(self) -> Mapping[str, Any]:
        """The whole validated configuration (read it; a component's own section is `settings`)."""
        return self._gateway.config

    @property
    def portal_url(self) -> str:
        """Where devices on the residents' network reach the portal (no trailing slash)."""
        portal = self._gateway.config.get("portal") or {}  # the portal component's section, when it runs
        if portal.get("public_url"):
            return str(portal["public_url"]).rstrip("/")
        host = portal.get("host", "127.0.0.1")
        host = host if host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{portal.get('port', 8080)}"

    # -- the parts -----------------------------------------------------------------

    @property
    def bus(self) -> TrackedBus:
        return self._bus

    @property
    def commands(self) -> TrackedCommands:
        return self._commands

    @property
    def notifier(self) -> TrackedNotifier:
        return self._notifier

    @property
    def registry(self) -> Registry:
        return self._gateway.registry

    @property
    def store(self) -> Store:
        return self._gateway.store

    @property
    def mqtt(self) -> MqttLink:
        return self._gateway.mqtt

    @property
    def privacy(self) -> Privacy:
        return self._gateway.privacy

    @property
    def profiles(self) -> ProfileSet:
        return self._gateway.profiles

    @property
    def mqtt_credentials(self) -> MqttCredentials:
        return self._gateway.mqtt_credentials

    @property
    def broker(self) -> Broker | None:
        return self._gateway.broker

    # -- the gateway's own state, for status pages ----------------------------------

    @property
    def ready(self) -> asyncio.Event:
        return self._gateway.ready

    @property
    def startup_s(self) -> float | None:
        return self._gateway.startup_s

    @property
    def started_at(self) -> float | None:
        return self._gateway.started_at

    def statuses(self) -> list[ComponentStatus]:
        """Every component's state and reason, in start order."""
        return self._gateway.statuses()

    # -- peers ---------------------------------------------------------------------

    def peer(self, key: ComponentKey[T]) -> T | None:
        """The running component `key` names, or None when it is not configured or not running."""
        return self._gateway.peer(key)

    def require(self, key: ComponentKey[T]) -> T:
        """The peer `key` names; NotReady (retried) while it is not running."""
        found = self._gateway.peer(key)
        if found is None:
            raise NotReady(f"{self.name} needs the {key.name!r} component, which is not running")
        return found

    # -- what components offer each other -----------------------------------------------

    def provide(self, key: Provision[T], value: T) -> None:
        """Offer `value` under `key` while this component runs (taken back when it stops)."""
        provided = self._gateway.provided
        provided[key.name] = value

        def withdraw() -> None:
            if provided.get(key.name) is value:
                del provided[key.name]

        self._on_stop.append(withdraw)

    def provided(self, key: Provision[T]) -> T | None:
        """What a running component offers under `key`, or None."""
        found: T | None = self._gateway.provided.get(key.name)
        return found

    # -- background work and clean-up ------------------------------------------------

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        """A background job of this component: logged if it fails, cancelled when the component stops."""

        async def run() -> Any:
            try:
                return await coro
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._crashed(name, exc)
                return None

        task = asyncio.create_task(run(), name=f"linli-{self.name}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _crashed(self, job: str, exc: BaseException) -> None:
        self.log.error("background job %s of %s failed", job, self.name, exc_info=exc)

    def on_stop(self, callback: Callable[[], Any]) -> None:
        """Call `callback` (plain or coroutine function) when the component stops; the last one first."""
        self._on_stop.append(callback)

    async def async_release(self) -> None:
        """Cancel the component's jobs and take back everything it registered (the gateway calls this)."""
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        while self._on_stop:
            callback = self._on_stop.pop()
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                _LOGGER.exception("%s: an on_stop callback failed", self.name)
        self._bus.release()
        self._commands.release()
        self._notifier.release()
