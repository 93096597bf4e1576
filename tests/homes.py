"""Building blocks for tests: a household with real device profiles, and an MQTT publisher."""

from __future__ import annotations

from typing import Any

import aiomqtt
import orjson

from linli.gateway.mqtt.topics import device_topic
from linli.gateway.runtime import Gateway

DEVICES = {
    "door": "aqara/mccgq11lm",
    "motion": "aqara/rtcgq11lm",
    "sos": "linli/sos-pendant",
    "bp": "yuwell/ye680a",
    "plug": "tuya/ts011f",
    "climate": "aqara/wsdcgq11lm",
}


async def add_home(
    gateway: Gateway, household: str = "h1", devices: dict[str, str] | None = None
) -> dict[str, str]:
    """Building b1, unit u-<household>, the household, and its devices; returns id → topic."""
    registry = gateway.registry
    if "b1" not in registry.buildings:
        await registry.async_add_building("b1", "1号楼")
    await registry.async_add_unit(f"u-{household}", "b1", "101")
    await registry.async_add_household(household, f"u-{household}", f"{household} home")
    topics = {}
    for name, profile in (devices or DEVICES).items():
        device_id = f"{household}-{name}"
        topic = device_topic(household, device_id)
        await registry.async_add_device(
            device_id, household_id=household, name=name, profile_id=profile, topic=topic
        )
        topics[device_id] = topic
    return topics


async def publish(
    port: int,
    messages: list[tuple[str, Any]],
    *,
    qos: int = 1,
    client_id: str = "test-pub",
    username: str | None = None,
    password: str | None = None,
) -> None:
    """Publish (topic, payload) pairs; dicts are sent as JSON, bytes as they are."""
    async with aiomqtt.Client(
        "127.0.0.1", port, identifier=client_id, username=username, password=password
    ) as client:
        for topic, payload in messages:
            body = payload if isinstance(payload, bytes | str) else orjson.dumps(payload)
            await client.publish(topic, body, qos=qos)
