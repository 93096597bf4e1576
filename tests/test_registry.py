"""The registry's people: residents of a household and the devices they use."""

from __future__ import annotations

import pytest

from linli.gateway.registry import RegistryError
from tests.homes import add_home


async def test_a_device_used_by_one_person_is_theirs_across_restarts(make_gateway, tmp_path) -> None:
    gateway = await make_gateway(data_dir=tmp_path / "data")
    await add_home(gateway)
    await gateway.registry.async_add_resident("r-grandma", "h1", "王奶奶", data={"birth_year": 1941})
    await gateway.registry.async_add_resident("r-grandpa", "h1", "王爷爷")
    await gateway.registry.async_assign_device("h1-bp", "r-grandma")
    await gateway.async_stop()
    again = await make_gateway(data_dir=tmp_path / "data", gateway_id="gw-again")
    bp = again.registry.device("h1-bp")
    assert again.registry.resident_of(bp).name == "王奶奶"
    assert again.registry.residents["r-grandma"].data == {"birth_year": 1941}
    # a shared device in a two-person home belongs to nobody in particular
    assert again.registry.resident_of(again.registry.device("h1-climate")) is None


async def test_a_device_cannot_be_given_to_someone_from_another_household(make_gateway) -> None:
    gateway = await make_gateway()
    await add_home(gateway, "h1")
    await add_home(gateway, "h2", devices={"scale": "linli/scale"})
    await gateway.registry.async_add_resident("r-h2", "h2", "李先生")
    with pytest.raises(RegistryError, match="not a member of household 'h1'"):
        await gateway.registry.async_assign_device("h1-bp", "r-h2")
    with pytest.raises(RegistryError, match="no household"):
        await gateway.registry.async_add_resident("r-x", "nowhere", "X")
    # the only resident of a household is the one whose readings they are
    assert gateway.registry.resident_of(gateway.registry.device("h2-scale")).id == "r-h2"


@pytest.mark.slow
async def test_availability_is_written_when_it_changes_not_every_pass(make_gateway, tmp_path) -> None:
    import sqlite3
    import time

    gateway = await make_gateway(data_dir=tmp_path / "data")
    await add_home(gateway)
    registry = gateway.registry
    door = registry.device("h1-door")
    registry.set_available(door, True, time.time(), "test")
    door.last_seen = time.time()
    assert await registry.async_persist_availability() == 6  # first pass: every device once
    assert await registry.async_persist_availability() == 0  # nothing changed: nothing written
    door.last_seen = time.time() + 1  # a new report alone waits for the periodic last-seen write
    assert await registry.async_persist_availability() == 0
    registry.set_available(door, False, time.time(), "test")
    assert await registry.async_persist_availability() == 1
    with sqlite3.connect(gateway.store.path) as conn:
        assert conn.execute("SELECT available FROM devices WHERE id = 'h1-door'").fetchone() == (0,)
    assert await registry.async_persist_availability(force=True) == 1  # stop: last-seen too
