"""The `Gateway`: one object that owns the lifecycle of everything in the process.

Components declare what they require; the gateway starts them in dependency
order and stops them in reverse. A component that fails to start fails the
whole start with a message naming it, after stopping what had started.

The core components (store, broker, mqtt, registry, supervision) are built in.
Adapters, services and the portal are named in `config["components"]` as
`module:Class` and imported here by name, so that the core never imports a
higher layer.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from linli.common.backoff import backoff_delay
from linli.common.config import ConfigError
from linli.gateway import __version__
from linli.gateway.bus import EventBus
from linli.gateway.commands import Commands
from linli.gateway.component import (
    Component,
    ComponentApi,
    ComponentKey,
    ComponentState,
    ComponentStatus,
    NotReady,
    component_class,
)
from linli.gateway.config import apply_sections
from linli.gateway.context import Context
from linli.gateway.discovery.ha_profile import load_announced_profiles
from linli.gateway.events import GatewayStarted
from linli.gateway.mqtt.broker import GATEWAY_USER, Broker, EmbeddedBroker, MosquittoBroker
from linli.gateway.mqtt.credentials import MqttCredentials
from linli.gateway.mqtt.link import MqttLink, MqttSettings
from linli.gateway.notify import Notifier
from linli.gateway.privacy import Privacy
from linli.gateway.profiles import ProfileSet
from linli.gateway.profiles.watch import ProfileWatcher
from linli.gateway.registry import Registry
from linli.gateway.store import Store
from linli.gateway.supervision import Supervision

_LOGGER = logging.getLogger(__name__)
C = TypeVar("C")
RETRY_BASE_S = 5.0  # a component not ready yet is tried again after this, doubling (tests shorten it)
RETRY_CAP_S = 300.0


class GatewayStartError(RuntimeError):
    """The gateway could not start; the message names the component and the cause."""


class _FunctionComponent:
    """A component made of two coroutines (for the built-in parts)."""

    def __init__(
        self,
        name: str,
        requires: tuple[str, ...],
        start: Callable[[], Awaitable[None]],
        stop: Callable[[], Awaitable[None]],
    ) -> None:
        self.name = name
        self.requires = requires
        self._start = start
        self._stop = stop

    async def async_start(self, api: ComponentApi) -> None:
        await self._start()

    async def async_stop(self) -> None:
        await self._stop()


def load_component(spec: str) -> Component:
    """Instantiate `package.module:Class` (a component class taking no arguments)."""
    try:
        component = component_class(spec)()
    except ImportError as exc:
        raise GatewayStartError(str(exc)) from exc
    if not isinstance(component, Component):
        raise GatewayStartError(f"component {spec!r} lacks name/requires/async_start/async_stop")
    return component


def _start_order(components: list[Component]) -> list[Component]:
    by_name = {c.name: c for c in components}
    ordered: list[Component] = []
    state: dict[str, str] = {}

    def visit(component: Component, chain: tuple[str, ...]) -> None:
        mark = state.get(component.name)
        if mark == "done":
            return
        if mark == "visiting":
            raise GatewayStartError(f"components depend on each other in a cycle: {' → '.join(chain)}")
        state[component.name] = "visiting"
        for need in component.requires:
            if need not in by_name:
                raise GatewayStartError(
                    f"component {component.name!r} requires {need!r}, which is not configured"
                )
            visit(by_name[need], (*chain, need))
        state[component.name] = "done"
        ordered.append(component)

    for component in components:
        visit(component, (component.name,))
    return ordered


class Gateway:
    """A community gateway: configuration in, running components out."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.id: str = config["gateway_id"]
        self.data_dir = Path(config["data_dir"]).expanduser().resolve()
        self.bus = EventBus(default_maxsize=config["bus"]["queue_size"])
        self.commands = Commands()
        self.notifier = Notifier()
        self.privacy = Privacy()
        self.profiles: ProfileSet = ProfileSet()
        store_cfg = config["store"]
        self.store = Store(
            self.data_dir / "linli.db",
            batch_ms=store_cfg["batch_ms"],
            batch_rows=store_cfg["batch_rows"],
            max_pending_rows=store_cfg["max_pending_rows"],
        )
        self.registry = Registry(self.store, self.bus, self.profiles, config["community"]["id"])
        mqtt = config["mqtt"]
        host, port = mqtt["host"], mqtt["port"]
        if mqtt["broker"] == "external" and "url" in mqtt:
            from yarl import URL

            url = URL(mqtt["url"])
            host, port = url.host or host, url.port or 1883
        prefix = config["discovery"]["mqtt"]["prefix"]
        self.mqtt_credentials = MqttCredentials(self.store, self.registry, self.bus, discovery_prefix=prefix)
        self.broker: Broker | None = None
        if mqtt["broker"] == "embedded":
            self.broker = EmbeddedBroker(
                host,
                port,
                self.data_dir,
                max_payload_bytes=mqtt["max_payload_bytes"],
                mqtt5_port=mqtt["mqtt5_port"],
            )
        elif mqtt["broker"] == "mosquitto":
            self.broker = MosquittoBroker(
                host,
                port,
                self.data_dir,
                mqtt["mosquitto_binary"],
                credentials=self.mqtt_credentials,
                discovery_prefix=prefix,
                max_payload_bytes=mqtt["max_payload_bytes"],
                tls=mqtt["tls"],
                community=config["community"]["name"],
            )
        self.mqtt = MqttLink(
            MqttSettings(
                host=host,
                port=port,
                client_id=mqtt.get("client_id") or f"linli-{self.id}"[:23],
                gateway_id=self.id,
                username=mqtt.get("username"),
                password=mqtt.get("password"),
                keepalive_s=mqtt["keepalive_s"],
                reconnect_min_s=mqtt["reconnect_min_s"],
                reconnect_max_s=mqtt["reconnect_max_s"],
                connect_timeout_s=mqtt["connect_timeout_s"],
            ),
            self.bus,
        )
        self.supervision = Supervision(self)
        self.components: dict[str, Component] = {}  # configured, by name (introspection and tests)
        self._status: dict[str, ComponentStatus] = {}
        self._apis: dict[str, ComponentApi] = {}
        self._started: list[Component] = []
        self._waiting: list[Component] = []  # in start order: not started, as one they require is retrying
        self._retries: dict[str, asyncio.Task[None]] = {}
        self.provided: dict[str, Any] = {}  # Provision name → what a running component offers
        self.ready = asyncio.Event()
        self.startup_s: float | None = None
        self.started_at: float | None = None
        self.extra_components: list[Component] = []
        self._background: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        """Run a background job owned by the gateway: logged if it fails, cancelled on stop."""

        async def run() -> Any:
            try:
                return await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                _LOGGER.exception("background job %s failed", name)
                return None

        task = asyncio.create_task(run(), name=f"linli-{name}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def peer(self, key: ComponentKey[C]) -> C | None:
        """The running component `key` names, typed (aiohttp's AppKey); None when not running."""
        status = self._status.get(key.name)
        if status is None or status.state is not ComponentState.RUNNING:
            return None
        component = self.components[key.name]
        if not isinstance(component, key.kind):
            raise TypeError(f"component {key.name!r} is {type(component).__name__}, not {key.kind.__name__}")
        return component

    def statuses(self) -> list[ComponentStatus]:
        """Every configured component's state with its reason."""
        return list(self._status.values())

    def _core_components(self) -> list[Component]:
        # Profiles follow their folders: one added or changed is used without a restart.
        watcher = ProfileWatcher(self.profiles, self.bus, [Path(p) for p in self.config["profiles"]["paths"]])

        async def start_profiles() -> None:
            await watcher.async_start()

        async def start_registry() -> None:
            # Devices adopted from their own announcement (gateway/discovery/ha_profile.py).
            announced, errors = await asyncio.to_thread(load_announced_profiles, self.data_dir, self.profiles)
            self.profiles.profiles.update((p.id, p) for p in announced)
            self.profiles.errors.extend(errors)
            await self.registry.async_load(self.config["community"]["name"])

        async def nothing() -> None:
            return None

        broker = self.broker

        async def start_broker() -> None:
            await self.mqtt_credentials.async_load()
            self.mqtt_credentials.start_following_registry(self.spawn)
            if broker is None:
                return
            await broker.async_start()
            settings = self.mqtt.settings
            if isinstance(broker, MosquittoBroker):
                self.mqtt_credentials.endpoint = (broker.host, broker.port)
                if settings.username is None:
                    settings.username, settings.password = GATEWAY_USER, broker.gateway_password

        async def stop_broker() -> None:
            self.mqtt_credentials.stop()
            if broker is not None:
                await broker.async_stop()

        core: list[Component] = [
            _FunctionComponent("profiles", (), start_profiles, watcher.async_stop),
            _FunctionComponent("store", (), self._start_store, self.store.async_stop),
            _FunctionComponent("registry", ("store", "profiles"), start_registry, nothing),
            _FunctionComponent("broker", ("store",), start_broker, stop_broker),
            _FunctionComponent("mqtt", ("broker",), self.mqtt.async_start, self.mqtt.async_stop),
            _FunctionComponent(
                "supervision",
                ("registry",),
                self.supervision.async_start,
                self.supervision.async_stop,
            ),
        ]
        return core

    async def _start_store(self) -> None:
        await self.store.async_start()

    async def async_start(self) -> None:
        """Start every component in dependency order; GatewayStartError if one fails.

        A component raising NotReady is retried with backoff instead (its state says
        why), and the components that require it wait for it.
        """
        started = time.perf_counter()
        try:  # each component's own section, also when the list was changed after loading
            apply_sections(self.config, {})
        except ConfigError as exc:
            raise GatewayStartError(f"configuration: {exc}") from exc
        components = self._core_components()
        for spec in self.config["components"]:
            components.append(load_component(spec))
        components += self.extra_components
        names = [c.name for c in components]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise GatewayStartError(f"two components share the name(s) {sorted(duplicates)}")
        self.components = {c.name: c for c in components}
        self._status = {c.name: ComponentStatus(c.name) for c in components}
        for component in _start_order(components):
            try:
                await self._start_one(component)
            except Exception as exc:
                _LOGGER.error("component %s failed to start: %s", component.name, exc)
                await self.async_stop()
                raise GatewayStartError(f"component {component.name!r} failed to start: {exc}") from exc
        try:
            await self.mqtt.async_connect()
        except Exception as exc:
            await self.async_stop()
            raise GatewayStartError(f"component 'mqtt' failed to start: {exc}") from exc
        self.startup_s = time.perf_counter() - started
        self.started_at = time.time()
        self.ready.set()
        self.bus.fire(GatewayStarted(startup_s=self.startup_s, context=Context(origin="gateway")))
        _LOGGER.info(
            "Linli %s gateway %s ready in %.2fs: %d households, %d devices, %d profiles",
            __version__,
            self.id,
            self.startup_s,
            len(self.registry.households),
            len(self.registry.devices),
            len(self.profiles),
        )

    async def _start_one(self, component: Component) -> bool:
        """Start one component; False when it (or one it requires) is not ready yet. Faults raise."""
        status = self._status[component.name]
        blocked = [
            need for need in component.requires if self._status[need].state is not ComponentState.RUNNING
        ]
        if blocked:
            status.set(ComponentState.WAITING, f"waits for {', '.join(blocked)}")
            self._waiting.append(component)
            return False
        await self._migrate(component)
        api = self._apis[component.name] = self._api_for(component)
        status.attempts += 1
        try:
            await component.async_start(api)
        except NotReady as exc:
            await self._unwind(component, api)
            status.set(ComponentState.RETRYING, str(exc) or "not ready yet")
            self._schedule_retry(component)
            return False
        except BaseException as exc:
            await self._unwind(component, api)
            status.set(ComponentState.FAILED, f"{type(exc).__name__}: {exc}")
            raise
        status.set(ComponentState.RUNNING, None)
        status.retry_at = None
        self._started.append(component)
        return True

    def _api_for(self, component: Component) -> ComponentApi:
        make = getattr(component, "make_api", None)  # a host of plugins narrows its own
        return make(self) if callable(make) else ComponentApi(self, component.name)

    async def _migrate(self, component: Component) -> None:
        """Bring the component's own tables up to date before it starts (gateway/store/migrations.py)."""
        migrations = getattr(component, "migrations", None)
        if migrations:
            await self.store.async_migrate(component.name, migrations)

    async def _unwind(self, component: Component, api: ComponentApi) -> None:
        """What a start that did not finish registered is taken back (its own stop is not called:
        it never started; a component tidies its own half-made state before raising)."""
        await api.async_release()

    def _schedule_retry(self, component: Component) -> None:
        status = self._status[component.name]
        delay = backoff_delay(status.attempts - 1, base=RETRY_BASE_S, cap=RETRY_CAP_S)
        status.retry_at = time.time() + delay
        _LOGGER.warning(
            "component %s is not ready (%s); trying again in %.0f s", component.name, status.reason, delay
        )

        async def retry() -> None:
            await asyncio.sleep(delay)
            self._retries.pop(component.name, None)
            try:
                if await self._start_one(component):
                    _LOGGER.info("component %s started after %d attempts", component.name, status.attempts)
                    await self._start_waiting()
            except Exception as exc:
                _LOGGER.error("component %s failed to start: %s", component.name, exc)

        self._retries[component.name] = asyncio.create_task(retry(), name=f"linli-retry-{component.name}")

    async def _start_waiting(self) -> None:
        """Start the components that waited for one now running (in their start order)."""
        waiting, self._waiting = self._waiting, []
        for component in waiting:
            try:
                await self._start_one(component)
            except Exception as exc:
                _LOGGER.error("component %s failed to start: %s", component.name, exc)

    @staticmethod
    def settle_heap() -> None:
        """Move what start-up built (registry, profiles, routes) out of the garbage collector's way.

        A full collection walks every live object: with 15,000 devices loaded that is
        a 45–250 ms pause of the event loop, at whatever moment it falls — an SOS or a
        fan-out to 3,000 screens included. What exists once the gateway is ready lives
        as long as the process, so it is frozen (`gc.freeze`) and later collections
        walk only what came after. Called by `linli run`/`demo` once, after start.
        """
        gc.collect()
        gc.freeze()

    async def async_stop(self) -> None:
        """Stop in reverse start order; each stop runs even if an earlier one failed."""
        self.ready.clear()
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        # Disconnect first, so that no message is acknowledged to the broker after
        # the component that would have handled it is gone.
        await self.mqtt.async_stop()
        for task in self._retries.values():
            task.cancel()
        if self._retries:
            await asyncio.gather(*self._retries.values(), return_exceptions=True)
        self._retries.clear()
        self._waiting.clear()
        while self._started:
            component = self._started.pop()
            try:
                await component.async_stop()
            except Exception:
                _LOGGER.exception("component %s failed to stop cleanly", component.name)
            await self._apis[component.name].async_release()
            self._status[component.name].set(ComponentState.STOPPED, "gateway stopped")
        self.bus.close()
