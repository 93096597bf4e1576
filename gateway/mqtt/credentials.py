"""MQTT identities for devices and bridges, kept in the gateway's database.

Issuing a credential generates a password, shows it once (in the provisioning
payload) and keeps only the broker's hash of it. Every change is handed to the
broker at once (`on_change`), which rewrites its password and ACL files and
reloads them without dropping anyone else's connection; a removed device's
credential goes with it, and the broker closes that session on reload.

A bridge is bound to one household by its base topic: an announcement whose state
topic lies under a bridge's base can be adopted only into that bridge's household
(`household_for_topic`), whoever published the announcement.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import sqlite_utils

from linli.gateway.bus import EventBus
from linli.gateway.events import DeviceRemoved, HouseholdRemoved
from linli.gateway.mqtt.acl import (
    AclError,
    Principal,
    bridge_grants,
    check_plain_topic,
    device_grants,
    hash_password,
    new_password,
    topic_under,
)
from linli.gateway.mqtt.topics import PREFIX
from linli.gateway.registry import Device, Registry
from linli.gateway.store import Store

_LOGGER = logging.getLogger(__name__)


class CredentialError(ValueError):
    """A credential that cannot be issued; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Issued:
    """A new credential: the only moment its password exists outside the device."""

    principal: Principal
    password: str
    base_topic: str | None = None
    device_id: str | None = None

    def provisioning(self, host: str, port: int, tls: dict[str, Any] | None = None) -> dict[str, Any]:
        """What to type into the device or bridge (or scan as JSON): shown once, never stored."""
        return {
            "host": host,
            "port": port,
            "username": self.principal.username,
            "password": self.password,
            "client_id": self.principal.username,
            "household_id": self.principal.household_id,
            "publish": list(self.principal.publish),
            "subscribe": list(self.principal.subscribe),
            **({"base_topic": self.base_topic} if self.base_topic else {}),
            **({"device_id": self.device_id} if self.device_id else {}),
            **({"tls": tls} if tls else {}),
        }


def _reserved(prefix: str) -> tuple[str, ...]:
    return (prefix, f"{PREFIX}/discovery")


