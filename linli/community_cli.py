"""`linli community import FILE` and `linli community show`: the community tree on the data dir.

A property manager describes the community once — buildings, their units,
the households in each, optionally who lives there — in a TOML or JSON file,
and imports it before (or between) runs of the gateway, like `linli user add`
works on the database file. Ids are the keys: importing the same file again
changes nothing, a changed name is a rename, and nothing missing from the file
is ever removed (removal is a manager's decision, in /manage or the API).

    [[buildings]]
    id = "b1"
    name = "1号楼"

      [[buildings.units]]
      id = "b1-u1"
      name = "1单元"

        [[buildings.units.households]]
        id = "h0101"
        name = "101 张家"
        residents = [{ name = "张桂兰", birth_year = 1941 }]

A resident without an id is matched by name within the household (or gets a
new id). The whole file is checked before anything is written, and written in
one transaction: a bad file changes nothing, and the error names the key
(`buildings[0].units[1].id`) or, for a syntax error, the line.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sqlite3
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from linli.gateway.config import load_for_command

ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")
DATA_KEY: Final = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_NAME: Final = 64
LEVELS: Final = ("buildings", "units", "households", "residents")
#: Each level's keys besides its children; residents keep any other scalar as data.
KEYS: Final = {"buildings": {"id", "name"}, "units": {"id", "name"}, "households": {"id", "name"}}


class TreeFileError(ValueError):
    """A file that cannot be imported; the message names the file and the key or line."""


@dataclass(slots=True)
class Plan:
    """What an import changes: rows to add and names (or resident details) to change."""

    add: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (level, row)
    change: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(
        default_factory=list
    )  # (level, row, old)

    def __bool__(self) -> bool:
        return bool(self.add or self.change)


# -- reading the file ------------------------------------------------------------------


def read_file(path: Path) -> tuple[dict[str, Any], str]:
    """The file's data and its text: TOML unless it ends in .json; syntax errors name the line."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise TreeFileError(f"{path}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise TreeFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TreeFileError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise TreeFileError(f"{path}: not valid TOML: {exc} (JSON files must end in .json)") from None
    if not isinstance(data, dict):
        raise TreeFileError(f"{path}: the top level must be an object with a `buildings` list")
    return data, text


def _where(path: Path, key: str, text: str) -> str:
    """`file:line: key` when the offending value can be found in the text, else `file: key`."""
    return f"{path}: {key}" if not text else f"{path}:{text}: {key}"


