"""The registry: community → building → unit → household → devices → capability state.

Structure changes (a household, a device) are written durably through the
store before they are visible. Capability state lives in memory for the hot
path; every report is appended to the store's telemetry batch, which also
keeps `capability_state` current on disk so that state survives a restart.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Final

import orjson
import sqlite_utils

from linli.gateway.bus import EventBus
from linli.gateway.context import Context
from linli.gateway.events import (
    AvailabilityChanged,
    DeviceAdded,
    DeviceRemoved,
    HouseholdAdded,
    HouseholdRemoved,
    ProfilesChanged,
    ResidentRemoved,
    StateChanged,
    TelemetryReceived,
)
from linli.gateway.profiles import Profile, ProfileSet
from linli.gateway.store import Store

_LOGGER = logging.getLogger(__name__)


LAST_SEEN_EVERY_S: Final = 300.0
AVAILABILITY_ROWS: Final = 100  # rows per transaction when availability is written (~10 ms)


@dataclass(slots=True)
class _Dormant:
    """A stored device whose profile is not loaded: its row and last states, kept for `revive`."""

    stored: tuple[Any, ...]
    states: dict[str, CapabilityState] = field(default_factory=dict)


class RegistryError(ValueError):
    """A registry change that cannot be made; the message says which id and why."""


class StructureInUse(RegistryError):
    """A building, unit or household that still holds something cannot be removed.

    `holds` counts what is left in it ({"households": 2, "devices": 1, ...}), so that
    a caller can say what to remove first.
    """

    def __init__(self, message: str, holds: dict[str, int]) -> None:
        super().__init__(message)
        self.holds = holds


#: The language a name is shown in when a reader's language has no form of it (Chinese first).
PRIMARY_LOCALE: Final = "zh-CN"


def name_forms(value: str | dict[str, str] | None) -> dict[str, str]:
    """A name's forms by language: `"前门"` → {"zh-CN": "前门"}; a dict passes (empty forms dropped).

    A device's or room's name may be given in several languages, e.g. the demo's
    `{"zh-CN": "前门", "en": "Front door"}`; a plain string (all older names) is one form.
    """
    if value is None:
        return {}
    if isinstance(value, str):
        return {PRIMARY_LOCALE: value} if value else {}
    return {k: v for k, v in value.items() if isinstance(v, str) and v}


def primary_name(forms: dict[str, str]) -> str:
    """The form shown where there is no reader's language (alert titles, logs): Chinese first."""
    return forms.get(PRIMARY_LOCALE) or next(iter(forms.values()), "")


def encode_name(value: str | dict[str, str] | None) -> str | None:
    """How a name is kept in its text column: a single form as itself, several as a JSON object.

    Keeping a single form as plain text leaves every name written before bilingual names valid.
    """
    forms = name_forms(value)
    if not forms:
        return None if value is None else ""
    if list(forms) == [PRIMARY_LOCALE]:
        return forms[PRIMARY_LOCALE]
    return orjson.dumps(forms).decode()


def decode_name(text: str | None) -> dict[str, str]:
    """The forms of a name read back from its column (plain text is a single Chinese form)."""
    if text and text.startswith("{"):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            return {PRIMARY_LOCALE: text}
        if isinstance(value, dict):
            return name_forms(value)
    return name_forms(text)


def _in_use(what: str, holds: dict[str, int], then: str) -> StructureInUse:
    left = ", ".join(f"{count} {name}" for name, count in holds.items())
    return StructureInUse(f"{what} still has {left}: {then} first", holds)


@dataclass(slots=True, kw_only=True)
class Building:
    id: str
    community_id: str
    name: str


@dataclass(slots=True, kw_only=True)
class Unit:
    id: str
    building_id: str
    name: str


@dataclass(slots=True, kw_only=True)
class Household:
    id: str
    unit_id: str
    name: str
    created: float


@dataclass(slots=True, kw_only=True)
class Resident:
    """A person living in a household (care and health readings are per resident)."""

    id: str
    household_id: str
    name: str
    created: float
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "household_id": self.household_id, "name": self.name, "data": self.data}


@dataclass(slots=True)
class CapabilityState:
    value: Any
    last_changed: float
    last_reported: float


