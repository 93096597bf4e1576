"""Setting up a real community: the tree of buildings, units, households and residents.

A property manager installing Linli starts from nothing. Through the REST API
(manager only, installers may read), the `linli community import` command on the
data directory, or the /manage page in a real Chromium, they build the tree,
and a discovered device can then be approved into a household of it. Each
check goes through the gateway itself (registry, store, audit), not the page.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from linli.gateway import users
from linli.gateway.runtime import Gateway
from linli.sim import discovery_payloads as payloads
from tests.brokers import settle
from tests.discovering import DISCOVERY, discovery_config, inbox_of, item_for, publish_retained
from tests.homes import add_home
from tests.portal_accounts import PORTAL_SERVICES, add_account, api_token, portal
from tests.test_portal_browser import browser_page, portal_gateway
from tests.test_portal_forms import DESKTOP, sign_in


async def audit_entries(gateway: Gateway) -> list[dict[str, Any]]:
    return list(await gateway.store.async_read(lambda c: users.query_audit(c, limit=500)[0]))


class Caller:
    def __init__(self, client: Any, token: str) -> None:
        self.client, self.token = client, token

    async def __call__(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        response = await self.client.request(
            method, url, json=body, headers={"Authorization": f"Bearer {self.token}"}
        )
        return response.status, await response.json()


# -- REST -----------------------------------------------------------------------------


async def test_a_manager_builds_the_tree_from_nothing_and_every_change_is_audited(make_gateway) -> None:
    gateway = await make_gateway(components=PORTAL_SERVICES)
    await add_account(gateway, "wang.manager", "manager")
    async with portal(gateway) as client:
        call = Caller(client, await api_token(gateway, "wang.manager"))
        # given a fresh community with nothing in it
        status, tree = await call("GET", "/api/v1/structure")
        assert status == 200 and tree["buildings"] == [] and tree["totals"]["households"] == 0
        # when the manager adds a building with a chosen id, a unit with a generated one, a household
        status, building = await call("POST", "/api/v1/buildings", {"id": "b1", "name": "1号楼"})
        assert status == 201 and building["id"] == "b1", building
        status, unit = await call("POST", "/api/v1/buildings/b1/units", {"name": "1单元"})
        assert status == 201 and unit["id"].startswith("u-"), unit
        status, home = await call(
            "POST", f"/api/v1/units/{unit['id']}/households", {"id": "h0101", "name": "101 张家"}
        )
        assert status == 201, home
        status, person = await call(
            "POST", "/api/v1/households/h0101/residents", {"name": "张奶奶", "data": {"birth_year": 1941}}
        )
        assert status == 201, person
        # then the registry has them, and so does the database (a restart would find them)
        registry = gateway.registry
        assert registry.buildings["b1"].name == "1号楼"
        assert registry.units[unit["id"]].building_id == "b1"
        assert registry.households["h0101"].unit_id == unit["id"]
        assert registry.residents[person["id"]].data == {"birth_year": 1941}
        with sqlite3.connect(gateway.store.path) as conn:
            assert conn.execute("SELECT name FROM households WHERE id = 'h0101'").fetchone() == ("101 张家",)
        # the tree shows each level, and the household on the manager's community view
        _, tree = await call("GET", "/api/v1/structure")
        [b] = tree["buildings"]
        assert b["units"][0]["households"][0]["residents"][0]["name"] == "张奶奶"
        _, community = await call("GET", "/api/v1/community")
        assert community["households"] == 1
        # renames
        assert (await call("PATCH", "/api/v1/buildings/b1", {"name": "一号楼"}))[0] == 200
        assert (await call("PATCH", f"/api/v1/units/{unit['id']}", {"name": "一单元"}))[0] == 200
        assert (await call("PATCH", "/api/v1/households/h0101", {"name": "101 张宅"}))[0] == 200
        status, changed = await call(
            "PATCH", f"/api/v1/households/h0101/residents/{person['id']}", {"name": "张桂兰"}
        )
        assert status == 200 and changed["data"] == {"birth_year": 1941}, changed
        assert registry.buildings["b1"].name == "一号楼"
        assert registry.households["h0101"].name == "101 张宅"
        # an id already taken, an id of the wrong shape, an unknown field: refused, saying why
        status, error = await call("POST", "/api/v1/buildings", {"id": "b1", "name": "again"})
        assert status == 409 and "taken" in error["error"]["message"], error
        status, error = await call("POST", "/api/v1/buildings", {"id": "b 1", "name": "x"})
        assert status == 400 and error["error"]["field"] == "body.id", error
        status, error = await call("POST", "/api/v1/buildings", {"name": "x", "floors": 9})
        assert status == 400 and "floors" in error["error"]["message"], error
        status, error = await call("POST", "/api/v1/buildings/nope/units", {"name": "x"})
        assert status == 404, error
    # and every change is in the audit, by the manager
    entries = [e for e in await audit_entries(gateway) if e["actor"] == "wang.manager"]
    actions = sorted(e["action"] for e in entries)
    assert actions == sorted(
        [
            "building.add",
            "unit.add",
            "household.add",
            "resident.add",
            "building.rename",
            "unit.rename",
            "household.rename",
            "resident.update",
        ]
    ), actions
    renamed = next(e for e in entries if e["action"] == "household.rename")
    assert renamed["household_id"] == "h0101" and renamed["detail"]["old"] == "101 张家", renamed


async def test_installers_read_the_tree_but_only_a_manager_changes_it(make_gateway) -> None:
    gateway = await make_gateway(components=PORTAL_SERVICES)
    await add_home(gateway, "h1")
    await gateway.registry.async_add_resident("h1-r1", "h1", "赵奶奶", data={"birth_year": 1938})
    await add_account(gateway, "li.installer", "installer")
    await add_account(gateway, "zhao.resident", "resident", "h1")
    async with portal(gateway) as client:
        installer = Caller(client, await api_token(gateway, "li.installer"))
        resident = Caller(client, await api_token(gateway, "zhao.resident"))
        status, tree = await installer("GET", "/api/v1/structure")
        assert status == 200 and tree["buildings"][0]["id"] == "b1"
        # an installer places devices: the homes, not the people in them
        [home] = tree["buildings"][0]["units"][0]["households"]
        assert home["residents"] == [] and tree["totals"]["residents"] is None, tree
        assert (await resident("GET", "/api/v1/structure"))[0] == 403
        for caller in (installer, resident):
            for method, url, body in [
                ("POST", "/api/v1/buildings", {"name": "2号楼"}),
                ("PATCH", "/api/v1/buildings/b1", {"name": "x"}),
                ("POST", "/api/v1/buildings/b1/units", {"name": "x"}),
                ("DELETE", "/api/v1/units/u-h1", None),
                ("PATCH", "/api/v1/households/h1", {"name": "x"}),
                ("POST", "/api/v1/households/h1/residents", {"name": "x"}),
            ]:
                status, error = await caller(method, url, body)
                assert status == 403 and error["error"]["code"] == "forbidden", (method, url, error)
    # nothing changed, nothing was audited as done
    assert (
        sorted(gateway.registry.buildings) == ["b1"] and gateway.registry.households["h1"].name == "h1 home"
    )
    assert not [e for e in await audit_entries(gateway) if e["action"].split(".")[0] in ("building", "unit")]


async def test_removing_a_part_of_the_tree_that_still_holds_something_says_what_to_remove_first(
    make_gateway,
) -> None:
    gateway = await make_gateway(components=PORTAL_SERVICES)
    await add_home(gateway, "h1", devices={"plug": "tuya/ts011f"})
    await add_account(gateway, "wang.manager", "manager")
    await add_account(gateway, "zhao.resident", "resident", "h1")
    await gateway.registry.async_add_resident("h1-r1", "h1", "赵")
    async with portal(gateway) as client:
        call = Caller(client, await api_token(gateway, "wang.manager"))
        status, error = await call("DELETE", "/api/v1/buildings/b1")
        assert status == 409 and error["error"]["code"] == "conflict", error
        assert "1 units" in error["error"]["message"] and "remove its units" in error["error"]["message"]
        status, error = await call("DELETE", "/api/v1/units/u-h1")
        assert status == 409 and "remove its households" in error["error"]["message"], error
        status, error = await call("DELETE", "/api/v1/households/h1")
        assert status == 409, error
        assert error["error"]["holds"] == {"devices": 1, "residents": 1, "accounts": 1}, error
        # a care reminder (configuration, not a person) does not hold the household
        await client.request(
            "POST",
            "/api/v1/households/h1/care/reminders",
            json={"title": "降压药", "times": ["08:00"]},
            headers={"Authorization": f"Bearer {call.token}"},
        )
        # when what it holds is gone, bottom up, each removal goes through
        await gateway.registry.async_remove_device("h1-plug")
        assert (await call("DELETE", "/api/v1/households/h1/residents/h1-r1"))[0] == 200
        user = await gateway.store.async_read(lambda c: users.get_user(c, name="zhao.resident"))
        assert (await call("DELETE", f"/api/v1/users/{user.id}"))[0] == 200
        assert (await call("DELETE", "/api/v1/households/h1")) == (200, {"removed": "h1"})
        assert (await call("DELETE", "/api/v1/units/u-h1"))[0] == 200
        assert (await call("DELETE", "/api/v1/buildings/b1"))[0] == 200
        assert (await call("DELETE", "/api/v1/buildings/b1"))[0] == 404
    # then the tree is empty in memory and on disk, the reminder went with its household
    assert not gateway.registry.buildings and not gateway.registry.households
    with sqlite3.connect(gateway.store.path) as conn:
        for table in ("buildings", "units", "households", "care_reminders"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    removed = [e["action"] for e in await audit_entries(gateway) if e["action"].endswith(".remove")]
    assert sorted(removed) == ["building.remove", "household.remove", "resident.remove", "unit.remove"], (
        removed
    )


# -- CLI ------------------------------------------------------------------------------

TREE = """\
[[buildings]]
id = "b1"
name = "1号楼"

  [[buildings.units]]
  id = "b1-u1"
  name = "1单元"

    [[buildings.units.households]]
    id = "h0101"
    name = "101 张家"
    residents = [{ name = "张桂兰", birth_year = 1941 }, { id = "r-zhang-wei", name = "张伟" }]

    [[buildings.units.households]]
    id = "h0102"
    name = "102 李家"