def check_tree(data: dict[str, Any], path: Path, raw: str = "") -> list[dict[str, Any]]:
    """The file's buildings, checked level by level; raises naming the first bad key."""

    def line_of(value: Any) -> str:
        # Best effort, for people: the first line showing this value as a string.
        if not raw or not isinstance(value, str):
            return ""
        for number, line in enumerate(raw.splitlines(), 1):
            if f'"{value}"' in line or f"'{value}'" in line:
                return str(number)
        return ""

    def fail(key: str, message: str, value: Any = None) -> TreeFileError:
        return TreeFileError(f"{_where(path, key, line_of(value))}: {message}")

    unknown = set(data) - {"buildings"}
    if unknown:
        raise fail(sorted(unknown)[0], "unknown key; the file holds `buildings` (with units, households)")
    buildings = data.get("buildings")
    if not isinstance(buildings, list) or not buildings:
        raise fail("buildings", "missing or empty: list the community's buildings")
    seen: dict[str, dict[str, str]] = {level: {} for level in LEVELS}

    def walk(items: Any, level: int, key: str) -> None:
        name = LEVELS[level]
        if not isinstance(items, list):
            raise fail(key, "must be a list (in TOML: [[...]] tables)")
        for index, item in enumerate(items):
            here = f"{key}[{index}]"
            if not isinstance(item, dict):
                raise fail(here, "must be a table with `id` and `name`")
            if name == "residents":
                check_resident(item, here)
                continue
            child = LEVELS[level + 1]
            extra = set(item) - KEYS[name] - {child}
            if extra:
                allowed = ", ".join(sorted(KEYS[name] | {child}))
                raise fail(f"{here}.{sorted(extra)[0]}", f"unknown key; a {name[:-1]} has {allowed}")
            item_id = item.get("id")
            if not isinstance(item_id, str) or not ID_PATTERN.match(item_id):
                raise fail(
                    f"{here}.id",
                    f"{item_id!r} is not an id: 1-64 letters, digits or ._:@- (a letter or digit first)",
                    item_id,
                )
            if name == "households" and item_id == "discovery":
                raise fail(f"{here}.id", "'discovery' is reserved (the discovery topic)", item_id)
            if item_id in seen[name]:
                raise fail(f"{here}.id", f"{item_id!r} is already used at {seen[name][item_id]}", item_id)
            seen[name][item_id] = here
            check_name(item, here)
            if child in item:
                walk(item[child], level + 1, f"{here}.{child}")

    def check_name(item: dict[str, Any], here: str) -> None:
        value = item.get("name", item.get("id"))
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
            raise fail(f"{here}.name", f"must be text of 1 to {MAX_NAME} characters", value)

    def check_resident(item: dict[str, Any], here: str) -> None:
        if "name" not in item:
            raise fail(f"{here}.name", "missing: a resident needs a name")
        check_name(item, here)
        if "id" in item:
            rid = item["id"]
            if not isinstance(rid, str) or not ID_PATTERN.match(rid):
                raise fail(f"{here}.id", f"{rid!r} is not an id", rid)
            if rid in seen["residents"]:
                raise fail(f"{here}.id", f"{rid!r} is already used at {seen['residents'][rid]}", rid)
            seen["residents"][rid] = here
        data = item.get("data", {})
        if not isinstance(data, dict):
            raise fail(f"{here}.data", "must be a table of details (birth_year = 1941)")
        details = {**{k: v for k, v in item.items() if k not in ("id", "name", "data")}, **data}
        for key, value in details.items():
            if not DATA_KEY.match(key):
                raise fail(f"{here}.{key}", "a detail's name is lower-case letters, digits and _")
            if not isinstance(value, str | int | float | bool):
                raise fail(f"{here}.{key}", "a detail is a single value (text, number, true/false)")
        if "birth_year" in details and (
            not isinstance(details["birth_year"], int) or not 1880 <= details["birth_year"] <= 2100
        ):
            raise fail(f"{here}.birth_year", "must be a year such as 1941")

    walk(buildings, 0, "buildings")
    return buildings


def resident_data(item: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in item.items() if k not in ("id", "name", "data")}, **item.get("data", {})}


# -- planning against the database ------------------------------------------------------


def plan_import(conn: sqlite3.Connection, buildings: list[dict[str, Any]], path: Path) -> Plan:
    """Compare the file with the database: what to add, what to rename. Raises on a clash."""
    rows = {
        "buildings": {r[0]: r for r in conn.execute("SELECT id, name, id FROM buildings")},
        "units": {r[0]: r for r in conn.execute("SELECT id, name, building_id FROM units")},
        "households": {r[0]: r for r in conn.execute("SELECT id, name, unit_id FROM households")},
    }
    residents = {
        r[0]: (r[1], r[2], orjson.loads(r[3]))
        for r in conn.execute("SELECT id, name, household_id, data FROM residents")
    }
    plan = Plan()
    parent_key = {"units": "building_id", "households": "unit_id"}
    taken_resident_ids = set(residents)

    def visit(items: list[dict[str, Any]], level: int, parent: str | None, key: str) -> None:
        name = LEVELS[level]
        for index, item in enumerate(items):
            here = f"{key}[{index}]"
            if name == "residents":
                visit_resident(item, parent, here)
                continue
            item_id, label = item["id"], item.get("name", item["id"])
            existing = rows[name].get(item_id)
            if existing is not None and name in parent_key and existing[2] != parent:
                raise TreeFileError(
                    f"{path}: {here}.id: {name[:-1]} {item_id!r} is in {LEVELS[level - 1][:-1]} "
                    f"{existing[2]!r} already, not {parent!r}; moving is not done by import "
                    "(give it another id, or remove it in /manage first)"
                )
            row = {"id": item_id, "name": label, **({parent_key[name]: parent} if name in parent_key else {})}
            if existing is None:
                plan.add.append((name, row))
            elif existing[1] != label:
                plan.change.append((name, row, {"name": existing[1]}))
            child = LEVELS[level + 1]
            visit(item.get(child, []), level + 1, item_id, f"{here}.{child}")

    def visit_resident(item: dict[str, Any], household: str | None, here: str) -> None:
        data = resident_data(item)
        rid = item.get("id")
        if rid is None:  # matched by name within the household, else a new id
            rid = next(
                (k for k, (n, h, _) in residents.items() if h == household and n == item["name"]), None
            )
        if rid is not None and rid in residents and residents[rid][1] != household:
            raise TreeFileError(
                f"{path}: {here}.id: resident {rid!r} lives in household {residents[rid][1]!r}, "
                f"not {household!r}"
            )
        row = {"id": rid, "household_id": household, "name": item["name"], "data": data}
        if rid is None or rid not in residents:
            if rid is None:
                rid = _new_id("r", taken_resident_ids)
                row["id"] = rid
            taken_resident_ids.add(rid)
            plan.add.append(("residents", row))
        elif residents[rid][0] != item["name"] or residents[rid][2] != data:
            old_name, _, old_data = residents[rid]
            plan.change.append(("residents", row, {"name": old_name, "data": old_data}))

    visit(buildings, 0, None, "buildings")
    return plan


