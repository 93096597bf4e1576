"""The gateway's lifecycle: components in order, clean stops, clear failures, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from linli.gateway import __version__
from linli.gateway.runtime import Gateway, GatewayStartError
from tests.brokers import free_port, settle
from tests.conftest import gateway_config

ORDER: list[str] = []


class Recorder:
    """A component that records its start and stop."""

    requires: tuple[str, ...] = ()

    def __init__(self, name: str, requires: tuple[str, ...] = (), fail: bool = False) -> None:
        self.name = name
        self.requires = requires
        self.fail = fail

    async def async_start(self, gateway: Gateway) -> None:
        if self.fail:
            raise RuntimeError("the widget is missing")
        ORDER.append(f"start {self.name}")

    async def async_stop(self) -> None:
        ORDER.append(f"stop {self.name}")


async def test_components_start_in_dependency_order_and_stop_in_reverse(tmp_path, broker) -> None:
    ORDER.clear()
    gateway = Gateway(gateway_config(tmp_path / "data", broker.port))
    gateway.extra_components = [
        Recorder("c", requires=("b",)),
        Recorder("b", requires=("a", "registry")),
        Recorder("a"),
    ]
    await gateway.async_start()
    await gateway.async_stop()
    assert ORDER == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]


async def test_a_component_that_fails_to_start_fails_the_start_and_names_itself(tmp_path, broker) -> None:
    ORDER.clear()
    gateway = Gateway(gateway_config(tmp_path / "data", broker.port))
    gateway.extra_components = [Recorder("a"), Recorder("widget", requires=("a",), fail=True)]
    with pytest.raises(GatewayStartError, match="'widget' failed to start: the widget is missing"):
        await gateway.async_start()
    assert ORDER == ["start a", "stop a"]  # what had started was stopped again
    leftover = [t for t in asyncio.all_tasks() if t.get_name().startswith("linli") and not t.done()]
    assert not leftover


async def test_a_missing_dependency_is_named(tmp_path, broker) -> None:
    gateway = Gateway(gateway_config(tmp_path / "data", broker.port))
    gateway.extra_components = [Recorder("a", requires=("nowhere",))]
    with pytest.raises(GatewayStartError, match="'a' requires 'nowhere'"):
        await gateway.async_start()


async def test_embedded_broker_port_in_use_is_a_clear_error(tmp_path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        gateway = Gateway(gateway_config(tmp_path / "data", port, mqtt={"broker": "embedded"}))
        with pytest.raises(GatewayStartError, match=f"MQTT port 127.0.0.1:{port} is already in use"):
            await gateway.async_start()


async def test_embedded_broker_mode_runs_with_nothing_installed(tmp_path) -> None:
    from tests.homes import add_home, publish

    port = free_port()
    gateway = Gateway(gateway_config(tmp_path / "data", port, mqtt={"broker": "embedded"}))
    await gateway.async_start()
    try:
        topics = await add_home(gateway)
        await publish(port, [(topics["h1-door"], {"contact": True})])
        await settle(lambda: "door" in gateway.registry.device("h1-door").states)
    finally:
        await gateway.async_stop()


@pytest.mark.slow
@pytest.mark.usefixtures("mosquitto_installed")
async def test_mosquitto_mode_runs_and_supervises_the_broker(tmp_path) -> None:
    from tests.homes import add_home, publish

    port = free_port()
    gateway = Gateway(gateway_config(tmp_path / "data", port, mqtt={"broker": "mosquitto"}))
    await gateway.async_start()
    try:
        assert (tmp_path / "data" / "mosquitto" / "mosquitto.conf").exists()
        topics = await add_home(gateway)
        issued = await gateway.mqtt_credentials.async_issue_bridge("h1", "linli/v1/h1")
        login = {"username": issued.principal.username, "password": issued.password}
        await asyncio.sleep(0.5)  # the broker reloads its access files
        await publish(port, [(topics["h1-door"], {"contact": False})], **login)
        await settle(lambda: "door" in gateway.registry.device("h1-door").states)
        # when the broker process dies, the gateway restarts it and reconnects
        os.kill(gateway.broker.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
        await settle(lambda: gateway.broker.restarts == 1, timeout=10)  # type: ignore[union-attr]
        await gateway.mqtt.async_wait_connected(15)
        await publish(port, [(topics["h1-door"], {"contact": True})], **login)
        await settle(lambda: gateway.registry.device("h1-door").states["door"].value is False, timeout=10)
    finally:
        await gateway.async_stop()


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "linli", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_version_from_the_console_script_and_python_m() -> None:
    assert _run("--version").stdout.strip() == f"linli {__version__}"
    linli = subprocess.run(["linli", "--version"], capture_output=True, text=True, check=True)
    assert linli.stdout.strip() == f"linli {__version__}"


@pytest.mark.slow
def test_bad_config_file_is_reported_with_the_key(tmp_path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[mqtt]\nport = 70000\n")
    result = _run("run", "--config", str(config))
    assert result.returncode == 2
    assert "mqtt.port" in result.stderr and "65535" in result.stderr
    assert "Traceback" not in result.stderr


def _wait_http(url: str, timeout: float = 20, token: str | None = None) -> dict:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_stops_cleanly_on_signal(tmp_path, sig) -> None:
    # given `linli run` with an empty config on free ports
    config = tmp_path / "empty.toml"
    config.write_text("")
    port, mqtt_port = free_port(), free_port()
    # (its status is for signed-in callers: an account and a token, made the CLI's way)
    data = str(tmp_path / "data")
    assert _run("user", "add", "ops", "--role", "manager", "--data-dir", data).returncode == 0
    created = _run("token", "create", "ops", "--data-dir", data)
    token = re.search(r"token:\s+(\S+)", created.stdout)
    assert token, created.stderr
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "linli",
            "run",
            "--config",
            str(config),
            "--port",
            str(port),
            "--mqtt-port",
            str(mqtt_port),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        status = f"http://127.0.0.1:{port}/api/v1/status"
        while not _wait_http(status, token=token.group(1))["mqtt"]["connected"]:
            assert time.monotonic() < deadline, "the gateway never connected to its broker"
            time.sleep(0.1)
        # when it is told to stop
        process.send_signal(sig)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # then it exits 0, without a traceback, having closed the database
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped cleanly" in err
    assert (
        not (tmp_path / "data" / "linli.db-wal").exists()
        or (tmp_path / "data" / "linli.db-wal").stat().st_size == 0
    )


def _run_demo(tmp_path: Path, check: Callable[[str], None]) -> None:
    port, mqtt_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            "linli",
            "demo",
            "--households",
            "6",
            "--rate",
            "30",
            "--for",
            "60",
            "--port",
            str(port),
            "--mqtt-port",
            str(mqtt_port),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        check(f"http://127.0.0.1:{port}")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert f"open http://127.0.0.1:{port}/" in out
    assert "Traceback" not in err, err
    # the simulator neither died nor failed to stop (a restart once killed every hub silently)
    assert "failed to stop cleanly" not in err and "stopped publishing" not in err, err


def _accepted(base: str) -> int:
    return int(_wait_http(f"{base}/api/v1/status")["ingest"]["accepted"])


@pytest.mark.slow
def test_demo_shows_a_living_community_and_lives_on_after_a_restart(tmp_path) -> None:
    def first_run(base: str) -> None:
        deadline = time.monotonic() + 30
        while _wait_http(f"{base}/api/v1/households")["total"] < 6:  # the homes register as the sim starts
            assert time.monotonic() < deadline, "the demo's households never appeared"
            time.sleep(0.2)
        assert _wait_http(f"{base}/api/v1/households")["total"] == 6
        while _accepted(base) < 100:
            assert time.monotonic() < deadline, "demo telemetry did not arrive"
            time.sleep(0.3)
        devices = _wait_http(f"{base}/api/v1/households/h0001/devices")["items"]
        assert len(devices) == 16  # the 15 simulated devices and the TV set-top box
        door = next(d for d in devices if d["id"] == "h0001-front-door")
        assert door["available"] and door["capabilities"][0]["value"] in (True, False)
        with urllib.request.urlopen(base + "/") as response:
            assert "邻里" in response.read().decode()

    def second_run(base: str) -> None:
        # the same community, its TV boxes adopted last time: the homes keep reporting
        deadline = time.monotonic() + 30
        while _accepted(base) < 150:  # past the hubs' first full report (6 × 15)
            assert time.monotonic() < deadline, "telemetry stopped after a restart"
            time.sleep(0.3)
        assert _wait_http(f"{base}/api/v1/households")["total"] == 6

    _run_demo(tmp_path, first_run)
    _run_demo(tmp_path, second_run)


@pytest.mark.slow
def test_installed_copy_finds_its_firmware_profiles(tmp_path) -> None:
    # given a plain (non-editable) install of the package into a folder
    root = Path(__file__).resolve().parent.parent
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(root),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # when it loads its profiles from somewhere else entirely
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import linli.firmware_profiles as f, linli.gateway.profiles as p; s = p.load_profiles(); "
            "print(len(s), len(s.errors), f.PROFILE_DIR)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    count, errors, where = result.stdout.split()
    assert int(count) >= 15 and errors == "0"
    assert where.startswith(str(target))
    # and it claims one import name in site-packages, no generic ones (gateway, services, …)
    assert sorted(p.name for p in target.iterdir() if (p / "__init__.py").exists()) == ["linli"]
    version = subprocess.run(
        [sys.executable, "-m", "linli", "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert version.stdout.strip() == f"linli {__version__}"