[[buildings]]
id = "b2"
name = "2号楼"
"""


def linli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The real `linli` command, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "linli", *map(str, args)], capture_output=True, text=True, timeout=60
    )


def table(db: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


@pytest.mark.slow
async def test_importing_a_community_file_twice_changes_nothing_the_second_time_and_the_gateway_loads_it(
    make_gateway, tmp_path
) -> None:
    data = tmp_path / "data"
    tree = tmp_path / "community.toml"
    tree.write_text(TREE, "utf-8")
    # when the manager imports the tree into a data dir the gateway never ran on
    first = linli("community", "import", tree, "--data-dir", data)
    assert first.returncode == 0, first.stderr
    assert "households: 2 added" in first.stdout and "residents: 2 added" in first.stdout, first.stdout
    db = data / "linli.db"
    snapshot = [
        table(db, f"SELECT * FROM {t} ORDER BY id") for t in ("buildings", "units", "households", "residents")
    ]
    audited = table(db, "SELECT count(*) FROM audit")
    # then a second import finds nothing to do and writes nothing, not even an audit line
    second = linli("community", "import", tree, "--data-dir", data)
    assert second.returncode == 0 and "Nothing to change" in second.stdout, second
    assert snapshot == [
        table(db, f"SELECT * FROM {t} ORDER BY id") for t in ("buildings", "units", "households", "residents")
    ]
    assert table(db, "SELECT count(*) FROM audit") == audited
    assert {a for (a,) in table(db, "SELECT DISTINCT actor FROM audit")} == {"cli"}
    # a changed name is a rename (audited), and `show` prints the tree
    tree.write_text(TREE.replace("102 李家", "102 李宅"), "utf-8")
    renamed = linli("community", "import", tree, "--data-dir", data)
    assert "households: 0 added, 1 changed" in renamed.stdout, renamed.stdout
    assert table(db, "SELECT action, target FROM audit WHERE action = 'household.rename'") == [
        ("household.rename", "h0102")
    ]
    shown = linli("community", "show", "--data-dir", data)
    assert shown.returncode == 0, shown.stderr
    assert "2 buildings, 1 units, 2 households" in shown.stdout
    home = next(line for line in shown.stdout.splitlines() if "[h0101]" in line)
    assert "101 张家" in home and "0 devices" in home and "张桂兰" in home and "张伟" in home, home
    assert "102 李宅  [h0102]" in shown.stdout, shown.stdout
    # and an account can now be added to a household, and the gateway starts with the tree
    account = linli(
        "user", "add", "zhang.wei", "--role", "household_admin", "--household", "h0101", "--data-dir", data
    )
    assert account.returncode == 0, account.stderr
    gateway = await make_gateway(data_dir=data)
    registry = gateway.registry
    assert sorted(registry.households) == ["h0101", "h0102"]
    assert registry.units["b1-u1"].building_id == "b1" and registry.buildings["b2"].name == "2号楼"
    [grandma] = [r for r in registry.household_residents("h0101") if r.name == "张桂兰"]
    assert grandma.data == {"birth_year": 1941}


@pytest.mark.slow
def test_a_bad_community_file_is_refused_naming_the_key_or_line_and_changes_nothing(tmp_path) -> None:
    data = tmp_path / "data"
    good = tmp_path / "good.toml"
    good.write_text(TREE, "utf-8")
    assert linli("community", "import", good, "--data-dir", data).returncode == 0
    db = data / "linli.db"
    before = table(db, "SELECT * FROM households ORDER BY id")
    cases = {
        # an id of the wrong shape: the key path, and the line it is on
        "bad-id.toml": (
            TREE.replace('id = "h0102"', 'id = "h 0102"').replace("102 李家", "新名字"),
            ["bad-id.toml:15: buildings[0].units[0].households[1].id", "'h 0102' is not an id"],
        ),
        # a TOML syntax error: the line
        "syntax.toml": (TREE.replace('name = "2号楼"', "name = 2号楼"), ["not valid TOML", "line 20"]),
        # JSON: an unknown key names its path; a syntax error its line and column
        "unknown.json": (
            json.dumps({"buildings": [{"id": "b3", "name": "3号楼", "units": [{"id": "u3", "floors": 9}]}]}),
            ["buildings[0].units[0].floors", "unknown key"],
        ),
        "syntax.json": (
            '{"buildings": [\n  {"id": "b3",\n   "units": [}',
            ["syntax.json:3:", "not valid JSON"],
        ),
        # a unit the database has in another building is not silently moved
        "moved.json": (
            json.dumps({"buildings": [{"id": "b2", "units": [{"id": "b1-u1", "name": "1单元"}]}]}),
            ["buildings[0].units[0].id", "is in building 'b1' already"],
        ),
        "duplicate.toml": (
            TREE.replace('id = "h0102"', 'id = "h0101"'),
            ["buildings[0].units[0].households[1].id", "already used at buildings[0].units[0].households[0]"],
        ),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text, "utf-8")
        result = linli("community", "import", path, "--data-dir", data)
        assert result.returncode == 2, (name, result)
        for part in expected:
            assert part in result.stderr, (name, part, result.stderr)
    # nothing of any bad file was written
    assert table(db, "SELECT * FROM households ORDER BY id") == before
    assert table(db, "SELECT count(*) FROM buildings") == [(2,)]


# -- /manage ----------------------------------------------------------------------------


async def test_a_manager_sets_up_a_building_unit_and_household_in_manage_then_approves_a_device_into_it(
    make_gateway, broker, tmp_path
) -> None:
    # given a gateway with an empty community, its first manager, and a device waiting in the inbox
    gateway, base = await portal_gateway(make_gateway, *DISCOVERY, discovery=discovery_config("mqtt"))
    password = await add_account(gateway, "wang.manager", "manager")
    await publish_retained(broker.port, payloads.linli_native("fr60-1b01", "FR-60", name="跌倒雷达"))
    item = await item_for(inbox_of(gateway), "linli:fr60-1b01")
    registry = gateway.registry
    async with browser_page(tmp_path, DESKTOP) as page:
        await sign_in(page, base, "wang.manager", password, "/manage")
        await page.click("#sections button[data-section=community]")
        assert "社区里还没有楼栋" in await page.inner_text("#structure-empty")
        # when the manager adds a building (Enter sends the form) …
        await page.fill("#new-building-name", "1号楼")
        await page.press("#new-building-name", "Enter")
        await page.wait_for_selector("#structure-tree li[data-building]")
        [building_id] = list(registry.buildings)
        assert registry.buildings[building_id].name == "1号楼"
        # … a unit in it (the only building is already chosen) …
        await page.fill("#new-unit-name", "1单元")
        await page.click("#add-unit button[type=submit]")
        await page.wait_for_selector(f'li[data-building="{building_id}"] li[data-unit]')
        [unit_id] = list(registry.units)
        assert registry.units[unit_id].building_id == building_id
        # … and a household in the unit, with the id the office uses
        await page.fill("#new-household-name", "101 张家")
        await page.fill("#new-household-id", "h0101")
        await page.click("#add-household button[type=submit]")
        await page.wait_for_selector('li[data-household="h0101"]')
        assert registry.households["h0101"].unit_id == unit_id
        assert "已添加" in await page.inner_text("#structure-status")
        # a rename, from the tree
        home = page.locator('li[data-household="h0101"]')
        await home.locator(".st-rename").click()
        await home.locator(".st-rename-input").fill("101 张宅")
        await home.locator(".st-rename-input").press("Enter")
        await settle(lambda: registry.households["h0101"].name == "101 张宅", timeout=5)
        # the building holds a unit: removing it is refused, saying so in the reader's words
        building = page.locator(f'li[data-building="{building_id}"] > .row .st-remove')
        await building.click()
        await building.click()  # the second click confirms
        await page.locator("#structure-status", has_text="还不能删除").wait_for(timeout=5_000)
        assert "1 个单元" in await page.inner_text("#structure-status")
        assert building_id in registry.buildings
        # then the device waiting in the inbox is approved into the new household
        await page.click("#sections button[data-section=inbox]")
        row = page.locator(f'tr[data-inbox="{item.id}"]')
        await row.locator(".i-household").select_option("h0101")
        await row.locator(".i-room").fill("卫生间")
        await row.locator(".approve").click()
        await settle(lambda: inbox_of(gateway).get(item.id).status.value == "approved", timeout=5)
    device = registry.device(inbox_of(gateway).get(item.id).device_id)
    assert (device.household_id, device.room) == ("h0101", "卫生间")
    actions = [e["action"] for e in await audit_entries(gateway) if e["actor"] == "wang.manager"]
    assert {"building.add", "unit.add", "household.add", "household.rename"} <= set(actions), actions