def _new_id(prefix: str, taken: set[str]) -> str:
    while True:
        candidate = f"{prefix}-{secrets.token_hex(3)}"
        if candidate not in taken:
            return candidate


def apply_plan(conn: sqlite3.Connection, plan: Plan, community: dict[str, str], source: str) -> None:
    """Write the plan (inside the caller's transaction), each change audited as the CLI's."""
    from linli.gateway import users

    now = time.time()
    conn.execute(
        "INSERT OR IGNORE INTO communities (id, name, created) VALUES (?, ?, ?)",
        (community["id"], community["name"], now),
    )
    for level, row in plan.add:
        if level == "buildings":
            conn.execute(
                "INSERT INTO buildings (id, community_id, name) VALUES (?, ?, ?)",
                (row["id"], community["id"], row["name"]),
            )
        elif level == "units":
            conn.execute(
                "INSERT INTO units (id, building_id, name) VALUES (?, ?, ?)",
                (row["id"], row["building_id"], row["name"]),
            )
        elif level == "households":
            conn.execute(
                "INSERT INTO households (id, unit_id, name, created) VALUES (?, ?, ?, ?)",
                (row["id"], row["unit_id"], row["name"], now),
            )
        else:
            conn.execute(
                "INSERT INTO residents (id, household_id, name, created, data) VALUES (?, ?, ?, ?, ?)",
                (row["id"], row["household_id"], row["name"], now, orjson.dumps(row["data"]).decode()),
            )
        users.append_audit(
            conn,
            actor="cli",
            action=f"{level[:-1]}.add",
            household_id=row["id"] if level == "households" else row.get("household_id"),
            target=row["id"],
            detail={"name": row["name"], "source": source},
        )
    for level, row, old in plan.change:
        if level == "residents":
            conn.execute(
                "UPDATE residents SET name = ?, data = ? WHERE id = ?",
                (row["name"], orjson.dumps(row["data"]).decode(), row["id"]),
            )
            action = "resident.update"
        else:
            conn.execute(f"UPDATE {level} SET name = ? WHERE id = ?", (row["name"], row["id"]))
            action = f"{level[:-1]}.rename"
        users.append_audit(
            conn,
            actor="cli",
            action=action,
            household_id=row["id"] if level == "households" else row.get("household_id"),
            target=row["id"],
            detail={"old": old["name"], "name": row["name"], "source": source},
        )


# -- the commands --------------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    """Add `linli community import|show` to the `linli` command's subparsers."""
    community = commands.add_parser("community", help="the community tree: buildings, units, households")
    actions = community.add_subparsers(dest="community_command", metavar="ACTION")
    load = actions.add_parser(
        "import", help="add or rename buildings, units, households (and residents) from a TOML/JSON file"
    )
    load.add_argument("file", type=Path, help="TOML (or .json) file: [[buildings]] → units → households")
    load.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    show = actions.add_parser("show", help="print the tree with device and resident counts")
    show.add_argument("--json", action="store_true", help="JSON instead of the indented tree")
    for sub in (load, show):
        sub.add_argument("--config", type=Path, help="TOML config file (for data_dir and the community)")
        sub.add_argument("--data-dir", type=Path, help="where the database lives (default ./linli-data)")


