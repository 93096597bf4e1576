"""Setting up the community: buildings, units in them, households in units, and their residents.

The manager builds the tree a real community needs before any device can be
approved into a home; an installer may read it (to know where a device goes).
Every change is audited. A part of the tree is removed only when empty — a
building without units, a unit without households, a household without
devices, residents or accounts — and otherwise the answer is a `conflict`
that says what to remove first.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

from linli.gateway.registry import Household, RegistryError, StructureInUse
from linli.gateway.users import Role
from linli.portal.api.announcements import ANNOUNCEMENTS
from linli.portal.api.errors import ApiError, not_found
from linli.portal.api.operations import ID, Api, Call, obj, text
from linli.portal.api.privacy import purge
from linli.portal.auth.middleware import ACCOUNTS

TAG: Final = "structure"
READERS: Final = (Role.MANAGER, Role.INSTALLER)
EDITORS: Final = (Role.MANAGER,)
NAME: Final = text(64)
#: A resident's optional details (birth year, notes): small and flat.
RESIDENT_DATA: Final = {
    "type": "object",
    "maxProperties": 16,
    "propertyNames": {"pattern": r"^[a-z][a-z0-9_]{0,31}$"},
    "additionalProperties": {"type": ["string", "integer", "number", "boolean", "null"]},
    "properties": {
        "birth_year": {"type": "integer", "minimum": 1880, "maximum": 2100},
    },
}
NEW: Final = obj({"id": ID, "name": NAME}, ["name"])
RENAME: Final = obj({"name": NAME}, ["name"])


def new_id(prefix: str, taken: Any) -> str:
    """A short id nobody has: `b-3f9a1c`, `u-…`, `h-…`, `r-…`."""
    while True:
        candidate = f"{prefix}-{secrets.token_hex(3)}"
        if candidate not in taken:
            return candidate


def pick_id(call: Call, prefix: str, taken: Any, kind: str) -> str:
    wanted = call.body.get("id")
    if wanted is None:
        return new_id(prefix, taken)
    if wanted in taken:
        raise ApiError("conflict", f"{kind} id {wanted!r} is taken: choose another, or leave `id` out")
    return str(wanted)


def tree(call: Call) -> dict[str, Any]:
    """Every building, unit and household (empty ones too), with what each holds."""
    registry = call.gateway.registry
    units_of: dict[str, list[Any]] = {}
    for unit in registry.units.values():
        units_of.setdefault(unit.building_id, []).append(unit)
    homes_of: dict[str, list[Household]] = {}
    for household in registry.households.values():
        homes_of.setdefault(household.unit_id, []).append(household)

    # An installer places devices: the homes, not the people in them.
    people = call.principal.role is Role.MANAGER

    def home(h: Household) -> dict[str, Any]:
        residents = registry.household_residents(h.id) if people else []
        return {
            "id": h.id,
            "name": h.name,
            "devices": len(registry.household_devices(h.id)),
            "residents": [{"id": r.id, "name": r.name, "data": r.data} for r in residents],
        }

    buildings = [
        {
            "id": b.id,
            "name": b.name,
            "units": [
                {
                    "id": u.id,
                    "name": u.name,
                    "households": [home(h) for h in sorted(homes_of.get(u.id, []), key=lambda h: h.id)],
                }
                for u in sorted(units_of.get(b.id, []), key=lambda u: u.id)
            ],
        }
        for b in sorted(registry.buildings.values(), key=lambda b: b.id)
    ]
    return {
        "id": registry.community_id,
        "name": registry.community_name,
        "buildings": buildings,
        "totals": {
            "buildings": len(registry.buildings),
            "units": len(registry.units),
            "households": len(registry.households),
            "residents": len(registry.residents) if people else None,
        },
    }


async def audit(call: Call, action: str, target: str, household_id: str | None = None, **detail: Any) -> None:
    await call.request.app[ACCOUNTS].async_audit(
        call.principal, action, household_id=household_id, target=target, detail=detail or None, ip=call.ip
    )


def refused(exc: RegistryError) -> ApiError:
    if isinstance(exc, StructureInUse):
        return ApiError("conflict", str(exc), holds=exc.holds)
    return ApiError("invalid", str(exc))


#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()


@ROUTES.op(
    "GET",
    "/api/v1/structure",
    summary="Read the whole community tree to set it up: every building, unit and household",
    tag=TAG,
    roles=READERS,
    description=(
        "Empty buildings and units are listed too, with each household's device count and "
        "(for a manager) its residents; an installer sees no people."
    ),
)
async def read(call: Call) -> dict[str, Any]:
    return tree(call)


# -- buildings ---------------------------------------------------------------------


@ROUTES.op(
    "POST",
    "/api/v1/buildings",
    summary="Add a building (audited)",
    tag=TAG,
    roles=EDITORS,
    body=NEW,
    status=201,
    description="Give `id` to choose it (letters, digits, `._:@-`), or leave it out for a generated one.",
)
async def add_building(call: Call) -> dict[str, Any]:
    registry = call.gateway.registry
    building_id = pick_id(call, "b", registry.buildings, "building")
    building = await registry.async_add_building(building_id, call.body["name"])
    await audit(call, "building.add", building.id, name=building.name)
    return {"id": building.id, "name": building.name, "units": []}


@ROUTES.op(
    "PATCH",
    "/api/v1/buildings/{building_id}",
    summary="Rename a building (audited)",
    tag=TAG,
    roles=EDITORS,
    body=RENAME,
)
async def rename_building(call: Call) -> dict[str, Any]:
    return await rename(call, "building", call.path["building_id"])


@ROUTES.op(
    "DELETE",
    "/api/v1/buildings/{building_id}",
    summary="Remove an empty building (audited; conflict while it has units)",
    tag=TAG,
    roles=EDITORS,
)
async def remove_building(call: Call) -> dict[str, Any]:
    return await remove(call, "building", call.path["building_id"])


# -- units -------------------------------------------------------------------------


@ROUTES.op(
    "POST",
    "/api/v1/buildings/{building_id}/units",
    summary="Add a unit (an entrance, a floor, a stairwell) to a building (audited)",
    tag=TAG,
    roles=EDITORS,
    body=NEW,
    status=201,
)
async def add_unit(call: Call) -> dict[str, Any]:
    registry = call.gateway.registry
    building_id = call.path["building_id"]
    if building_id not in registry.buildings:
        raise not_found(f"building {building_id!r}")
    unit_id = pick_id(call, "u", registry.units, "unit")
    unit = await registry.async_add_unit(unit_id, building_id, call.body["name"])
    await audit(call, "unit.add", unit.id, building_id=building_id, name=unit.name)
    return {"id": unit.id, "building_id": building_id, "name": unit.name, "households": []}


@ROUTES.op(
    "PATCH",
    "/api/v1/units/{unit_id}",
    summary="Rename a unit (audited)",
    tag=TAG,
    roles=EDITORS,
    body=RENAME,
)
async def rename_unit(call: Call) -> dict[str, Any]:
    return await rename(call, "unit", call.path["unit_id"])


@ROUTES.op(
    "DELETE",
    "/api/v1/units/{unit_id}",
    summary="Remove an empty unit (audited; conflict while it has households)",
    tag=TAG,
    roles=EDITORS,
)
async def remove_unit(call: Call) -> dict[str, Any]:
    return await remove(call, "unit", call.path["unit_id"])


# -- households --------------------------------------------------------------------


@ROUTES.op(
    "POST",
    "/api/v1/units/{unit_id}/households",
    summary="Add a household to a unit, with the name people know it by (audited)",
    tag=TAG,
    roles=EDITORS,
    body=NEW,
    status=201,
)
async def add_household(call: Call) -> dict[str, Any]:
    registry = call.gateway.registry
    unit_id = call.path["unit_id"]
    if unit_id not in registry.units:
        raise not_found(f"unit {unit_id!r}")
    household_id = pick_id(call, "h", registry.households, "household")
    try:
        household = await registry.async_add_household(household_id, unit_id, call.body["name"])
    except RegistryError as exc:
        raise refused(exc) from None
    await audit(call, "household.add", household.id, household.id, unit_id=unit_id, name=household.name)
    return {"id": household.id, "unit_id": unit_id, "name": household.name, "devices": 0, "residents": []}


@ROUTES.op(
    "PATCH",
    "/api/v1/households/{household_id}",
    summary="Rename a household (audited)",
    tag=TAG,
    roles=EDITORS,
    body=RENAME,
)
async def rename_household(call: Call) -> dict[str, Any]:
    return await rename(call, "household", call.household_id)


@ROUTES.op(
    "DELETE",
    "/api/v1/households/{household_id}",
    summary="Remove a household (audited; conflict while it has devices, residents or accounts)",
    tag=TAG,
    roles=EDITORS,
    description=(
        "Its alarm panel, care settings and reminders go with it, and so does its history "
        "(alerts, readings, check-ins): nothing that names the household stays. Its lines in "
        "the audit log keep what was done and when, under a pseudonym."
    ),
)
async def remove_household(call: Call) -> dict[str, Any]:
    return await remove(call, "household", call.household_id)


# -- residents ---------------------------------------------------------------------


@ROUTES.op(
    "POST",
    "/api/v1/households/{household_id}/residents",
    summary="Add a person living in a household (audited)",
    tag=TAG,
    roles=EDITORS,
    body=obj({"id": ID, "name": NAME, "data": RESIDENT_DATA}, ["name"]),
    status=201,
    description="`data` holds optional details such as `birth_year`.",
)
async def add_resident(call: Call) -> dict[str, Any]:
    registry = call.gateway.registry
    resident_id = pick_id(call, "r", registry.residents, "resident")
    resident = await registry.async_add_resident(
        resident_id, call.household_id, call.body["name"], data=call.body.get("data")
    )
    await audit(call, "resident.add", resident.id, call.household_id)
    return resident.as_dict()


@ROUTES.op(
    "PATCH",
    "/api/v1/households/{household_id}/residents/{resident_id}",
    summary="Change a resident's name or details (audited)",
    tag=TAG,
    roles=EDITORS,
    body=obj({"name": NAME, "data": RESIDENT_DATA}, minProperties=1),
)
async def change_resident(call: Call) -> dict[str, Any]:
    registry = call.gateway.registry
    resident = registry.residents.get(call.path["resident_id"])
    if resident is None or resident.household_id != call.household_id:
        raise not_found(f"resident {call.path['resident_id']!r}")
    changed = await registry.async_add_resident(
        resident.id,
        call.household_id,
        call.body.get("name", resident.name),
        data=call.body.get("data", resident.data),
    )
    await audit(call, "resident.update", resident.id, call.household_id, fields=sorted(call.body))
    return changed.as_dict()


@ROUTES.op(
    "DELETE",
    "/api/v1/households/{household_id}/residents/{resident_id}",
    summary="Remove a resident who moved out (audited; their devices become shared)",
    tag=TAG,
    roles=EDITORS,
    description="Their readings and check-ins stay in the household's history.",
)
async def remove_resident(call: Call) -> dict[str, Any]:
    registry = call.gateway.registry
    resident = registry.residents.get(call.path["resident_id"])
    if resident is None or resident.household_id != call.household_id:
        raise not_found(f"resident {call.path['resident_id']!r}")
    await registry.async_remove_resident(resident.id)
    await audit(call, "resident.remove", resident.id, call.household_id)
    return {"removed": resident.id}


async def rename(call: Call, kind: str, item_id: str) -> dict[str, Any]:
    registry = call.gateway.registry
    _, items = registry.structure_of(kind)
    if item_id not in items:
        raise not_found(f"{kind} {item_id!r}")
    old = items[item_id].name
    item = await registry.async_rename(kind, item_id, call.body["name"])
    household = item_id if kind == "household" else None
    await audit(call, f"{kind}.rename", item_id, household, old=old, name=item.name)
    return {"id": item.id, "name": item.name}


async def remove(call: Call, kind: str, item_id: str) -> dict[str, Any]:
    """Remove an empty building, unit or household (a conflict names what it still holds)."""
    registry = call.gateway.registry
    _, items = registry.structure_of(kind)
    if item_id not in items:
        raise not_found(f"{kind} {item_id!r}")
    try:
        await getattr(registry, f"async_remove_{kind}")(item_id)
    except RegistryError as exc:
        raise refused(exc) from None
    if kind == "household":
        # nothing may name it any more: its history, keys' scopes, announcements, audit lines
        await call.gateway.store.async_flush()
        pseudonym = await call.gateway.store.async_write(lambda db: purge(db.conn, item_id))
        book = call.request.app[ANNOUNCEMENTS]
        for gone in [a.id for a in book.items.values() if a.scope == "household" and a.scope_id == item_id]:
            del book.items[gone]
        await audit(call, "household.remove", pseudonym, pseudonym)
        return {"removed": item_id}
    await audit(call, f"{kind}.remove", item_id)
    return {"removed": item_id}
