"""Test helpers for the portal: accounts made the way the CLI makes them, and signed-in clients."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from linli.gateway import users
from linli.gateway.component import ComponentApi
from linli.gateway.runtime import Gateway
from linli.portal.app import create_app

PORTAL_SERVICES = [
    "linli.adapters.mqtt_device:MqttDeviceAdapter",
    "linli.services.alerts:AlertEngine",
    "linli.services.eldercare:ElderCare",
    "linli.services.health:Health",
]


async def add_account(gateway: Gateway, name: str, role: str, household: str | None = None) -> str:
    """A user with a generated password (returned), as `linli user add` makes one."""
    password = users.new_password()
    digest = users.hash_password(password)
    await gateway.store.async_write(
        lambda db: users.add_user(
            db.conn, name, role, password_hash=digest, household_id=household, by="test"
        )
    )
    return password


async def api_token(gateway: Gateway, name: str) -> str:
    def create(db: Any) -> str:
        user = users.get_user(db.conn, name=name)
        assert user is not None
        return users.create_token(db.conn, kind=users.TokenKind.API, user_id=user.id, name="t", ttl_s=3600)[1]

    return str(await gateway.store.async_write(create))


@contextlib.asynccontextmanager
async def portal(gateway: Gateway) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(
        TestServer(create_app(ComponentApi(gateway, "portal")), host="127.0.0.1")
    ) as client:
        yield client


async def sign_in(client: TestClient[Any, Any], name: str, password: str) -> dict[str, str]:
    """Sign in with the cookie; returns the CSRF header a page sends with each change."""
    response = await client.post("/api/v1/auth/login", json={"name": name, "password": password})
    assert response.status == 200, await response.text()
    return {"X-CSRF-Token": (await response.json())["csrf_token"]}
