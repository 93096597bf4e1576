"""Component `health`: vital-sign readings per resident, thresholds, trends, FHIR export, consent.

* Every accepted payload of a health capability kind (blood pressure, heart
  rate, SpO2, glucose, weight, body temperature) becomes a reading of the
  resident whose device it is (`Registry.resident_of`); a shared device in a
  home of several residents gives a household reading flagged unattributed.
  It listens to `TelemetryReceived` (one per payload), so a measurement that
  repeats the previous value is still a new reading.
* Readings that are not plausible (not a number, a wrong unit, impossible,
  dated in the future) are refused with a reason, kept with it, and never
  raise an alert.
* A reading beyond the resident's thresholds asks the alert engine, over the
  bus, for a `vital_sign` alert that names the reading and says "not a
  diagnosis" (dedup per resident, kind and severity).
* Health data leaves the household only with its consent: readings, trends
  and the FHIR export take a `requester_role`; carers and providers are
  refused unless the household consented, from the moment it withdraws.
* With the regional uplink running, a household that consents to purpose
  `export` has its daily summaries (count, min / mean / max per vital) queued
  for the region in the same transaction as the readings (`summaries.py`); a
  withdrawal drops what is still queued and tells the region to forget.

Nothing here logs a health value: refusals are logged by device and code only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo
from typing import Any, Final

import sqlite_utils

from linli.common.ids import new_id
from linli.common.ratelog import RateLimitedLog
from linli.gateway.component import ComponentApi
from linli.gateway.context import Context
from linli.gateway.events import (
    AlertRequested,
    DeviceAdded,
    DeviceRemoved,
    ResidentRemoved,
    TelemetryReceived,
)
from linli.gateway.registry import Device, Resident
from linli.services.health import fhir, plausibility, summaries
from linli.services.health.consent import ConsentBook, ConsentRecord, Purpose, parse_purpose, parse_role
from linli.services.health.migrations import MIGRATIONS
from linli.services.health.readings import (
    HEALTH_KINDS,
    VITALS,
    Attribution,
    Reading,
    Rejection,
    split_capability_value,
)
from linli.services.health.storage import HealthStorage
from linli.services.health.thresholds import NOT_A_DIAGNOSIS, Breach, Thresholds, evaluate
from linli.services.health.trends import TrendPoint, default_range, parse_period, summarise

_LOGGER = logging.getLogger(__name__)
_ABSENT: Final = object()
DEFAULT_THRESHOLDS: Final = Thresholds()

# (capability key, kind, declared unit) of each health capability of a device.
_HealthCaps = tuple[tuple[str, str, str | None], ...]


def bilingual(label: str) -> dict[str, str]:
    """A rule's label ("高血压危象 hypertensive crisis") as its zh-CN and en forms."""
    zh, _, en = label.partition(" ")
    return {"zh-CN": zh, "en": en or zh}


class HealthError(ValueError):
    """A health request that cannot be answered; the message says which id and what to do."""


