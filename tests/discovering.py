"""Building blocks for discovery tests: a gateway with discovery on loopback, the REST client,
retained MQTT configs, and a free SSDP port per test (so parallel runs never hear each other).

Payload shapes come from linli/sim/discovery_payloads.py, which documents where
each one comes from (Zigbee2MQTT, Tasmota, ESPHome, Home Assistant's device form).
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt
import orjson
from aiohttp.test_utils import TestClient, TestServer

from linli.gateway import users
from linli.gateway.component import ComponentApi
from linli.gateway.discovery import Inbox, InboxItem, InboxStatus
from linli.gateway.runtime import Gateway
from linli.portal.app import create_app
from tests.brokers import settle

#: The inbox and the three sources that feed it (as linli/components.py lists them).
DISCOVERY = [
    "linli.gateway.discovery:Discovery",
    "linli.adapters.discovery.sources:MqttDiscoverySource",
    "linli.adapters.discovery.sources:ZeroconfSource",
    "linli.adapters.discovery.sources:SsdpSource",
]
COMPONENTS = ["linli.adapters.mqtt_device:MqttDeviceAdapter", *DISCOVERY]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def discovery_config(*sources: str, **overrides: Any) -> dict[str, Any]:
    """Discovery on 127.0.0.1 only, quick timeouts, a private SSDP port."""
    config: dict[str, Any] = {
        "sources": list(sources or ("mqtt",)),
        "interfaces": ["127.0.0.1"],
        "ssdp": {
            "port": free_udp_port(),
            "mx": 1,
            "search_interval_s": 60,
            "description_timeout_s": 1.0,
            "max_description_bytes": 65536,
        },
        "zeroconf": {"resolve_timeout_s": 2.0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


async def start(make_gateway: Callable[..., Any], *sources: str, **overrides: Any) -> Gateway:
    data_dir = overrides.pop("data_dir", None)
    gateway: Gateway = await make_gateway(
        data_dir, components=COMPONENTS, discovery=discovery_config(*sources, **overrides)
    )
    return gateway


def inbox_of(gateway: Gateway) -> Inbox:
    inbox = gateway.components["discovery"].inbox
    assert inbox is not None
    return inbox


async def item_for(inbox: Inbox, key: str, timeout: float = 5.0) -> InboxItem:
    """Wait until an item known by `key` is in the inbox."""
    await settle(lambda: inbox.find(key) is not None, timeout)
    item = inbox.find(key)
    assert item is not None
    return item


async def status_of(inbox: Inbox, key: str, status: InboxStatus, timeout: float = 5.0) -> InboxItem:
    await settle(lambda: (i := inbox.find(key)) is not None and i.status is status, timeout)
    item = inbox.find(key)
    assert item is not None
    return item


async def publish_retained(port: int, messages: list[tuple[str, Any]]) -> None:
    """Publish configs retained, as bridges do; dicts as JSON, bytes as they are."""
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"bridge-{uuid.uuid4().hex[:8]}") as client:
        for topic, payload in messages:
            body = payload if isinstance(payload, bytes | str) else orjson.dumps(payload)
            await client.publish(topic, body, qos=1, retain=True)


@contextlib.asynccontextmanager
async def portal_client(
    gateway: Gateway, user: str | None = "wang.manager", role: str = "manager"
) -> AsyncIterator[TestClient[Any, Any]]:
    """The portal's REST API on 127.0.0.1, for this gateway, as `user` (an API token; made the
    way `linli user add` / `linli token create` make them). `user=None`: nobody signed in."""
    headers = {}
    if user is not None:

        def token(db: Any) -> str:
            found = users.get_user(db.conn, name=user)
            if found is None:
                found = users.add_user(db.conn, user, role, password_hash="-", by="test")
            kind = users.TokenKind.API
            return users.create_token(db.conn, kind=kind, user_id=found.id, name="t", ttl_s=3600)[1]

        headers["Authorization"] = f"Bearer {await gateway.store.async_write(token)}"
    async with TestClient(
        TestServer(create_app(ComponentApi(gateway, "portal")), host="127.0.0.1"), headers=headers
    ) as client:
        yield client


async def rejected_view(gateway: Gateway) -> list[dict[str, Any]]:
    """GET /api/v1/inbox?status=rejected, as a property manager's browser would."""
    async with portal_client(gateway) as client:
        response = await client.get("/api/v1/inbox", params={"status": "rejected"})
        assert response.status == 200
        return list((await response.json())["items"])
