"""Building blocks for set-top box tests: a gateway that drives simulated boxes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from linli.gateway.registry import Device
from linli.gateway.runtime import Gateway
from linli.sim.box import SimBox
from linli.sim.thunder_box import ThunderBox
from tests.homes import add_home

ADAPTER = {"carrier": "stb_carrier", "broadcast": "stb_broadcast"}
OPERATORS = ("carrier", "broadcast")
STB_COMPONENTS = ["linli.gateway.plugins.host:AdapterHost", "linli.services.screens.screens:Screens"]
FAST = {"timeout_s": 1, "confirm_timeout_s": 1, "wake_timeout_s": 5, "poll_s": 3600}

BoxFactory = Callable[..., Awaitable[SimBox]]


def stb_settings(**overrides: Any) -> dict[str, Any]:
    """The `adapters` config section for tests: both STB adapters, fast timeouts, no background polling."""
    settings = {**FAST, **overrides}
    return {"only": list(ADAPTER.values()), "settings": {a: dict(settings) for a in ADAPTER.values()}}


async def stb_gateway(make_gateway: Callable[..., Awaitable[Gateway]], **overrides: Any) -> Gateway:
    components = overrides.pop("components", STB_COMPONENTS)
    return await make_gateway(
        components=components, adapters=overrides.pop("adapters", stb_settings()), **overrides
    )


async def adopt(gateway: Gateway, household: str, box: SimBox, **options: Any) -> Device:
    """Give the household this box, through its operator's adapter."""
    operator = "carrier" if isinstance(box, ThunderBox) else "broadcast"
    adapter = gateway.components["adapters"].adapter(ADAPTER[operator])  # type: ignore[attr-defined]
    return await adapter.async_adopt(  # type: ignore[no-any-return]
        household, box.url, wake_address="127.0.0.1", wake_port=box.wake_port, **options
    )


async def home_with_tv(gateway: Gateway, household: str, box: SimBox) -> Device:
    await add_home(gateway, household, devices={})
    return await adopt(gateway, household, box)