class Health:
    name = "health"
    requires = ("registry",)
    migrations = MIGRATIONS  # its own tables, made before it starts

    def __init__(self, clock: Callable[[], float] = time.time, tz: tzinfo | None = None) -> None:
        self.clock = clock
        # Day boundaries for trends and the offset in exported times: the gateway's
        # own zone (it runs in the community it serves).
        self.tz: tzinfo = tz or datetime.now().astimezone().tzinfo  # type: ignore[assignment]
        self._api: ComponentApi | None = None
        self._storage: HealthStorage | None = None
        self._consent = ConsentBook()
        self._thresholds: dict[str, Thresholds] = {}
        self._caps: dict[str, _HealthCaps] = {}
        self._refusal_log = RateLimitedLog(_LOGGER)  # once a minute per device
        self.accepted = 0
        self.rejected = 0
        self.alerts_requested = 0

    # -- lifecycle -----------------------------------------------------------------

    async def async_start(self, api: ComponentApi) -> None:
        self._api = api
        storage = HealthStorage(
            api.store,
            batch_s=api.config["store"]["batch_ms"] / 1000,
            on_commit=self._summarise,
        )
        thresholds, consents = await storage.async_load_settings()
        self._thresholds = thresholds
        for record in consents:
            self._consent.apply(record)
        storage.start()
        self._storage = storage
        # The consent this service records decides where health data may go, alerts included.
        api.privacy.register("health", self.may_share)
        bus = api.bus
        bus.listen(TelemetryReceived, self._on_telemetry)
        bus.listen(DeviceAdded, self._forget_device)
        bus.listen(DeviceRemoved, self._forget_device)
        bus.listen(ResidentRemoved, self._forget_resident)

    async def async_stop(self) -> None:
        if self._api is not None:
            self._api.privacy.unregister("health")
        if self._storage is not None:
            await self._storage.async_stop()

    # -- ingest (called for every accepted payload: no I/O, no await) ---------------

    def _forget_device(self, event: DeviceAdded | DeviceRemoved) -> None:
        self._caps.pop(event.device_id, None)

    def _health_caps(self, device_id: str) -> _HealthCaps:
        assert self._api is not None
        device = self._api.registry.device(device_id)
        caps: _HealthCaps = ()
        if device is not None:
            caps = tuple(
                (cap.key, cap.kind, cap.unit)
                for cap in device.profile.capabilities
                if cap.kind in HEALTH_KINDS
            )
        self._caps[device_id] = caps
        return caps

    def _on_telemetry(self, event: TelemetryReceived) -> None:
        caps = self._caps.get(event.device_id)
        if caps is None:
            caps = self._health_caps(event.device_id)
        if caps:
            self._take(event, caps)

    def _take(self, event: TelemetryReceived, caps: _HealthCaps) -> None:
        gateway = self._api
        assert gateway is not None and self._storage is not None
        device = gateway.registry.device(event.device_id)
        if device is None:
            return
        now = self.clock()
        resident = gateway.registry.resident_of(device)
        if resident is None:
            attribution = Attribution.UNATTRIBUTED
        elif device.resident_id is not None:
            attribution = Attribution.ASSIGNED
        else:
            attribution = Attribution.SOLE_RESIDENT
        resident_id = resident.id if resident is not None else None
        for key, kind, unit in caps:
            value = event.values.get(key, _ABSENT)
            if value is _ABSENT:
                continue
            parts = split_capability_value(kind, value)
            problem = None
            for part_kind, part in parts:
                problem = plausibility.check(
                    part_kind, part, unit if part_kind == kind else None, event.ts, now
                )
                if problem is not None:
                    break
            if problem is not None:
                self._refuse(device, resident_id, kind, value, event.ts, now, problem)
                continue
            for part_kind, part in parts:
                reading = Reading(
                    id=new_id(),
                    household_id=device.household_id,
                    resident_id=resident_id,
                    attribution=attribution,
                    kind=part_kind,
                    value=part,
                    device_id=device.id,
                    ts=event.ts,
                    received=now,
                )
                self.accepted += 1
                self._storage.append_reading(reading)
                thresholds = self._thresholds.get(resident_id, DEFAULT_THRESHOLDS) if resident_id else None
                breaches = evaluate(reading, thresholds or DEFAULT_THRESHOLDS)
                if breaches:
                    self._request_alert(reading, breaches, resident, device, event.context)

    def _refuse(
        self,
        device: Device,
        resident_id: str | None,
        kind: str,
        value: Any,
        ts: float,
        now: float,
        problem: plausibility.Problem,
    ) -> None:
        assert self._storage is not None
        self.rejected += 1
        self._storage.append_rejection(
            Rejection(
                household_id=device.household_id,
                resident_id=resident_id,
                kind=kind,
                device_id=device.id,
                value=repr(value)[:200],
                ts=ts if isinstance(ts, int | float) else now,
                received=now,
                code=problem.code,
                reason=problem.reason,
            )
        )
        # The reason names the value: it is stored, never logged.
        self._refusal_log.warning(
            "health reading from %s (%s) refused: %s; the reasons are in health_rejected",
            device.id,
            kind,
            problem.code,
            key=device.id,
        )

    def _request_alert(
        self,
        reading: Reading,
        breaches: list[Breach],
        resident: Resident | None,
        device: Device,
        context: Context,
    ) -> None:
        assert self._api is not None
        first = breaches[0]
        spec = reading.spec
        household = self._api.registry.households.get(reading.household_id)
        household_name = household.name if household else ""
        if resident is not None:
            who = resident.name
        else:
            who = f"{household_name} (未确认是谁 unattributed)"
        unit = spec.quantity.unit
        where = f" ({device.room})" if device.room else ""
        when = datetime.fromtimestamp(reading.ts, self.tz).strftime("%Y-%m-%d %H:%M")
        self.alerts_requested += 1
        self._api.bus.fire(
            AlertRequested(
                kind="vital_sign",
                severity=first.severity,
                title=f"{first.label}: {who} {spec.label} {reading.display_value()} {unit}",
                detail="; ".join(b.sentence() for b in breaches)
                + f". Reading {reading.display_value()} {unit} from {device.name}{where} at {when}.",
                resident=reading.resident_id,
                dedup_key=":".join(
                    ("vital_sign", reading.resident_id or "unattributed", reading.kind, first.severity)
                ),
                data={
                    "parameter": first.parameter,
                    "value": first.value,
                    "unit": first.unit,
                    "threshold": first.threshold,
                    "comparison": first.comparison,
                    "rule": first.rule,
                    "note": NOT_A_DIAGNOSIS,
                    "breaches": [b.as_dict() for b in breaches],
                    "reading": reading.as_dict(),
                    "device_id": device.id,
                    "sensitive": "health",  # share beyond the household only with consent
                    # pages say it in the reader's language (labels.js); sensitive like the rest
                    "title_key": "vital_sign",
                    "params": {
                        "label": bilingual(first.label),
                        "who": resident.name if resident is not None else household_name,
                        "unattributed": resident is None,
                        "kind": reading.kind,
                        "value": reading.display_value(),
                        "unit": unit,
                    },
                },
                context=context.child(origin=self.name),
            )
        )

    def _summarise(self, db: sqlite_utils.Database, readings: list[Reading]) -> None:
        """In the readings' transaction (the store's writer thread): the region's consented summaries.

        Behind a savepoint: a summary that cannot be made is logged and left out, and the
        readings are stored all the same — the region's copy must never cost the resident's.
        """
        db.conn.execute("SAVEPOINT health_summaries")
        try:
            summaries.enqueue_summaries(db, readings, self.may_share, self.tz, self.clock())
        except Exception:
            db.conn.execute("ROLLBACK TO health_summaries")
            _LOGGER.exception("health summaries for the region failed; the readings are stored without them")
        db.conn.execute("RELEASE health_summaries")

    # -- consent -------------------------------------------------------------------

    def may_share(self, household_id: str, purpose: str) -> bool:
        """True while the household consents to its health data going to `purpose`."""
        return self._consent.may_share(household_id, purpose)

    def consent(self, household_id: str) -> dict[str, dict[str, Any] | None]:
        """The household's current consent per purpose (who recorded it, when)."""
        return self._consent.status(household_id)

    async def async_grant_consent(
        self, household_id: str, *, by: str, purposes: Iterable[str] = tuple(Purpose), note: str = ""
    ) -> list[ConsentRecord]:
        """Record the household's consent (durable before it takes effect)."""
        records = self._consent_records(household_id, by, purposes, note, granted=True)
        await self._require_storage().async_record_consent(records)
        for record in records:
            self._consent.apply(record)
        _LOGGER.info("household %s consented to share health data (%s)", household_id, _purposes(records))
        return records

    async def async_withdraw_consent(
        self, household_id: str, *, by: str, purposes: Iterable[str] = tuple(Purpose), note: str = ""
    ) -> list[ConsentRecord]:
        """Withdraw consent: nothing more is shared from this call on, then it is recorded."""
        records = self._consent_records(household_id, by, purposes, note, granted=False)
        for record in records:
            self._consent.apply(record)  # in effect before the write: stop sharing at once
        now = self.clock()

        def forget(db: sqlite_utils.Database) -> None:  # nothing queued goes out; the region forgets
            summaries.withdraw(db, household_id, now)

        exported = any(r.purpose is summaries.PURPOSE for r in records)
        await self._require_storage().async_record_consent(records, forget if exported else None)
        _LOGGER.info(
            "household %s withdrew consent to share health data (%s)", household_id, _purposes(records)
        )
        return records

    async def async_consent_history(self, household_id: str) -> list[ConsentRecord]:
        return await self._require_storage().async_consent_history(household_id)

    def _consent_records(
        self, household_id: str, by: str, purposes: Iterable[str], note: str, *, granted: bool
    ) -> list[ConsentRecord]:
        assert self._api is not None
        if household_id not in self._api.registry.households:
            raise HealthError(f"no household {household_id!r}")
        if not by or not by.strip():
            raise HealthError("consent must say who recorded it (by=...)")
        parsed = [parse_purpose(p) for p in purposes]
        if not parsed:
            raise HealthError(f"name at least one purpose of {[p.value for p in Purpose]}")
        now = self.clock()
        return [
            ConsentRecord(household_id=household_id, purpose=p, granted=granted, by=by, ts=now, note=note)
            for p in dict.fromkeys(parsed)
        ]

    # -- thresholds ----------------------------------------------------------------

    def thresholds(self, resident_id: str) -> Thresholds:
        """The resident's thresholds (the defaults unless changed)."""
        self._resident(resident_id)
        return self._thresholds.get(resident_id, DEFAULT_THRESHOLDS)

    async def async_set_thresholds(self, resident_id: str, *, by: str, **changes: float) -> Thresholds:
        """Move some of a resident's thresholds within the safe limits (ThresholdError if not)."""
        self._resident(resident_id)
        if not by or not by.strip():
            raise HealthError("a threshold change must say who made it (by=...)")
        updated = self.thresholds(resident_id).changed(**changes)
        await self._require_storage().async_save_thresholds(resident_id, updated, by, self.clock())
        self._thresholds[resident_id] = updated
        _LOGGER.info("thresholds of resident %s changed by %s: %s", resident_id, by, sorted(changes))
        return updated

    def _forget_resident(self, event: ResidentRemoved) -> None:
        """A person who moved out: their own thresholds go (readings stay, as history)."""
        self._thresholds.pop(event.resident_id, None)
        if self._api is not None and self._storage is not None:
            storage = self._storage
            self._api.spawn(
                storage.async_save_thresholds(event.resident_id, None, "registry", self.clock()),
                "health-forget-resident",
            )

    async def async_reset_thresholds(self, resident_id: str, *, by: str) -> Thresholds:
        """Back to the defaults."""
        self._resident(resident_id)
        await self._require_storage().async_save_thresholds(resident_id, None, by, self.clock())
        self._thresholds.pop(resident_id, None)
        return DEFAULT_THRESHOLDS

    # -- reading the data ----------------------------------------------------------

    async def async_readings(
        self,
        resident_id: str,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        *,
        requester_role: str = "household",
        limit: int | None = None,
    ) -> list[Reading]:
        """A resident's readings in time order (`since` inclusive, `until` exclusive)."""
        resident = self._resident(resident_id)
        self._check_kind(kind)
        self._consent.require(resident.household_id, requester_role, f"readings of {resident_id}")
        readings = await self._require_storage().async_readings(
            resident_id=resident_id, kind=kind, since=since, until=until, limit=limit
        )
        self._consent.require(resident.household_id, requester_role, f"readings of {resident_id}")
        return readings

    async def async_unattributed_readings(
        self,
        household_id: str,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        *,
        requester_role: str = "household",
    ) -> list[Reading]:
        """The household's readings from shared devices that nobody was named for."""
        assert self._api is not None
        if household_id not in self._api.registry.households:
            raise HealthError(f"no household {household_id!r}")
        self._check_kind(kind)
        self._consent.require(household_id, requester_role, f"unattributed readings of {household_id}")
        return await self._require_storage().async_readings(
            resident_id=None, household_id=household_id, kind=kind, since=since, until=until
        )

    async def async_rejections(self, household_id: str, since: float | None = None) -> list[Rejection]:
        """The household's refused readings with the reason for each (for the household and installers)."""
        return await self._require_storage().async_rejections(household_id, since=since)

    async def async_trends(
        self,
        resident_id: str,
        kind: str,
        period: str = "day",
        since: float | None = None,
        until: float | None = None,
        *,
        requester_role: str = "household",
    ) -> list[TrendPoint]:
        """Min/mean/max and count of `kind` per local day or ISO week (the last 14 days / 12 weeks)."""
        parsed = parse_period(period)
        if kind not in VITALS:
            raise HealthError(f"kind {kind!r} is not one of {sorted(VITALS)}")
        if since is None or until is None:
            default_since, default_until = default_range(self.clock(), parsed, self.tz)
            since = default_since if since is None else since
            until = default_until if until is None else until
        readings = await self.async_readings(resident_id, kind, since, until, requester_role=requester_role)
        return summarise(readings, kind, parsed, since, until, self.tz)

    async def async_fhir_bundle(
        self, resident_id: str, start: float, end: float, requester_role: str = "household"
    ) -> dict[str, Any]:
        """The resident's readings from `start` (inclusive) to `end` as a FHIR R4 Bundle.

        The household's own members may always export; a carer or a provider only
        while the household consents (ConsentRefused otherwise).
        """
        parse_role(requester_role)
        resident = self._resident(resident_id)
        if not end > start:
            raise HealthError(f"export period is empty: end {end} is not after start {start}")
        readings = await self.async_readings(resident_id, None, start, end, requester_role=requester_role)
        assert self._api is not None
        registry = self._api.registry
        return fhir.bundle(
            gateway_id=self._api.gateway_id,
            resident=resident,
            readings=readings,
            devices={r.device_id: registry.device(r.device_id) for r in readings},
            now=self.clock(),
            tz=self.tz,
        )

    # -- plumbing ------------------------------------------------------------------

    async def async_flush(self) -> None:
        """Commit every reading taken so far."""
        await self._require_storage().async_flush()

    def _resident(self, resident_id: str) -> Resident:
        assert self._api is not None
        resident = self._api.registry.residents.get(resident_id)
        if resident is None:
            raise HealthError(
                f"no resident {resident_id!r}; residents are added to a household in the registry"
            )
        return resident

    @staticmethod
    def _check_kind(kind: str | None) -> None:
        if kind is not None and kind not in VITALS:
            raise HealthError(f"kind {kind!r} is not one of {sorted(VITALS)}")

    def _require_storage(self) -> HealthStorage:
        if self._storage is None:
            raise RuntimeError("the health component is not started")
        return self._storage


def _purposes(records: list[ConsentRecord]) -> str:
    return ", ".join(r.purpose.value for r in records)
