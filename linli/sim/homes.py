"""Simulated homes: each is a hub with its own MQTT connection, like a real Zigbee bridge.

A hub announces its devices online (retained availability), then publishes
telemetry at its share of the community's rate, in the real device families'
payload shapes. Now and then a resident presses the SOS pendant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass

import aiomqtt
import orjson

from linli.common.backoff import backoff_delay
from linli.sim.telemetry import WEIGHTS, DeviceSim, payload_for

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class SimDevice:
    device_id: str
    topic: str
    availability_topic: str | None
    sim: DeviceSim


class SimHome:
    """One household's hub."""

    def __init__(
        self,
        household_id: str,
        devices: list[SimDevice],
        *,
        host: str,
        port: int,
        rate: float,
        sos_per_hour: float,
        first_sos_after_s: float | None = None,
        seed: int,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
    ) -> None:
        self.household_id = household_id
        self.devices = devices
        self.host, self.port = host, port
        # The hub's own bridge credential (on a broker with per-household ACLs)
        self.username, self.password = username, password
        self.client_id = client_id or f"sim-hub-{household_id}"
        self.rate = rate
        self.sos_per_hour = sos_per_hour
        self.first_sos_after_s = first_sos_after_s
        self.rng = random.Random(seed)
        self.published = 0
        self.sos_presses = 0
        self._weights = [WEIGHTS.get(d.sim.profile_id, 1.0) for d in devices]

    async def run(self) -> None:
        """Publish until cancelled, reconnecting like a real hub would."""
        failures = 0  # in a row: the reconnect backoff's attempt
        while True:
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    identifier=self.client_id,
                    username=self.username,
                    password=self.password,
                    keepalive=60,
                    will=None,
                ) as client:
                    failures = 0
                    for device in self.devices:
                        if device.availability_topic:
                            await client.publish(device.availability_topic, b"online", qos=1, retain=True)
                    # First, a full report of every device, as a hub does after it boots.
                    hour = _local_hour()
                    for device in self.devices:
                        await self._publish(client, device, payload_for(device.sim, hour))
                    await self._loop(client)
            except aiomqtt.MqttError as exc:
                _LOGGER.debug("hub %s lost its broker (%s); reconnecting", self.household_id, exc)
                # Jitter from the home's own seeded generator: a simulated run stays reproducible.
                await asyncio.sleep(
                    backoff_delay(failures, base=0.5, cap=30.0, jitter=False) + self.rng.random()
                )
                failures += 1

    async def _publish(self, client: aiomqtt.Client, device: SimDevice, payload: dict[str, object]) -> None:
        await client.publish(device.topic, orjson.dumps(payload), qos=1)
        self.published += 1

    async def _loop(self, client: aiomqtt.Client) -> None:
        interval = 1.0 / self.rate if self.rate > 0 else 3600.0
        next_at = time.monotonic() + self.rng.uniform(0, interval)
        sos_chance = self.sos_per_hour * interval / 3600.0
        first_sos_at = (
            time.monotonic() + self.first_sos_after_s if self.first_sos_after_s is not None else None
        )
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            hour = _local_hour()
            device = self.rng.choices(self.devices, self._weights)[0]
            await self._publish(client, device, payload_for(device.sim, hour))
            if first_sos_at is not None and time.monotonic() >= first_sos_at:
                first_sos_at = None  # once: so that a new demo shows a live alert within a minute
                await self.press_sos(client)
            elif self.rng.random() < sos_chance:
                await self.press_sos(client)

    async def press_sos(self, client: aiomqtt.Client) -> None:
        """The resident presses the pendant; it reports "pressed", then "idle" on release."""
        for device in self.devices:
            if device.sim.profile_id == "linli/sos-pendant":
                self.sos_presses += 1
                _LOGGER.info("demo: SOS pressed in household %s", self.household_id)
                await self._publish(client, device, {"sos": "pressed", "battery": device.sim.drain()})
                await asyncio.sleep(2.0)
                await self._publish(client, device, {"sos": "idle", "battery": device.sim.drain()})
                return


def _local_hour() -> float:
    now = time.localtime()
    return now.tm_hour + now.tm_min / 60


async def run_homes(homes: list[SimHome], *, ramp_s: float = 2.0) -> None:
    """Run every hub; hubs connect spread over `ramp_s` so the broker is not stampeded."""
    tasks = []
    try:
        for _index, home in enumerate(homes):
            tasks.append(asyncio.create_task(home.run(), name=f"sim-{home.household_id}"))
            if ramp_s and len(homes) > 1:
                await asyncio.sleep(ramp_s / len(homes))
        await asyncio.gather(*tasks)
    except Exception:
        # A simulator bug must say so at once, not leave the demo silently frozen.
        _LOGGER.exception("the simulated community stopped publishing")
        raise
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
