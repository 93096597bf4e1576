"""The component model: what a component registers goes with it, not-ready is retried, peers are typed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import linli.gateway.runtime as runtime
from linli.gateway.component import (
    ComponentApi,
    ComponentKey,
    ComponentState,
    NotReady,
    Provision,
    RegistryView,
)
from linli.gateway.events import DeviceEvent, StateChanged
from linli.gateway.notify import Delivery
from linli.gateway.plugins.api import AdapterApi
from linli.gateway.plugins.manifest import Manifest
from linli.gateway.runtime import Gateway
from tests.conftest import gateway_config


class Listener:
    """Registers one of everything through its API, and undoes nothing itself."""

    name = "listener"
    requires: tuple[str, ...] = ("registry",)

    def __init__(self) -> None:
        self.heard = 0
        self.stopped_jobs = 0
        self.on_stop_called = False

    async def async_start(self, api: ComponentApi) -> None:
        api.bus.listen(StateChanged, self._heard)
        api.bus.subscribe(DeviceEvent)
        api.commands.register("dev-1", self._command)
        api.notifier.register(self._Channel())
        api.spawn(self._forever(), "forever")
        api.on_stop(self._mark)

    async def async_stop(self) -> None:
        return None

    def _heard(self, _event: StateChanged) -> None:
        self.heard += 1

    async def _command(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    async def _forever(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.stopped_jobs += 1
            raise

    def _mark(self) -> None:
        self.on_stop_called = True

    class _Channel:
        name = "listener-channel"

        async def async_deliver(self, *_args: Any, **_kwargs: Any) -> Delivery:
            raise NotImplementedError


LISTENER: ComponentKey[Listener] = ComponentKey("listener", Listener)


async def test_what_a_component_registers_is_released_when_it_stops(tmp_path: Path, broker) -> None:
    # given a component that listened, subscribed, routed a device's commands, added a channel and a job
    gateway = Gateway(gateway_config(tmp_path / "data", broker.port))
    component = Listener()
    gateway.extra_components = [component]
    await gateway.async_start()
    assert gateway.bus.has_listeners(StateChanged)
    assert any(c.name == "listener-channel" for c in gateway.notifier.channels)
    # when the gateway stops it
    await gateway.async_stop()
    # then nothing of it is left behind, though it wrote no clean-up of its own
    assert not gateway.bus.has_listeners(StateChanged)
    assert not any(c.name == "listener-channel" for c in gateway.notifier.channels)
    assert "dev-1" not in gateway.commands._handlers
    assert component.stopped_jobs == 1 and component.on_stop_called


async def test_peers_are_found_by_typed_key_and_only_while_running(tmp_path: Path, broker) -> None:
    gateway = Gateway(gateway_config(tmp_path / "data", broker.port))
    component = Listener()
    gateway.extra_components = [component]
    assert gateway.peer(LISTENER) is None  # not started
    await gateway.async_start()
    try:
        assert gateway.peer(LISTENER) is component
        # a key naming the component with the wrong type is a programming error, said at once
        with pytest.raises(TypeError, match="not Gateway"):
            gateway.peer(ComponentKey("listener", Gateway))
        assert gateway.peer(ComponentKey("nowhere", Listener)) is None
    finally:
        await gateway.async_stop()
    assert gateway.peer(LISTENER) is None


class Flaky:
    """Not ready the first `failures` times it is started."""

    requires: tuple[str, ...] = ()

    def __init__(self, name: str, failures: int, requires: tuple[str, ...] = ()) -> None:
        self.name = name
        self.failures = failures
        self.requires = requires
        self.starts = 0
        self.running = False

    async def async_start(self, api: ComponentApi) -> None:
        self.starts += 1
        api.bus.listen(StateChanged, lambda _e: None)
        if self.starts <= self.failures:
            raise NotReady("the siren controller does not answer yet")
        self.running = True

    async def async_stop(self) -> None:
        self.running = False


async def test_a_component_not_ready_is_retried_with_backoff_and_what_needs_it_waits(
    tmp_path: Path, broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "RETRY_BASE_S", 0.05)
    # given a component that is not ready twice, and one that requires it
    gateway = Gateway(gateway_config(tmp_path / "data", broker.port))
    flaky, needy = Flaky("siren", failures=2), Flaky("needy", failures=0, requires=("siren",))
    gateway.extra_components = [flaky, needy]
    # when the gateway starts
    await gateway.async_start()
    try:
        # then the gateway is up; the flaky one says why it is not, and what needs it waits
        states = {s.name: s for s in gateway.statuses()}
        assert states["siren"].state is ComponentState.RETRYING
        assert states["siren"].reason == "the siren controller does not answer yet"
        assert states["siren"].retry_at is not None and states["siren"].retry_at > time.time() - 1
        assert states["needy"].state is ComponentState.WAITING
        assert states["needy"].reason == "waits for siren"
        assert not needy.running
        # and, retried with backoff, both end up running
        deadline = time.monotonic() + 10
        while not needy.running:
            assert time.monotonic() < deadline, [s.as_dict() for s in gateway.statuses()]
            await asyncio.sleep(0.05)
        assert flaky.starts == 3 and flaky.running
        assert {s.name: s.state for s in gateway.statuses()}["needy"] is ComponentState.RUNNING
    finally:
        await gateway.async_stop()
    assert not flaky.running and not needy.running


def _adapter_api(gateway: Gateway, permissions: list[str]) -> AdapterApi:
    manifest = Manifest(
        id="acme_tv",
        name="Acme TV",
        version="1.0.0",
        kind="stb",
        entry="acme_tv:Adapter",
        provides=(),
        permissions=frozenset(permissions),
    )
    return AdapterApi(ComponentApi(gateway, "adapters"), manifest, {}, lambda *_: None)


async def test_a_plugins_registry_is_an_allow_list(tmp_path: Path, broker) -> None:
    gateway = Gateway(gateway_config(tmp_path / "data", broker.port))
    await gateway.async_start()
    try:
        await gateway.registry.async_add_building("b1", "1号楼")
        await gateway.registry.async_add_unit("u1", "b1", "101")
        await gateway.registry.async_add_household("h1", "u1", "王家")
        read_only = _adapter_api(gateway, ["registry.read"]).registry
        writer = _adapter_api(gateway, ["registry.read", "registry.write"]).registry
        assert isinstance(read_only, RegistryView)
        # reads pass
        assert "h1" in read_only.households and read_only.household_devices("h1") == []
        # a read-only adapter may not change even its own devices
        with pytest.raises(PermissionError, match=r"registry\.write"):
            _ = read_only.async_remove_device
        # and no adapter may touch households, the community's structure or people, whatever it holds
        for name in (
            "async_remove_household",
            "async_add_household",
            "async_rename",
            "async_add_resident",
            "async_remove_building",
            "_units",
            "_store",
        ):
            for view in (read_only, writer):
                with pytest.raises(AttributeError, match="may not use"):
                    getattr(view, name)
        assert "h1" in gateway.registry.households
        # nor reach the database, the privacy decisions or the credentials around its API
        api = _adapter_api(gateway, ["registry.read", "registry.write", "storage"])
        for door in ("store", "privacy", "mqtt_credentials", "broker"):
            with pytest.raises(PermissionError, match="not part of the adapter API"):
                getattr(api, door)
    finally:
        await gateway.async_stop()


COUNT: Provision[Callable[[], int]] = Provision("test.count")


class Provider:
    name = "provider"
    requires: tuple[str, ...] = ()

    async def async_start(self, api: ComponentApi) -> None:
        api.provide(COUNT, lambda: 7)

    async def async_stop(self) -> None:
        return None


async def test_what_a_component_provides_is_read_by_name_and_withdrawn_when_it_stops(
    tmp_path: Path, broker
) -> None:
    # given a component offering a reader under a name defined below both (as the uplink's reports are)
    gateway = Gateway(gateway_config(tmp_path / "data", broker.port))
    gateway.extra_components = [Provider()]
    await gateway.async_start()
    reader = ComponentApi(gateway, "reader")
    count = reader.provided(COUNT)
    assert count is not None and count() == 7
    # when it stops, the offer goes with it
    await gateway.async_stop()
    assert reader.provided(COUNT) is None
