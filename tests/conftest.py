"""Fixtures: a real broker per test, and a real gateway on it with its own SQLite file."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from linli.gateway.config import load_config
from linli.gateway.runtime import Gateway
from tests.brokers import MOSQUITTO, EmbeddedBrokerProcess, MosquittoProcess, free_port
from tests.infrastructure import require_mosquitto

# Markers by what each test starts (broker, postgres, browser): see tests/tiers.py.
pytest_plugins = ["tests.tiers"]

Broker = MosquittoProcess | EmbeddedBrokerProcess


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    """Mosquitto on a free port when installed, else the embedded broker (rumqttd)."""
    if MOSQUITTO:
        proc = MosquittoProcess(tmp_path)
        proc.start()
        yield proc
        proc.kill()  # nothing to keep: SIGTERM costs Mosquitto ~0.1 s once a client has been connected
    else:
        embedded = EmbeddedBrokerProcess(tmp_path / "broker")
        await embedded.async_start()
        yield embedded
        await embedded.async_stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> MosquittoProcess:
    """A Mosquitto the test controls (reliability tests need kill and restart)."""
    require_mosquitto()
    proc = MosquittoProcess(tmp_path)
    proc.start()
    yield proc  # type: ignore[misc]
    proc.kill()


def gateway_config(data_dir: Path, port: int, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "data_dir": str(data_dir),
        "gateway_id": "gw-test",
        "mqtt": {
            "broker": "external",
            "host": "127.0.0.1",
            "port": port,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1.0,
            "connect_timeout_s": 5,
        },
        "portal": {"enabled": False, "port": free_port()},
        "store": {"batch_ms": 20},
        "components": ["linli.adapters.mqtt_device:MqttDeviceAdapter"],
        "adapters": {"builtin_package": "linli.adapters"},  # as the composition root names it
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return load_config(None, environ={}, overrides=base)


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def make_gateway(tmp_path: Path, broker: Broker) -> AsyncIterator[GatewayFactory]:
    """Start gateways on the test broker; stops them and fails on leftover tasks."""
    started: list[Gateway] = []

    async def factory(data_dir: Path | None = None, **overrides: Any) -> Gateway:
        config = gateway_config(data_dir or tmp_path / "data", broker.port, **overrides)
        gateway = Gateway(config)
        await gateway.async_start()
        started.append(gateway)
        return gateway

    yield factory
    for gateway in started:
        await gateway.async_stop()
    await asyncio.sleep(0)
    leftover = [
        t
        for t in asyncio.all_tasks()
        if t is not asyncio.current_task() and not t.done() and t.get_name().startswith(("linli", "sim-"))
    ]
    assert not leftover, f"tasks left running after stop: {[t.get_name() for t in leftover]}"


@pytest.fixture(autouse=True)
def _no_logged_exceptions(caplog: pytest.LogCaptureFixture) -> Any:
    """Like Home Assistant's tests: an exception logged by Linli fails the test."""
    caplog.set_level(logging.INFO)
    yield
    bad = [
        r
        for r in caplog.get_records("call")
        if r.exc_info and r.name.startswith("linli") and not getattr(r, "expected", False)
    ]
    assert not bad, "exceptions were logged: " + "; ".join(r.getMessage() for r in bad)


_GENERIC_NAMES = ("gateway", "services", "adapters", "portal", "firmware_profiles")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Linli's code is imported as `linli.…` only: a module loaded under a bare generic name

    (possible from a checkout's root, never from an install) would be a second copy
    with its own state, and would hide an entry or import an installed gateway lacks."""
    import sys

    stray = sorted(name for name in sys.modules if name.split(".")[0] in _GENERIC_NAMES)
    if stray:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        raise pytest.UsageError(f"modules imported under generic top-level names: {stray[:10]}")


@pytest.fixture
def mosquitto_installed() -> str:
    """`pytest.mark.usefixtures("mosquitto_installed")`: the test needs Mosquitto itself (skipped

    without it on a workstation, a failure under CI=true; see tests/infrastructure.py)."""
    return require_mosquitto()