@dataclass(slots=True, kw_only=True)
class Device:
    row: int
    id: str
    household_id: str
    name: str
    room: str | None
    profile: Profile
    firmware: str | None
    topic: str
    unique_id: str | None
    created: float
    available: bool = False
    last_seen: float | None = None
    resident_id: str | None = None
    states: dict[str, CapabilityState] = field(default_factory=dict)
    # Every language's form of `name` and `room` (which hold the Chinese, or only, form).
    names: dict[str, str] = field(default_factory=dict)
    room_names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def named(cls, *, name: str | dict[str, str], room: str | dict[str, str] | None, **kwargs: Any) -> Device:
        """A device whose name and room may each be given in several languages."""
        names, rooms = name_forms(name), name_forms(room)
        return cls(
            name=primary_name(names),
            room=primary_name(rooms) or None,
            names=names,
            room_names=rooms,
            **kwargs,
        )

    def label_forms(self) -> dict[str, dict[str, str]]:
        """The name and room in every language a page may show them in (`device`, `room`)."""
        return {
            "device": self.names or {PRIMARY_LOCALE: self.name},
            **({"room": self.room_names or {PRIMARY_LOCALE: self.room}} if self.room else {}),
        }

    def resolve_topic(self, template: str) -> str:
        """`~/set` → `<state topic>/set` (Home Assistant's `~` convention)."""
        return self.topic + template[1:] if template.startswith("~") else template

    @property
    def availability_topic(self) -> str | None:
        template = self.profile.availability_topic
        return self.resolve_topic(template) if template else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "household_id": self.household_id,
            "name": self.name,
            "room": self.room,
            "names": self.names or {PRIMARY_LOCALE: self.name},
            "room_names": self.room_names or ({PRIMARY_LOCALE: self.room} if self.room else {}),
            "profile": self.profile.id,
            "model": f"{self.profile.vendor} {self.profile.model}",
            "firmware": self.firmware,
            "topic": self.topic,
            "available": self.available,
            "last_seen": self.last_seen,
            "resident_id": self.resident_id,
            "capabilities": [
                {
                    "key": cap.key,
                    "kind": cap.kind,
                    "unit": cap.unit,
                    "access": cap.access,
                    **(
                        {
                            "value": st.value,
                            "last_changed": st.last_changed,
                            "last_reported": st.last_reported,
                        }
                        if (st := self.states.get(cap.key)) is not None
                        else {"value": None, "last_changed": None, "last_reported": None}
                    ),
                }
                for cap in self.profile.capabilities
            ],
        }


