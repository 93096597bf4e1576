"""Building blocks for the uplink and regional tests: a regional broker, a listener, signed messages."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from linli.wire import topics
from linli.wire.messages import Envelope, decode
from linli.wire.signing import Signer
from tests.brokers import MosquittoProcess
from tests.infrastructure import require_mosquitto

REGION = "hubei"
TV_PROFILE = {
    "id": "test/tv",
    "vendor": "Test",
    "model": "TV",
    "name": "A TV that shows notices",
    "capabilities": [{"key": "notify", "kind": "notify", "source": "notify", "access": "rw"}],
}


def persistent_mosquitto(folder: Path, port: int | None = None) -> MosquittoProcess:
    """A Mosquitto that keeps sessions and queued messages across its own restarts."""
    folder.mkdir(parents=True, exist_ok=True)
    return MosquittoProcess(
        folder, port=port, extra=f"persistence true\npersistence_location {folder}/\nautosave_interval 1\n"
    )


@pytest.fixture
def region_broker(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """The regional broker (Mosquitto, MQTT 5, persistent), separate from the community's."""
    require_mosquitto()
    proc = persistent_mosquitto(tmp_path / "region-broker")
    proc.start()
    yield proc
    proc.stop()


def uplink_config(port: int, signer: Signer | None = None, **overrides: Any) -> dict[str, Any]:
    """An `[uplink]` section for tests: quick retries, reports only on connect."""
    config: dict[str, Any] = {
        "enabled": True,
        "region": REGION,
        "host": "127.0.0.1",
        "port": port,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "connect_timeout_s": 5,
        "poll_s": 0.2,
        "status_interval_s": 3600,
        "summary_interval_s": 3600,
        "rollup_interval_s": 3600,
        "region_public_keys": [signer.public_text] if signer else [],
    }
    config.update(overrides)
    return config


def tv_profiles(folder: Path) -> list[str]:
    """A profiles folder with a TV that has a `notify` capability.

    Safe to call from several processes on one folder at once (bench/region.py's
    gateway workers do): the file is replaced whole, never truncated and rewritten,
    so a gateway loading its profiles meanwhile cannot read half of it. Before, each
    worker truncated and rewrote the one file while others loaded it: a half-read
    file is a ProfileError, the loader skips the profile, that worker's TV cannot be
    added, the worker ends without answering and the bench waited on its queue
    (issue #17: 1 launch in 5 hung).
    """
    (folder / "test").mkdir(parents=True, exist_ok=True)
    target = folder / "test" / "tv.json"
    text = json.dumps(TV_PROFILE)
    if not target.exists() or target.read_text() != text:
        scratch = target.with_name(f".tv.json.{os.getpid()}.tmp")
        scratch.write_text(text)
        os.replace(scratch, target)
    return [str(folder)]


class RegionListener:
    """What the region receives: every upward envelope, in arrival order."""

    def __init__(self, port: int, client_id: str = "test-region-listener") -> None:
        self.port = port
        self.client_id = client_id
        self.envelopes: list[Envelope] = []
        self.presence: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    def _client(self) -> aiomqtt.Client:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        return aiomqtt.Client(
            "127.0.0.1",
            self.port,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=props,
        )

    async def async_start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="test-region-listener")
        await asyncio.wait_for(self._subscribed.wait(), 10)

    async def _run(self) -> None:
        async with self._client() as client:
            await client.subscribe([(f, 1) for f in topics.region_up_filters(REGION)])
            self._subscribed.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                if message.topic.value.endswith("/presence"):
                    self.presence.append(orjson.loads(message.payload))
                else:
                    self.envelopes.append(decode(message.payload))

    async def async_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._subscribed.clear()

    def of_kind(self, kind: str) -> list[Envelope]:
        return [e for e in self.envelopes if e.kind == kind]


@contextlib.asynccontextmanager
async def listening(port: int, client_id: str = "test-region-listener") -> AsyncIterator[RegionListener]:
    listener = RegionListener(port, client_id)
    await listener.async_start()
    try:
        yield listener
    finally:
        await listener.async_stop()


async def publish_down(port: int, topic: str, payload: bytes, *, retain: bool = False) -> None:
    async with aiomqtt.Client(
        "127.0.0.1", port, identifier="test-region-down", protocol=aiomqtt.ProtocolVersion.V5
    ) as c:
        await c.publish(topic, payload, qos=1, retain=retain)


async def add_tv(gateway: Any, household: str = "h1") -> list[dict[str, Any]]:
    """A household with a TV (profile test/tv, see tv_profiles) that records what it is told to show."""
    from linli.gateway.commands import Command

    registry = gateway.registry
    if "b1" not in registry.buildings:
        await registry.async_add_building("b1", "1号楼")
    await registry.async_add_unit(f"u-{household}", "b1", "101")
    await registry.async_add_household(household, f"u-{household}", f"{household} home")
    device_id = f"{household}-tv"
    await registry.async_add_device(
        device_id, household_id=household, name="TV", profile_id="test/tv", topic=f"tv/{household}"
    )
    shown: list[dict[str, Any]] = []

    async def tv(command: Command) -> dict[str, Any]:
        shown.append(command.value)
        return {"ok": True}

    gateway.commands.register(device_id, tv)
    return shown