class MqttCredentials:
    """The device plane's identities; the broker reads them through `principals()`."""

    def __init__(self, store: Store, registry: Registry, bus: EventBus, *, discovery_prefix: str) -> None:
        self._store = store
        self._bus = bus
        self._registry = registry
        self.prefix = discovery_prefix
        self._rows: dict[str, dict[str, Any]] = {}
        self._listeners: list[Callable[[], None]] = []
        self._unlisten: list[Callable[[], None]] = []
        # Where devices connect, set when the broker enforces these credentials (Mosquitto);
        # None on the embedded broker, which has no ACL: nothing is issued there.
        self.endpoint: tuple[str, int] | None = None
        self.tls: dict[str, Any] | None = None  # {"port", "ca_pem"} when the broker has a TLS listener

    # -- lifecycle -----------------------------------------------------------------

    async def async_load(self) -> None:
        def read(conn: Any) -> list[dict[str, Any]]:
            cursor = conn.execute("SELECT * FROM mqtt_clients")
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        self._rows = {row["username"]: row for row in await self._store.async_read(read)}

    def start_following_registry(self, spawn: Callable[[Any, str], Any]) -> None:
        """Revoke a device's credential when the device is removed, and every credential of a
        household (its bridges too) when the household is."""

        def device_removed(event: DeviceRemoved) -> None:
            gone = [name for name, row in self._rows.items() if row["device_id"] == event.device_id]
            if gone:
                spawn(self.async_revoke_many(gone), f"mqtt-revoke-{event.device_id}")

        def household_removed(event: HouseholdRemoved) -> None:
            gone = [name for name, row in self._rows.items() if row["household_id"] == event.household_id]
            if gone:
                spawn(self.async_revoke_many(gone), f"mqtt-revoke-{event.household_id}")

        self._unlisten = [
            self._bus.listen(DeviceRemoved, device_removed),
            self._bus.listen(HouseholdRemoved, household_removed),
        ]

    def stop(self) -> None:
        for unlisten in self._unlisten:
            unlisten()
        self._unlisten = []

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _changed(self) -> None:
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:
                _LOGGER.exception("MQTT credential listener failed")

    # -- reading -------------------------------------------------------------------

    def principals(self) -> list[Principal]:
        return [self._principal(row) for row in sorted(self._rows.values(), key=lambda r: r["username"])]

    @staticmethod
    def _principal(row: dict[str, Any]) -> Principal:
        return Principal(
            username=row["username"],
            kind=row["kind"],
            household_id=row["household_id"],
            publish=tuple(orjson.loads(row["publish"])),
            subscribe=tuple(orjson.loads(row["subscribe"])),
            password_hash=row["password_hash"],
        )

    def listing(self, household_id: str | None = None) -> list[dict[str, Any]]:
        """The credentials without their secrets, for the manager's console."""
        return [
            {k: row[k] for k in ("username", "kind", "household_id", "device_id", "base_topic", "name")}
            | {"created": row["created"]}
            for row in sorted(self._rows.values(), key=lambda r: r["username"])
            if household_id is None or row["household_id"] == household_id
        ]

    def household_for_topic(self, topic: str) -> str | None:
        """The household a bridge owns `topic` for, if any bridge's base covers it."""
        for row in self._rows.values():
            if row["kind"] == "bridge" and topic_under(topic, row["base_topic"]):
                return str(row["household_id"])
        return None

    def bridges(self) -> list[tuple[str, str]]:
        """(base topic, household) of every bridge: who may report devices under which base."""
        return [
            (str(row["base_topic"]), str(row["household_id"]))
            for row in self._rows.values()
            if row["kind"] == "bridge"
        ]

    def get(self, username: str) -> dict[str, Any] | None:
        return self._rows.get(username)

    # -- issuing -------------------------------------------------------------------

    async def async_provision(self, device: Device) -> dict[str, Any] | None:
        """On adoption: the device's own credential as a provisioning payload, shown once.

        None where there is nothing to provision: the broker enforces no credentials, or
        the device is reported by a bridge whose credential already covers it.
        """
        if self.endpoint is None or self.household_for_topic(device.topic) is not None:
            return None
        try:
            issued = await self.async_issue_device(device)
        except CredentialError as exc:
            _LOGGER.warning("no MQTT credential for %s: %s", device.id, exc)
            return None
        return issued.provisioning(*self.endpoint, tls=self.tls)

    async def async_issue_device(self, device: Device) -> Issued:
        """A credential for one adopted device (a new password if it had one)."""
        [issued] = await self._write_many([self._device_row(device)])
        return issued

    def _device_row(self, device: Device) -> dict[str, Any]:
        filters = [t for t in getattr(device.profile, "state_topics", ()) if "+" in t or "#" in t]
        if filters:
            # A filter (OpenMQTTGateway's `+/+/BTtoMQTT/<MAC>`) is heard by whichever gateway
            # is near; no device owns it, so no device credential may be given it.
            raise CredentialError(
                f"device {device.id} is read through the topic filter {filters[0]!r}, which no "
                "single device owns: connect the gateway that hears it (OpenMQTTGateway, Theengs) "
                "as a bridge of the household, with its own base topic (e.g. 'home/OMG_h0101')"
            )
        commands = sorted(
            {
                device.resolve_topic(cap.command_topic or "~/set")
                for cap in device.profile.capabilities
                if cap.access == "rw"
            }
        )
        try:
            publish, subscribe = device_grants(device.topic, device.availability_topic, commands)
        except AclError as exc:
            raise CredentialError(f"device {device.id}: {exc}") from None
        bridge_household = self.household_for_topic(device.topic)
        if bridge_household is not None:
            raise CredentialError(
                f"device {device.id} publishes under a bridge's base topic ({device.topic}): "
                "its bridge's credential already covers it"
            )
        return {
            "username": f"dev-{device.id}"[:64],
            "kind": "device",
            "household_id": device.household_id,
            "device_id": device.id,
            "base_topic": None,
            "name": device.name,
            "publish": orjson.dumps(list(publish)).decode(),
            "subscribe": orjson.dumps(list(subscribe)).decode(),
        }

    async def async_provision_many(self, devices: list[Device]) -> dict[str, dict[str, Any]]:
        """`async_provision` for many adopted devices at once: device id → provisioning payload."""
        if self.endpoint is None:
            return {}
        rows = []
        for device in devices:
            if self.household_for_topic(device.topic) is not None:
                continue  # its bridge's credential covers it
            try:
                rows.append(self._device_row(device))
            except CredentialError as exc:
                _LOGGER.warning("no MQTT credential for %s: %s", device.id, exc)
        if not rows:
            return {}
        issued = await self._write_many(rows)
        return {i.device_id: i.provisioning(*self.endpoint, tls=self.tls) for i in issued if i.device_id}

    async def async_issue_bridge(self, household_id: str, base_topic: str, name: str | None = None) -> Issued:
        """A credential for a bridge of one household, publishing only under `base_topic`."""
        if household_id not in self._registry.households:
            raise CredentialError(f"household {household_id!r} does not exist")
        try:
            base = check_plain_topic(base_topic.strip().rstrip("/"), "bridge base topic")
        except AclError as exc:
            raise CredentialError(str(exc)) from None
        for reserved in _reserved(self.prefix):
            if topic_under(reserved, base) or topic_under(base, reserved):
                raise CredentialError(
                    f"bridge base topic {base!r} overlaps {reserved!r}, which no bridge may own: "
                    "give the bridge its own base (Zigbee2MQTT: mqtt.base_topic, e.g. 'zigbee2mqtt-h0101')"
                )
        native = f"{PREFIX}/{household_id}"
        if topic_under(base, "linli") and not topic_under(base, native):
            raise CredentialError(f"bridge base topic {base!r} is another household's: use {native!r}")
        for row in self._rows.values():
            if row["kind"] == "bridge" and row["household_id"] != household_id:
                other = row["base_topic"]
                if topic_under(base, other) or topic_under(other, base):
                    raise CredentialError(
                        f"bridge base topic {base!r} overlaps {other!r}, which belongs to another household"
                    )
        for device in self._registry.devices.values():
            if device.household_id != household_id and topic_under(device.topic, base):
                raise CredentialError(
                    f"bridge base topic {base!r} covers device {device.id} of another household"
                )
        publish, subscribe = bridge_grants(base, self.prefix)
        safe = base.replace("/", ".")
        username = f"bridge-{household_id}-{safe}"[:64].rstrip(".-_")
        return await self._write(
            username,
            kind="bridge",
            household_id=household_id,
            device_id=None,
            base_topic=base,
            name=name or base,
            publish=publish,
            subscribe=subscribe,
        )

    async def _write(
        self,
        username: str,
        *,
        kind: str,
        household_id: str,
        device_id: str | None,
        base_topic: str | None,
        name: str | None,
        publish: tuple[str, ...],
        subscribe: tuple[str, ...],
    ) -> Issued:
        row = {
            "username": username,
            "kind": kind,
            "household_id": household_id,
            "device_id": device_id,
            "base_topic": base_topic,
            "name": name,
            "publish": orjson.dumps(list(publish)).decode(),
            "subscribe": orjson.dumps(list(subscribe)).decode(),
        }
        [issued] = await self._write_many([row])
        return issued

    async def _write_many(self, rows: list[dict[str, Any]]) -> list[Issued]:
        """New passwords for these credential rows: hashed together, one transaction, one reload."""
        passwords = [new_password() for _ in rows]
        # hashing is deliberately slow: keep it off the event loop (all of them in one hop)
        hashes = await asyncio.to_thread(lambda: [hash_password(p) for p in passwords])
        now = time.time()
        rows = [
            {**row, "password_hash": digest, "created": now} for row, digest in zip(rows, hashes, strict=True)
        ]

        def write(db: sqlite_utils.Database) -> None:
            db.table("mqtt_clients").upsert_all(rows, pk="username")

        await self._store.async_write(write)
        for row in rows:
            self._rows[row["username"]] = row
            _LOGGER.info(
                "MQTT credential issued: %s (%s, household %s)",
                row["username"],
                row["kind"],
                row["household_id"],
            )
        self._changed()
        return [
            Issued(
                principal=self._principal(row),
                password=password,
                base_topic=row["base_topic"],
                device_id=row["device_id"],
            )
            for row, password in zip(rows, passwords, strict=True)
        ]

    async def async_revoke(self, username: str) -> bool:
        return bool(await self.async_revoke_many([username]))

    async def async_revoke_many(self, usernames: list[str]) -> list[str]:
        """Remove these credentials (one transaction, one broker reload); returns those that existed."""
        gone = [name for name in usernames if name in self._rows]
        if not gone:
            return []

        def delete(db: sqlite_utils.Database) -> None:
            db.conn.executemany("DELETE FROM mqtt_clients WHERE username = ?", [(name,) for name in gone])

        await self._store.async_write(delete)
        for name in gone:
            self._rows.pop(name, None)
        self._changed()
        _LOGGER.info("MQTT credentials revoked: %s", ", ".join(gone))
        return gone