class Registry:
    """Who lives where and what devices they have, with the current state of each."""

    def __init__(self, store: Store, bus: EventBus, profiles: ProfileSet, community_id: str) -> None:
        self._store = store
        self._bus = bus
        self._profiles = profiles
        self.community_id = community_id
        self.community_name = community_id
        self.buildings: dict[str, Building] = {}
        self.units: dict[str, Unit] = {}
        self.households: dict[str, Household] = {}
        self.devices: dict[str, Device] = {}
        self.residents: dict[str, Resident] = {}
        self._persisted: dict[int, tuple[bool, float | None]] = {}  # row → (available, last_seen) on disk
        self._last_seen_written = 0.0
        self._residents_by_household: dict[str, dict[str, Resident]] = {}
        self._by_topic: dict[str, Device] = {}
        self._by_household: dict[str, dict[str, Device]] = {}
        self.unknown_profile_devices: list[str] = []
        self._dormant: dict[str, _Dormant] = {}  # devices whose profile was not loaded (yet)
        # a profile installed later (a reload of the profile folders) brings its devices back
        bus.listen(ProfilesChanged, self._on_profiles_changed)

    def _on_profiles_changed(self, _event: ProfilesChanged) -> None:
        if self._dormant:
            self.revive()

    # -- loading ---------------------------------------------------------------

    async def async_load(self, community_name: str) -> None:
        """Load the whole registry (and last known states) from the store."""
        now = time.time()

        def ensure_community(db: sqlite_utils.Database) -> None:
            db.conn.execute(
                "INSERT INTO communities (id, name, created) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name = excluded.name",
                (self.community_id, community_name, now),
            )

        await self._store.async_write(ensure_community)
        self.community_name = community_name

        def read(conn: sqlite3.Connection) -> tuple[list[Any], ...]:
            return (
                conn.execute(
                    "SELECT id, community_id, name FROM buildings WHERE community_id = ?",
                    (self.community_id,),
                ).fetchall(),
                conn.execute("SELECT id, building_id, name FROM units").fetchall(),
                conn.execute("SELECT id, unit_id, name, created FROM households").fetchall(),
                conn.execute(
                    "SELECT row, id, household_id, name, room, profile_id, firmware, topic, "
                    "unique_id, created, available, last_seen, resident_id FROM devices"
                ).fetchall(),
                conn.execute("SELECT id, household_id, name, created, data FROM residents").fetchall(),
                conn.execute(
                    "SELECT device_row, capability, value, last_changed, last_reported FROM capability_state"
                ).fetchall(),
            )

        buildings, units, households, devices, residents, states = await self._store.async_read(read)
        for bid, cid, name in buildings:
            self.buildings[bid] = Building(id=bid, community_id=cid, name=name)
        for uid, bid, name in units:
            if bid in self.buildings:
                self.units[uid] = Unit(id=uid, building_id=bid, name=name)
        for hid, uid, name, created in households:
            self.households[hid] = Household(id=hid, unit_id=uid, name=name, created=created)
        by_row: dict[int, Device] = {}
        for rid, hid, name, created, data in residents:
            self._index_resident(
                Resident(id=rid, household_id=hid, name=name, created=created, data=orjson.loads(data))
            )
        for stored in devices:
            did, pid = stored[1], stored[5]
            device = self._device_from_row(stored)
            if device is None:
                # Kept, not dropped: a profile an adapter builds (an ESPHome node's) arrives after
                # the registry has loaded; `revive()` brings the device back when it does.
                self._dormant[did] = _Dormant(stored=stored)
                self.unknown_profile_devices.append(did)
                _LOGGER.warning(
                    "device %s uses profile %r, which is not loaded (yet): the device waits until "
                    "the profile is installed",
                    did,
                    pid,
                )
                continue
            self._index(device)
            by_row[device.row] = device
        dormant_rows = {d.stored[0]: d for d in self._dormant.values()}
        loads = orjson.loads
        for row, cap, value, changed, reported in states:
            owner = by_row.get(row)
            if owner is not None:
                owner.states[cap] = CapabilityState(loads(value), changed, reported)
            elif row in dormant_rows:
                dormant_rows[row].states[cap] = CapabilityState(loads(value), changed, reported)

    def _device_from_row(self, stored: tuple[Any, ...]) -> Device | None:
        row, did, hid, name, room, pid, fw, topic, uniq, created, _avail, seen, rid = stored
        profile = self._profiles.get(pid)
        if profile is None:
            return None
        return Device.named(
            row=row,
            id=did,
            household_id=hid,
            name=decode_name(name),
            room=decode_name(room),
            profile=profile,
            firmware=fw,
            topic=topic,
            unique_id=uniq,
            created=created,
            available=False,
            last_seen=seen,
            resident_id=rid,
        )

    def revive(self) -> list[Device]:
        """Bring back the devices whose profile was missing at load and is installed now.

        In memory only (their rows never left the database); returns the devices revived.
        """
        revived = []
        for did, dormant in list(self._dormant.items()):
            if dormant.stored[2] not in self.households:  # its household was removed meanwhile
                continue
            device = self._device_from_row(dormant.stored)
            if device is None:
                continue
            device.states.update(dormant.states)
            del self._dormant[did]
            if did in self.unknown_profile_devices:
                self.unknown_profile_devices.remove(did)
            self._index(device)
            revived.append(device)
            _LOGGER.info("device %s is back: its profile %s is installed", did, device.profile.id)
        return revived

    def _index(self, device: Device) -> None:
        self.devices[device.id] = device
        self._by_topic[device.topic] = device
        self._by_household.setdefault(device.household_id, {})[device.id] = device

    # -- structure ---------------------------------------------------------------

    async def async_add_building(self, building_id: str, name: str) -> Building:
        building = Building(id=building_id, community_id=self.community_id, name=name)
        await self._store.async_write(
            lambda db: db.table("buildings").upsert(
                {"id": building_id, "community_id": self.community_id, "name": name}, pk="id"
            )
        )
        self.buildings[building_id] = building
        return building

    async def async_add_unit(self, unit_id: str, building_id: str, name: str) -> Unit:
        if building_id not in self.buildings:
            raise RegistryError(f"unit {unit_id!r}: no building {building_id!r}; add it first")
        await self._store.async_write(
            lambda db: db.table("units").upsert(
                {"id": unit_id, "building_id": building_id, "name": name}, pk="id"
            )
        )
        unit = self.units[unit_id] = Unit(id=unit_id, building_id=building_id, name=name)
        return unit

    async def async_add_household(
        self, household_id: str, unit_id: str, name: str, *, context: Context | None = None
    ) -> Household:
        if unit_id not in self.units:
            raise RegistryError(f"household {household_id!r}: no unit {unit_id!r}; add it first")
        if household_id == "discovery":
            raise RegistryError("household id 'discovery' is reserved for linli/v1/discovery")
        created = time.time()
        await self._store.async_write(
            lambda db: db.table("households").upsert(
                {"id": household_id, "unit_id": unit_id, "name": name, "created": created},
                pk="id",
            )
        )
        household = Household(id=household_id, unit_id=unit_id, name=name, created=created)
        self.households[household_id] = household
        self._bus.fire(
            HouseholdAdded(
                household_id=household_id,
                context=context or Context(household=household_id, origin="registry"),
            )
        )
        return household

    async def async_rename(self, kind: str, item_id: str, name: str) -> Building | Unit | Household:
        """Rename a building, unit or household (`kind`: building | unit | household)."""
        table, items = self.structure_of(kind)
        item = items.get(item_id)
        if item is None:
            raise RegistryError(f"no {kind} {item_id!r}")
        await self._store.async_write(
            lambda db: db.conn.execute(f"UPDATE {table} SET name = ? WHERE id = ?", (name, item_id))
        )
        item.name = name
        return item  # type: ignore[no-any-return]

    def structure_of(self, kind: str) -> tuple[str, dict[str, Any]]:
        if kind == "building":
            return "buildings", self.buildings
        if kind == "unit":
            return "units", self.units
        if kind == "household":
            return "households", self.households
        raise RegistryError(f"no such part of the community tree: {kind!r}")

    async def async_remove_building(self, building_id: str) -> None:
        """Remove an empty building; refused (StructureInUse) while units are in it."""
        if building_id not in self.buildings:
            raise RegistryError(f"no building {building_id!r}")

        def delete(db: sqlite_utils.Database) -> None:
            # Counted on disk, in the same transaction: what memory skipped counts too.
            (units,) = db.conn.execute(
                "SELECT count(*) FROM units WHERE building_id = ?", (building_id,)
            ).fetchone()
            if units:
                raise _in_use(f"building {building_id!r}", {"units": units}, "remove its units")
            db.conn.execute("DELETE FROM buildings WHERE id = ?", (building_id,))

        await self._store.async_write(delete)
        del self.buildings[building_id]

    async def async_remove_unit(self, unit_id: str) -> None:
        """Remove an empty unit; refused (StructureInUse) while households are in it."""
        if unit_id not in self.units:
            raise RegistryError(f"no unit {unit_id!r}")

        def delete(db: sqlite_utils.Database) -> None:
            (households,) = db.conn.execute(
                "SELECT count(*) FROM households WHERE unit_id = ?", (unit_id,)
            ).fetchone()
            if households:
                raise _in_use(f"unit {unit_id!r}", {"households": households}, "remove its households")
            db.conn.execute("DELETE FROM units WHERE id = ?", (unit_id,))

        await self._store.async_write(delete)
        del self.units[unit_id]

    async def async_remove_household(self, household_id: str) -> None:
        """Remove a household nobody lives in and no device belongs to.

        Refused (StructureInUse) while it has devices, residents or portal accounts.
        What is left of it otherwise — its alarm panel, care settings and reminders —
        is per-household configuration and goes with it, in the same transaction
        (every table whose rows point at the household, found from the schema, so a
        later migration's table is covered too). History (alerts, readings, audit)
        is not tied to the row and stays.
        """
        if household_id not in self.households:
            raise RegistryError(f"no household {household_id!r}")

        def delete(db: sqlite_utils.Database) -> None:
            conn = db.conn
            holds = {
                name: conn.execute(
                    f"SELECT count(*) FROM {table} WHERE household_id = ?", (household_id,)
                ).fetchone()[0]
                for name, table in (("devices", "devices"), ("residents", "residents"), ("accounts", "users"))
            }
            holds = {name: count for name, count in holds.items() if count}
            if holds:
                raise _in_use(
                    f"household {household_id!r}",
                    holds,
                    "remove or move its " + ", ".join(holds),
                )
            _delete_referring(conn, "households", "id", [household_id])
            conn.execute("DELETE FROM households WHERE id = ?", (household_id,))

        await self._store.async_write(delete)
        del self.households[household_id]
        self._by_household.pop(household_id, None)
        self._residents_by_household.pop(household_id, None)
        self._bus.fire(
            HouseholdRemoved(
                household_id=household_id, context=Context(household=household_id, origin="registry")
            )
        )

    async def async_add_device(
        self,
        device_id: str,
        *,
        household_id: str,
        name: str | dict[str, str],
        profile_id: str,
        topic: str,
        room: str | dict[str, str] | None = None,
        firmware: str | None = None,
        unique_id: str | None = None,
        context: Context | None = None,
    ) -> Device:
        """Adopt a device into a household (durably), ready to receive its telemetry."""
        if household_id not in self.households:
            raise RegistryError(f"device {device_id!r}: no household {household_id!r}")
        profile = self._profiles.get(profile_id)
        if profile is None:
            raise RegistryError(
                f"device {device_id!r}: no firmware profile {profile_id!r}; "
                f"known: {', '.join(sorted(self._profiles.profiles)[:20])}"
            )
        # A profile's firmware range is a preference (it ranks candidates), never a refusal:
        # devices report firmware as they please (`3000-0001`, `20200505`).
        if device_id in self.devices:
            raise RegistryError(f"device {device_id!r} already exists")
        if topic in self._by_topic or any(c in topic for c in "+#\0"):
            raise RegistryError(f"device {device_id!r}: topic {topic!r} is taken or not a plain topic")
        created = time.time()

        def insert(db: sqlite_utils.Database) -> int:
            cursor = db.conn.execute(
                "INSERT INTO devices (id, household_id, name, room, profile_id, firmware, topic, "
                "unique_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    device_id,
                    household_id,
                    encode_name(name),
                    encode_name(room),
                    profile_id,
                    firmware,
                    topic,
                    unique_id,
                    created,
                ),
            )
            return int(cursor.lastrowid or 0)

        row = await self._store.async_write(insert)
        device = Device.named(
            row=row,
            id=device_id,
            household_id=household_id,
            name=name,
            room=room,
            profile=profile,
            firmware=firmware,
            topic=topic,
            unique_id=unique_id,
            created=created,
        )
        self._index(device)
        self._bus.fire(
            DeviceAdded(
                device_id=device_id,
                context=context or Context(household=household_id, origin="registry"),
            )
        )
        return device

    async def async_import(
        self,
        *,
        buildings: list[dict[str, str]] = (),  # type: ignore[assignment]
        units: list[dict[str, str]] = (),  # type: ignore[assignment]
        households: list[dict[str, str]] = (),  # type: ignore[assignment]
        devices: list[dict[str, Any]] = (),  # type: ignore[assignment]
        context: Context | None = None,
    ) -> list[Device]:
        """Add many buildings, units, households and devices in one durable transaction.

        Each dict takes the keyword arguments of the matching `async_add_*` method
        (`id`, `name`, …). Entries whose id already exists are left as they are.
        `context` is the devices' `DeviceAdded` context (who added them, from where).
        """
        now = time.time()
        new_buildings = [b for b in buildings if b["id"] not in self.buildings]
        new_units = [u for u in units if u["id"] not in self.units]
        new_households = [h for h in households if h["id"] not in self.households]
        known_units = {*self.units, *(u["id"] for u in new_units)}
        known_buildings = {*self.buildings, *(b["id"] for b in new_buildings)}
        known_households = {*self.households, *(h["id"] for h in new_households)}
        for unit in new_units:
            if unit["building_id"] not in known_buildings:
                raise RegistryError(f"unit {unit['id']!r}: no building {unit['building_id']!r}")
        for household in new_households:
            if household["unit_id"] not in known_units:
                raise RegistryError(f"household {household['id']!r}: no unit {household['unit_id']!r}")
        new_devices = []
        topics = set(self._by_topic)
        for spec in devices:
            if spec["id"] in self.devices:
                continue
            if spec["household_id"] not in known_households:
                raise RegistryError(f"device {spec['id']!r}: no household {spec['household_id']!r}")
            profile = self._profiles.get(spec["profile_id"])
            if profile is None:
                raise RegistryError(f"device {spec['id']!r}: no firmware profile {spec['profile_id']!r}")
            if spec["topic"] in topics:
                raise RegistryError(f"device {spec['id']!r}: topic {spec['topic']!r} is taken")
            topics.add(spec["topic"])
            new_devices.append((spec, profile))

        def write(db: sqlite_utils.Database) -> list[int]:
            conn = db.conn
            conn.executemany(
                "INSERT INTO buildings (id, community_id, name) VALUES (?, ?, ?)",
                [(b["id"], self.community_id, b["name"]) for b in new_buildings],
            )
            conn.executemany(
                "INSERT INTO units (id, building_id, name) VALUES (?, ?, ?)",
                [(u["id"], u["building_id"], u["name"]) for u in new_units],
            )
            conn.executemany(
                "INSERT INTO households (id, unit_id, name, created) VALUES (?, ?, ?, ?)",
                [(h["id"], h["unit_id"], h["name"], now) for h in new_households],
            )
            rows = []
            for spec, _ in new_devices:
                cursor = conn.execute(
                    "INSERT INTO devices (id, household_id, name, room, profile_id, firmware, "
                    "topic, unique_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        spec["id"],
                        spec["household_id"],
                        encode_name(spec["name"]),
                        encode_name(spec.get("room")),
                        spec["profile_id"],
                        spec.get("firmware"),
                        spec["topic"],
                        spec.get("unique_id"),
                        now,
                    ),
                )
                rows.append(int(cursor.lastrowid or 0))
            return rows

        rows = await self._store.async_write(write)
        for b in new_buildings:
            self.buildings[b["id"]] = Building(id=b["id"], community_id=self.community_id, name=b["name"])
        for u in new_units:
            self.units[u["id"]] = Unit(id=u["id"], building_id=u["building_id"], name=u["name"])
        for h in new_households:
            self.households[h["id"]] = Household(
                id=h["id"], unit_id=h["unit_id"], name=h["name"], created=now
            )
            self._bus.fire(
                HouseholdAdded(household_id=h["id"], context=Context(household=h["id"], origin="registry"))
            )
        added = []
        for row, (spec, profile) in zip(rows, new_devices, strict=True):
            device = Device.named(
                row=row,
                id=spec["id"],
                household_id=spec["household_id"],
                name=spec["name"],
                room=spec.get("room"),
                profile=profile,
                firmware=spec.get("firmware"),
                topic=spec["topic"],
                unique_id=spec.get("unique_id"),
                created=now,
            )
            self._index(device)
            added.append(device)
            self._bus.fire(
                DeviceAdded(
                    device_id=device.id,
                    context=replace(context, household=device.household_id)
                    if context is not None
                    else Context(household=device.household_id, origin="registry"),
                )
            )
        return added

    async def async_add_resident(
        self, resident_id: str, household_id: str, name: str, *, data: dict[str, Any] | None = None
    ) -> Resident:
        """Add (or rename) a person in a household."""
        if household_id not in self.households:
            raise RegistryError(f"resident {resident_id!r}: no household {household_id!r}")
        existing = self.residents.get(resident_id)
        if existing is not None and existing.household_id != household_id:
            raise RegistryError(f"resident {resident_id!r} lives in household {existing.household_id!r}")
        created = existing.created if existing else time.time()
        payload = orjson.dumps(data or {}).decode()
        await self._store.async_write(
            lambda db: db.conn.execute(
                "INSERT INTO residents (id, household_id, name, created, data) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name = excluded.name, data = excluded.data",
                (resident_id, household_id, name, created, payload),
            )
        )
        resident = Resident(
            id=resident_id, household_id=household_id, name=name, created=created, data=data or {}
        )
        self._index_resident(resident)
        return resident

    async def async_remove_resident(self, resident_id: str) -> Resident:
        """Remove a person who moved out (or was entered by mistake).

        Devices they used become the household's shared ones; services drop what they keep about
        them (ResidentRemoved: the health thresholds); what was recorded (readings, check-ins) stays history.
        """
        resident = self.residents.get(resident_id)
        if resident is None:
            raise RegistryError(f"no resident {resident_id!r}")

        def delete(db: sqlite_utils.Database) -> None:
            conn = db.conn
            conn.execute("UPDATE devices SET resident_id = NULL WHERE resident_id = ?", (resident_id,))
            _delete_referring(conn, "residents", "id", [resident_id])
            conn.execute("DELETE FROM residents WHERE id = ?", (resident_id,))

        await self._store.async_write(delete)
        for device in self.household_devices(resident.household_id):
            if device.resident_id == resident_id:
                device.resident_id = None
        del self.residents[resident_id]
        self._residents_by_household.get(resident.household_id, {}).pop(resident_id, None)
        # what services keep about the person (health thresholds…) is theirs to forget
        self._bus.fire(
            ResidentRemoved(
                resident_id=resident_id,
                household_id=resident.household_id,
                context=Context(household=resident.household_id, origin="registry"),
            )
        )
        return resident

    def _index_resident(self, resident: Resident) -> None:
        self.residents[resident.id] = resident
        self._residents_by_household.setdefault(resident.household_id, {})[resident.id] = resident

    def household_residents(self, household_id: str) -> list[Resident]:
        # Residents are few per household but many per community: this runs per
        # health reading, so it must not scan the whole community.
        return [r for r in self._residents_by_household.get(household_id, {}).values()]

    def resident_of(self, device: Device) -> Resident | None:
        """Whose reading this is: the device's assigned resident, or the household's only one."""
        if device.resident_id is not None:
            return self.residents.get(device.resident_id)
        residents = self.household_residents(device.household_id)
        return residents[0] if len(residents) == 1 else None

    async def async_assign_device(self, device_id: str, resident_id: str | None) -> Device:
        """Say which resident uses a device (None: shared by the household)."""
        device = self.devices.get(device_id)
        if device is None:
            raise RegistryError(f"no device {device_id!r}")
        if resident_id is not None:
            resident = self.residents.get(resident_id)
            if resident is None or resident.household_id != device.household_id:
                raise RegistryError(
                    f"resident {resident_id!r} is not a member of household {device.household_id!r}"
                )
        await self._store.async_write(
            lambda db: db.conn.execute(
                "UPDATE devices SET resident_id = ? WHERE row = ?", (resident_id, device.row)
            )
        )
        device.resident_id = resident_id
        return device

    async def async_remove_device(self, device_id: str, *, context: Context | None = None) -> None:
        device = self.devices.get(device_id)
        if device is None:
            raise RegistryError(f"no device {device_id!r}")

        def delete(db: sqlite_utils.Database) -> None:
            db.conn.execute("DELETE FROM capability_state WHERE device_row = ?", (device.row,))
            db.conn.execute("DELETE FROM devices WHERE row = ?", (device.row,))

        await self._store.async_write(delete)
        del self.devices[device_id]
        self._by_topic.pop(device.topic, None)
        self._by_household.get(device.household_id, {}).pop(device_id, None)
        self._bus.fire(
            DeviceRemoved(
                device_id=device_id,
                context=context or Context(household=device.household_id, origin="registry"),
            )
        )

    # -- lookups -----------------------------------------------------------------

    def device(self, device_id: str) -> Device | None:
        return self.devices.get(device_id)

    def device_by_topic(self, topic: str) -> Device | None:
        return self._by_topic.get(topic)

    def household_devices(self, household_id: str) -> list[Device]:
        return list(self._by_household.get(household_id, {}).values())

    def iter_devices(self) -> Iterator[Device]:
        return iter(list(self.devices.values()))

    # -- state (hot path) --------------------------------------------------------

    def report(self, device: Device, values: dict[str, Any], ts: float, origin: str) -> None:
        """Record validated values from a device: state, events, persistence.

        Called once per accepted payload, from the MQTT receive callback: no I/O,
        and no event built that nobody listens to.
        """
        states = device.states
        changed: list[tuple[str, Any, Any]] | None = None
        for key, value in values.items():
            state = states.get(key)
            if state is None:
                states[key] = CapabilityState(value, ts, ts)
                if changed is None:
                    changed = []
                changed.append((key, None, value))
            elif state.value != value or type(state.value) is not type(value):
                if changed is None:
                    changed = []
                changed.append((key, state.value, value))
                state.value = value
                state.last_changed = ts
                state.last_reported = ts
            else:
                state.last_reported = ts
        device.last_seen = ts
        if not device.available:
            self.set_available(device, True, ts, "reported")
        self._store.append_telemetry(device.row, ts, values)
        bus = self._bus
        household = device.household_id
        context = Context(household=household, origin=origin)
        bus.fire(TelemetryReceived(device_id=device.id, values=values, ts=ts, context=context))
        if changed is not None and bus.has_listeners(StateChanged, household):
            capability = device.profile.capability
            for key, old, new in changed:
                cap = capability(key)
                bus.fire(
                    StateChanged(
                        device_id=device.id,
                        capability=key,
                        kind=cap.kind if cap else key,
                        old=old,
                        new=new,
                        ts=ts,
                        context=context,
                    )
                )

    def set_available(self, device: Device, available: bool, ts: float, reason: str) -> None:
        if device.available == available:
            return
        device.available = available
        self._bus.fire(
            AvailabilityChanged(
                device_id=device.id,
                available=available,
                ts=ts,
                reason=reason,
                context=Context(household=device.household_id, origin="registry"),
            )
        )

    async def async_persist_availability(self, *, force: bool = False) -> int:
        """Write availability changes now, and last-seen times every few minutes.

        Every active device's last-seen moves all the time; rewriting 15,000 rows every
        supervision pass would hold the writer thread (and any alarm waiting for it)
        for tens of milliseconds. So only rows whose on-disk copy differs are written,
        last-seen only every `LAST_SEEN_EVERY_S` (and at stop, `force`), in short
        transactions. Returns the rows written.
        """
        now = time.monotonic()
        include_seen = force or now - self._last_seen_written >= LAST_SEEN_EVERY_S
        rows = []
        for device in self.devices.values():
            on_disk = self._persisted.get(device.row)
            seen = device.last_seen if include_seen or on_disk is None else on_disk[1]
            state = (device.available, seen)
            if on_disk != state:
                rows.append((1 if device.available else 0, seen, device.row))
                self._persisted[device.row] = state
        if include_seen:
            self._last_seen_written = now

        def update(chunk: list[tuple[int, float | None, int]]) -> Callable[[sqlite_utils.Database], Any]:
            return lambda db: db.conn.executemany(
                "UPDATE devices SET available = ?, last_seen = ? WHERE row = ?", chunk
            )

        # short transactions: the longest an alarm's commit may have to wait behind one
        for start in range(0, len(rows), AVAILABILITY_ROWS):
            await self._store.async_write(update(rows[start : start + AVAILABILITY_ROWS]))
        return len(rows)


def _delete_referring(conn: sqlite3.Connection, table: str, column: str, keys: list[Any]) -> None:
    """Delete the rows of every table that points at `table.column` IN keys (and theirs, first)."""
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    marks = ", ".join("?" * len(keys))
    for child in tables:
        for fk in conn.execute(f"PRAGMA foreign_key_list({child})").fetchall():
            # (id, seq, table, from, to, on_update, on_delete, match)
            if fk[2] != table or (fk[4] or "id") != column:
                continue
            pk = [r[1] for r in conn.execute(f"PRAGMA table_info({child})") if r[5]]
            if len(pk) == 1:
                rows = [
                    r[0]
                    for r in conn.execute(f"SELECT {pk[0]} FROM {child} WHERE {fk[3]} IN ({marks})", keys)
                ]
                if rows:
                    _delete_referring(conn, child, pk[0], rows)
            conn.execute(f"DELETE FROM {child} WHERE {fk[3]} IN ({marks})", keys)