def main(args: argparse.Namespace) -> int:
    if args.community_command not in ("import", "show"):
        print("linli: usage: linli community import FILE | linli community show", file=sys.stderr)
        return 2
    from linli.gateway.store.database import connect
    from linli.gateway.store.migrations import migrate

    config = load_for_command(args.config, {"data_dir": str(args.data_dir)} if args.data_dir else None)
    if config is None:
        return 2
    db_path = Path(config["data_dir"]).expanduser().resolve() / "linli.db"
    if args.community_command == "show":
        if not db_path.exists():
            print(f"linli: no database at {db_path} yet: import a tree or run the gateway", file=sys.stderr)
            return 2
        conn = connect(db_path, readonly=True)
        try:
            tree = read_tree(conn)
        finally:
            conn.close()
        print(json.dumps(tree, ensure_ascii=False, indent=2) if args.json else format_tree(tree, config))
        return 0
    try:
        data, text = read_file(args.file)
        buildings = check_tree(data, args.file, text)
    except TreeFileError as exc:
        print(f"linli: {exc}", file=sys.stderr)
        return 2
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(db_path)
    try:
        migrate(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            plan = plan_import(conn, buildings, args.file)
            if plan and not args.dry_run:
                apply_plan(conn, plan, config["community"], args.file.name)
        except TreeFileError as exc:
            conn.execute("ROLLBACK")
            print(f"linli: {exc}", file=sys.stderr)
            return 2
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("ROLLBACK" if args.dry_run else "COMMIT")
    finally:
        conn.close()
    print(describe(plan, args.dry_run))
    return 0


def describe(plan: Plan, dry_run: bool) -> str:
    if not plan:
        return "Nothing to change: the database already matches the file."
    counts = []
    for level in LEVELS:
        added = sum(1 for lv, _ in plan.add if lv == level)
        changed = sum(1 for lv, _, _ in plan.change if lv == level)
        if added or changed:
            counts.append(f"{level}: {added} added, {changed} changed")
    verb = "Would change (dry run, nothing written)" if dry_run else "Imported"
    lines = [f"{verb} — " + "; ".join(counts)]
    if not dry_run:
        lines.append("A running gateway reads the tree when it starts: restart it to see the changes.")
    return "\n".join(lines)


def read_tree(conn: sqlite3.Connection) -> dict[str, Any]:
    """The whole tree from the database, with device counts and residents per household."""
    community = conn.execute("SELECT id, name FROM communities ORDER BY created LIMIT 1").fetchone()
    devices = dict(conn.execute("SELECT household_id, count(*) FROM devices GROUP BY household_id"))
    residents: dict[str, list[dict[str, Any]]] = {}
    for rid, hid, name, data in conn.execute(
        "SELECT id, household_id, name, data FROM residents ORDER BY id"
    ):
        residents.setdefault(hid, []).append({"id": rid, "name": name, "data": orjson.loads(data)})
    households: dict[str, list[dict[str, Any]]] = {}
    for hid, uid, name in conn.execute("SELECT id, unit_id, name FROM households ORDER BY id"):
        households.setdefault(uid, []).append(
            {"id": hid, "name": name, "devices": devices.get(hid, 0), "residents": residents.get(hid, [])}
        )
    units: dict[str, list[dict[str, Any]]] = {}
    for uid, bid, name in conn.execute("SELECT id, building_id, name FROM units ORDER BY id"):
        units.setdefault(bid, []).append({"id": uid, "name": name, "households": households.get(uid, [])})
    buildings = [
        {"id": bid, "name": name, "units": units.get(bid, [])}
        for bid, name in conn.execute("SELECT id, name FROM buildings ORDER BY id")
    ]
    return {
        "id": community[0] if community else None,
        "name": community[1] if community else None,
        "buildings": buildings,
    }


def format_tree(tree: dict[str, Any], config: dict[str, Any]) -> str:
    name = tree["name"] or config["community"]["name"]
    buildings = tree["buildings"]
    units = [u for b in buildings for u in b["units"]]
    homes = [h for u in units for h in u["households"]]
    lines = [f"{name}: {len(buildings)} buildings, {len(units)} units, {len(homes)} households"]
    for building in buildings:
        lines.append(f"  {building['name']}  [{building['id']}]")
        for unit in building["units"]:
            lines.append(f"    {unit['name']}  [{unit['id']}]")
            for home in unit["households"]:
                people = ", ".join(r["name"] for r in home["residents"]) or "no residents"
                lines.append(f"      {home['name']}  [{home['id']}]  {home['devices']} devices; {people}")
    if not buildings:
        lines.append("  (empty: `linli community import FILE`, or /manage → Community)")
    return "\n".join(lines)
