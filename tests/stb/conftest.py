"""Fixtures of the set-top box tests: simulated boxes; Wake-on-LAN held to loopback for every test here."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from linli.sim.box import SimBox
from linli.sim.dial_box import DialBox
from linli.sim.thunder_box import ThunderBox
from tests.stb.boxes import BoxFactory


@pytest.fixture(autouse=True)
def loopback_wake_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may send a magic packet anywhere but 127.0.0.1 (gateway/stb/wake.py refuses)."""
    monkeypatch.setenv("LINLI_WAKE_LOOPBACK_ONLY", "1")


@pytest.fixture
async def boxes() -> AsyncIterator[BoxFactory]:
    """Start simulated boxes: `await boxes("carrier", "h1-box")`; all stopped afterwards."""
    started: list[SimBox] = []

    async def factory(operator: str, name: str = "box") -> SimBox:
        box: SimBox = ThunderBox(name=name) if operator == "carrier" else DialBox(name=name)
        await box.async_start()
        started.append(box)
        return box

    yield factory
    for box in started:
        await box.async_stop()
