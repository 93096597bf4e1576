"""The read-only community page, rendered by a real headless Chromium."""

from __future__ import annotations

import asyncio
import tempfile

import pytest

from tests.brokers import free_port, settle
from tests.homes import add_home, publish
from tests.infrastructure import require_chromium
from tests.tiers import expect_marked

pytestmark = pytest.mark.browser


async def render(url: str) -> str:
    """The page's DOM after its scripts ran (Chromium's --dump-dom)."""
    expect_marked("browser")
    chromium = require_chromium()
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    return out.decode()


async def test_page_lists_households_and_live_device_state(make_gateway, broker) -> None:
    # given a gateway with its portal open to this machine's browser (as `linli demo` runs it),
    # and a home whose door was just opened
    port = free_port()
    gateway = await make_gateway(
        portal={"enabled": True, "port": port, "open_local_views": True},
        components=["linli.adapters.mqtt_device:MqttDeviceAdapter", "linli.portal.app:Portal"],
    )
    topics = await add_home(gateway)
    await publish(
        broker.port,
        [
            (topics["h1-door"], {"contact": False, "battery": 88}),
            (topics["h1-bp"], {"sys": 142, "dia": 91, "pul": 70}),
        ],
    )
    await settle(lambda: "blood_pressure" in gateway.registry.device("h1-bp").states)
    # when a browser on this machine opens the page, without signing in
    dom = await render(f"http://127.0.0.1:{port}/")
    # then it shows the household, its devices, and their state in words
    assert "h1 home" in dom
    assert 'data-device="h1-door"' in dom
    assert 'door: <span class="active">开</span>' in dom
    # but never a health value: nobody signed in may read one
    assert 'data-device="h1-bp"' in dom
    assert "142" not in dom and "systolic" not in dom
    assert "1/6" in dom or "2/6" in dom  # devices online / total in the household list
