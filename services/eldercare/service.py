"""Component `eldercare`: SOS, falls, inactivity, daily check-ins and reminders.

Works on capability kinds only, whatever the device's vendor or adapter, and
raises alerts through the bus (the alert engine listens there):

* SOS button / pendant pressed → a critical `sos` alert at once.
* Fall detected → a critical `fall` alert; its escalation chain opens with a
  30 s window in which the resident can answer "I'm OK" before carers are called.
* Inactivity → a high `inactivity` alert (see `inactivity.py` for the rule).
* Daily check-in: the resident presses OK on the TV or the phone by a set time;
  at the deadline a gentle reminder goes to the household's screens, and if
  there is still no check-in after the grace period, the carers are alerted.
* Reminders (medication, appointments) at set times, acknowledged by the
  resident; a reminder not acknowledged within its window alerts the carers.

Settings, check-ins and reminders are stored durably; timers are wall-clock
deadlines recomputed from them, so they survive restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson

import linli.gateway.events as core_events
from linli.common.ids import new_id
from linli.gateway.component import ComponentApi
from linli.gateway.context import Context
from linli.gateway.errors import LinliError
from linli.gateway.events import (
    AlertChanged,
    AlertRequested,
    CareChanged,
    DeviceEvent,
    HouseholdRemoved,
    StateChanged,
)
from linli.services.eldercare.inactivity import ACTIVITY_KINDS, InactivitySettings, too_quiet
from linli.services.eldercare.migrations import MIGRATIONS
from linli.services.eldercare.routine import Routine, bucket_of, learn
from linli.services.eldercare.schedule import at_on_day, local_day, parse_hhmm

_LOGGER = logging.getLogger(__name__)
CHECK_EVERY_S: Final = 30.0
ROUTINE_KEEP_WEEKS: Final = 12  # the longest `learned_weeks` allowed
AWAY_STATES: Final = frozenset({"armed_away", "armed_vacation"})
REMINDER_KINDS: Final = ("medication", "appointment")
_REMINDER_LABEL: Final = {"medication": "用药提醒 Medication", "appointment": "预约提醒 Appointment"}


class CareError(LinliError, ValueError):
    """A care setting, check-in or reminder that cannot be taken; `code` is stable for API clients."""


@dataclass(slots=True, kw_only=True)
class CheckInSettings:
    enabled: bool = False
    by: str = "10:00"  # local time
    grace_min: float = 30

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckInSettings:
        settings = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        parse_hhmm(settings.by)
        if not 5 <= settings.grace_min <= 24 * 60:
            raise ValueError("grace_min must be between 5 and 1440 minutes")
        return settings

    def as_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "by": self.by, "grace_min": self.grace_min}


@dataclass(slots=True, kw_only=True)
class Reminder:
    id: str
    household_id: str
    resident_id: str | None
    kind: str
    title: str
    times: list[str]
    window_min: float
    created: float
    active: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "household_id": self.household_id,
            "resident_id": self.resident_id,
            "kind": self.kind,
            "title": self.title,
            "times": self.times,
            "window_min": self.window_min,
            "active": self.active,
            "created": self.created,
        }


class ElderCare:
    name = "eldercare"
    requires = ("registry",)
    migrations = MIGRATIONS  # its own tables, made before it starts

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._api: ComponentApi | None = None
        self._task: asyncio.Task[None] | None = None
        self.inactivity: dict[str, InactivitySettings] = {}
        self.check_in: dict[str, CheckInSettings] = {}
        self.reminders: dict[str, Reminder] = {}
        # Activity seen by the home's shared sensors, and by each resident's own devices.
        self.last_activity: dict[str, float] = {}
        self.resident_activity: dict[str, float] = {}
        self._quiet_alerted: dict[str, float] = {}  # household or resident → the silence already alerted
        self._routines: dict[str, tuple[str, Routine]] = {}  # household → (learned on day, routine)
        self._buckets_seen: set[tuple[str, str, int]] = set()  # (household, day, quarter-hour), today's
        self._buckets_pending: set[tuple[str, str, int]] = set()
        self._purged_on: str | None = None
        self.away: set[str] = set()
        self._checked_in: set[tuple[str, str]] = set()  # (household, day)
        self._check_in_stage: dict[tuple[str, str], str] = {}  # (household, day) → reminded|alerted
        self._reminder_log: dict[tuple[str, float], str] = {}  # (reminder, due) → due|done|missed
        self._open_alerts: dict[tuple[str, str], int] = {}  # (household, dedup key) → alert id

    # -- lifecycle ---------------------------------------------------------------

    async def async_start(self, api: ComponentApi) -> None:
        self._api = api
        await self._load()
        api.bus.listen(StateChanged, self._on_state)
        api.bus.listen(DeviceEvent, self._on_device_event)
        api.bus.listen(HouseholdRemoved, self._forget)
        api.bus.listen(AlertChanged, self._on_alert_changed)
        alarm_event = getattr(core_events, "AlarmStateChanged", None)
        if alarm_event is not None:
            api.bus.listen(alarm_event, self._on_alarm)
        self._task = asyncio.create_task(self._loop(), name="linli-eldercare")

    async def async_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _load(self) -> None:
        gateway = self._api
        assert gateway is not None

        def read(conn: Any) -> tuple[list[Any], ...]:
            return (
                conn.execute("SELECT household_id, settings FROM eldercare_settings").fetchall(),
                conn.execute(
                    "SELECT id, household_id, resident_id, kind, title, times, window_min, active, "
                    "created FROM care_reminders"
                ).fetchall(),
                conn.execute(
                    "SELECT household_id, day FROM care_check_ins WHERE day >= ?",
                    (local_day(self.clock() - 86400),),
                ).fetchall(),
                conn.execute(
                    "SELECT reminder_id, due, state FROM care_reminder_log WHERE due >= ?",
                    (self.clock() - 2 * 86400,),
                ).fetchall(),
            )

        settings, reminders, check_ins, log = await gateway.store.async_read(read)
        for household, text in settings:
            data = orjson.loads(text)
            self.inactivity[household] = InactivitySettings.from_dict(data.get("inactivity", {}))
            self.check_in[household] = CheckInSettings.from_dict(data.get("check_in", {}))
            if data.get("away"):
                self.away.add(household)
        for rid, hid, resident, kind, title, times, window, active, created in reminders:
            if active:
                self.reminders[rid] = Reminder(
                    id=rid,
                    household_id=hid,
                    resident_id=resident,
                    kind=kind,
                    title=title,
                    times=orjson.loads(times),
                    window_min=window,
                    active=True,
                    created=created,
                )
        self._checked_in = {(h, d) for h, d in check_ins}
        self._reminder_log = {(r, due): state for r, due, state in log}
        # The last activity each home had, from the capability states on disk. A home
        # never heard from starts its clock at the first check, not in 1970.
        for device in gateway.registry.iter_devices():
            for key, state in device.states.items():
                cap = device.profile.capability(key)
                if cap is not None and cap.kind in ACTIVITY_KINDS and device.household_id:
                    self._saw_activity(
                        device.household_id, device.resident_id, state.last_changed, learn=False
                    )

    def _forget(self, event: HouseholdRemoved) -> None:
        """The household is gone (its settings and reminders went with its rows)."""
        household = event.household_id
        for book in (self.inactivity, self.check_in, self.last_activity, self._quiet_alerted, self._routines):
            book.pop(household, None)
        self.away.discard(household)
        for rid in [r.id for r in self.reminders.values() if r.household_id == household]:
            del self.reminders[rid]
        self._buckets_pending = {k for k in self._buckets_pending if k[0] != household}

    # -- settings ----------------------------------------------------------------

    def settings(self, household_id: str) -> dict[str, Any]:
        self._require_household(household_id)
        return {
            "inactivity": self.inactivity.get(household_id, InactivitySettings()).as_dict(),
            "check_in": self.check_in.get(household_id, CheckInSettings()).as_dict(),
            "away": household_id in self.away,
        }

    async def async_configure(self, household_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a household's care settings (`inactivity`, `check_in`, `away`)."""
        current = self.settings(household_id)
        unknown = set(changes) - set(current)
        if unknown:
            raise CareError("invalid", f"unknown care settings {sorted(unknown)}; known: {sorted(current)}")
        try:
            inactivity = InactivitySettings.from_dict(
                {**current["inactivity"], **changes.get("inactivity", {})}
            )
            check_in = CheckInSettings.from_dict({**current["check_in"], **changes.get("check_in", {})})
        except (TypeError, ValueError) as exc:
            raise CareError("invalid", str(exc)) from None
        away = bool(changes.get("away", current["away"]))
        data = {"inactivity": inactivity.as_dict(), "check_in": check_in.as_dict(), "away": away}
        await self._write(
            "INSERT OR REPLACE INTO eldercare_settings (household_id, settings) VALUES (?, ?)",
            (household_id, orjson.dumps(data).decode()),
        )
        self.inactivity[household_id], self.check_in[household_id] = inactivity, check_in
        if away:
            self.away.add(household_id)
        else:
            self.away.discard(household_id)
        self._changed(household_id, "settings")
        return data

    # -- check-ins ---------------------------------------------------------------

    async def async_check_in(
        self, household_id: str, by: str, *, resident_id: str | None = None
    ) -> dict[str, Any]:
        """The resident says "I'm fine today" (one press of OK on the TV, or the phone)."""
        self._require_household(household_id)
        now = self.clock()
        day = local_day(now)
        await self._write(
            "INSERT OR REPLACE INTO care_check_ins (household_id, day, ts, by, resident_id) "
            "VALUES (?, ?, ?, ?, ?)",
            (household_id, day, now, by, resident_id),
        )
        self._checked_in.add((household_id, day))
        self._saw_activity(household_id, resident_id, now)
        # A reminder or missed-check-in alert for today is settled by the check-in itself.
        for key in (f"check_in_reminder:{day}", f"missed_check_in:{day}"):
            alert_id = self._open_alerts.get((household_id, key))
            if alert_id is not None:
                self._answer(alert_id, household_id, by, "resident checked in")
        self._changed(household_id, "check_in")
        return {"household_id": household_id, "day": day, "ts": now, "by": by}

    def checked_in_today(self, household_id: str) -> bool:
        return (household_id, local_day(self.clock())) in self._checked_in

    # -- reminders ---------------------------------------------------------------

    async def async_add_reminder(
        self,
        household_id: str,
        *,
        title: str,
        times: list[str],
        kind: str = "medication",
        resident_id: str | None = None,
        window_min: float = 60,
    ) -> Reminder:
        self._require_household(household_id)
        if kind not in REMINDER_KINDS:
            raise CareError("invalid", f"reminder kind {kind!r} is not one of {list(REMINDER_KINDS)}")
        if not title.strip():
            raise CareError("invalid", "a reminder needs a title people can read, e.g. '降压药 1 片'")
        try:
            times = sorted({parse_hhmm(t).strftime("%H:%M") for t in times})
        except ValueError as exc:
            raise CareError("invalid", str(exc)) from None
        if not times:
            raise CareError("invalid", "a reminder needs at least one time of day")
        if not 5 <= window_min <= 720:
            raise CareError("invalid", "window_min must be between 5 and 720 minutes")
        reminder = Reminder(
            id=f"rem-{new_id()}",
            household_id=household_id,
            resident_id=resident_id,
            kind=kind,
            title=title.strip(),
            times=times,
            window_min=window_min,
            created=self.clock(),
        )
        await self._write(
            "INSERT INTO care_reminders (id, household_id, resident_id, kind, title, times, window_min, "
            "active, created) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)",
            (
                reminder.id,
                household_id,
                resident_id,
                kind,
                reminder.title,
                orjson.dumps(times).decode(),
                window_min,
                reminder.created,
            ),
        )
        self.reminders[reminder.id] = reminder
        self._changed(household_id, "reminders")
        return reminder

    async def async_remove_reminder(self, reminder_id: str) -> None:
        reminder = self.reminders.pop(reminder_id, None)
        if reminder is None:
            raise CareError("not_found", f"no reminder {reminder_id!r}")
        await self._write("UPDATE care_reminders SET active = 0 WHERE id = ?", (reminder_id,))
        self._changed(reminder.household_id, "reminders")

    async def async_confirm_reminder(self, reminder_id: str, by: str) -> bool:
        """The resident took the medicine / knows about the appointment."""
        reminder = self.reminders.get(reminder_id)
        if reminder is None:
            raise CareError("not_found", f"no reminder {reminder_id!r}")
        due = [k for k, state in self._reminder_log.items() if k[0] == reminder_id and state == "due"]
        if not due:
            return False
        key = max(due, key=lambda k: k[1])
        await self._set_reminder_state(key, "done", by)
        alert_id = self._open_alerts.get((reminder.household_id, f"reminder:{reminder_id}:{key[1]:.0f}"))
        if alert_id is not None:
            self._answer(alert_id, reminder.household_id, by, "resident confirmed")
        return True

    # -- events ------------------------------------------------------------------

    def _on_state(self, event: StateChanged) -> None:
        kind = event.kind
        if kind in ("sos_button", "fall"):
            if event.new is True:
                self._raise_care_alarm(event)
            return
        if kind in ACTIVITY_KINDS and (event.new is True or kind not in ("motion", "occupancy", "activity")):
            household = event.context.household
            if household is not None:
                assert self._api is not None
                device = self._api.registry.device(event.device_id)
                self._saw_activity(household, device.resident_id if device else None, event.ts)

    def _on_device_event(self, event: DeviceEvent) -> None:
        # A press is an event, not a state: every emergency press raises (or repeats) the
        # SOS alarm, also the same press twice in a row; other presses are signs of life.
        if event.emergency:
            self._raise_care_alarm(event)
        elif event.context.household is not None:
            assert self._api is not None
            device = self._api.registry.device(event.device_id)
            self._saw_activity(event.context.household, device.resident_id if device else None, event.ts)

    def _saw_activity(
        self, household: str, resident_id: str | None, ts: float, *, learn: bool = True
    ) -> None:
        """Someone did something at home: restart the right silence clock, note the quarter-hour."""
        if resident_id is not None:
            self.resident_activity[resident_id] = max(self.resident_activity.get(resident_id, 0.0), ts)
        else:
            self.last_activity[household] = max(self.last_activity.get(household, 0.0), ts)
        if learn:
            key = (household, *bucket_of(ts))
            if key not in self._buckets_seen:
                self._buckets_seen.add(key)
                self._buckets_pending.add(key)

    def _on_alarm(self, event: Any) -> None:
        household = event.context.household
        if household is None:
            return
        if event.state in AWAY_STATES:
            self.away.add(household)
        elif event.state == "disarmed":
            self.away.discard(household)

    def _on_alert_changed(self, event: AlertChanged) -> None:
        alert = event.alert
        key = alert.get("data", {}).get("care_key")
        if key is None:
            return
        if alert["state"] == "resolved":
            self._open_alerts.pop((alert["household_id"], key), None)
        else:
            self._open_alerts[(alert["household_id"], key)] = event.alert_id

    def _raise_care_alarm(self, event: StateChanged | DeviceEvent) -> None:
        gateway = self._api
        assert gateway is not None
        device = gateway.registry.device(event.device_id)
        where = f" ({device.room})" if device and device.room else ""
        name = device.name if device else "设备"  # never a device id on a screen
        resident = gateway.registry.resident_of(device) if device else None
        who = f"{resident.name} · " if resident else ""
        if event.kind == "sos_button" or isinstance(event, DeviceEvent):
            kind, title = "sos", f"紧急求助：{who}{name}{where}"
        else:
            kind, title = "fall", f"检测到跌倒：{who}{name}{where}"
        # Pages say it in the reader's language from the key and the name's forms (labels.js).
        params: dict[str, Any] = {**(device.label_forms() if device else {})}
        if resident:
            params["who"] = resident.name
        gateway.bus.fire(
            AlertRequested(
                kind=kind,
                severity="critical",
                title=title,
                resident=resident.id if resident else None,
                dedup_key=f"{kind}:{event.device_id}",
                data={
                    "device_id": event.device_id,
                    "capability": event.capability,
                    "ts": event.ts,
                    "title_key": kind,
                    "params": params,
                },
                context=event.context.child(origin=self.name),
            )
        )

    # -- the clock ---------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            try:
                await self.async_run_due()
            except Exception:
                _LOGGER.exception("elder-care checks failed; will run again")

    async def async_run_due(self, now: float | None = None) -> list[str]:
        """Run every check that is due; returns what was raised (for logs and tests)."""
        now = self.clock() if now is None else now
        raised: list[str] = []
        gateway = self._api
        assert gateway is not None
        await self._flush_activity(now)
        for household in list(gateway.registry.households):
            raised += await self._check_inactivity(household, now)
            raised += await self._check_check_in(household, now)
        raised += await self._check_reminders(now)
        return raised

    async def _check_inactivity(self, household: str, now: float) -> list[str]:
        settings = self.inactivity.get(household, InactivitySettings())
        if household in self.away or not settings.enabled:
            return []
        assert self._api is not None
        routine = await self.routine(household, now) if settings.learned else None
        shared = self.last_activity.setdefault(household, now)
        # Residents with their own devices or limits are watched one by one; the household
        # as a whole covers everyone the shared sensors alone speak for.
        residents = self._api.registry.household_residents(household)
        own_devices = {d.resident_id for d in self._api.registry.household_devices(household)}
        watched = [r for r in residents if r.id in settings.residents or r.id in own_devices]
        raised: list[str] = []
        if len(watched) < len(residents) or not residents:
            only = residents[0].id if len(residents) == 1 else None
            raised += self._quiet(household, None, only, shared, now, settings, routine)
        for resident in watched:
            last = max(shared, self.resident_activity.get(resident.id, 0.0))
            mine = settings.for_resident(resident.id)
            raised += self._quiet(household, resident.id, resident.id, last, now, mine, routine)
        return raised

    def _quiet(
        self,
        household: str,
        watched: str | None,
        resident: str | None,
        last: float,
        now: float,
        settings: InactivitySettings,
        routine: Routine | None,
    ) -> list[str]:
        key = watched or household
        if not settings.enabled or self._quiet_alerted.get(key) == last:
            return []
        reason = too_quiet(last, now, settings, routine)
        if reason is None:
            return []
        self._quiet_alerted[key] = last
        assert self._api is not None
        person = self._api.registry.residents.get(watched) if watched else None
        who = f"{person.name}: " if person else ""
        self._request(
            household,
            "inactivity",
            "high",
            f"长时间无活动 No activity at home: {who}{reason}",
            dedup=f"inactivity:{watched + ':' if watched else ''}{last:.0f}",
            resident=resident,
            data={
                "last_activity": last,
                "learned": routine is not None and settings.learned,
                "title_key": "inactivity",
                "params": {"who": person.name} if person else {},
            },
        )
        return [f"inactivity:{household}" + (f":{watched}" if watched else "")]

    # -- the learned routine -----------------------------------------------------

    async def routine(self, household: str, now: float | None = None) -> Routine:
        """The household's routine learned from the weeks before today (relearned once a day)."""
        now = self.clock() if now is None else now
        today = local_day(now)
        cached = self._routines.get(household)
        if cached is not None and cached[0] == today:
            return cached[1]
        assert self._api is not None
        settings = self.inactivity.get(household, InactivitySettings())
        await self._flush_activity(now)
        first = local_day(now - (settings.learned_weeks * 7 + 1) * 86400)

        def read(conn: Any) -> list[tuple[str, int]]:
            return conn.execute(
                "SELECT day, bucket FROM care_activity WHERE household_id = ? AND day >= ? AND day < ?",
                (household, first, today),
            ).fetchall()

        active: dict[str, set[int]] = {}
        for day, bucket in await self._api.store.async_read(read):
            active.setdefault(day, set()).add(bucket)
        routine = learn(active, today=today, weeks=settings.learned_weeks, cap_s=settings.overnight_limit_s)
        self._routines[household] = (today, routine)
        return routine

    async def _flush_activity(self, now: float) -> None:
        """Write the quarter-hours seen since the last pass; forget what is older than any routine."""
        assert self._api is not None
        pending, self._buckets_pending = sorted(self._buckets_pending), set()
        today = local_day(now)
        purge = self._purged_on != today
        if not pending and not purge:
            return
        oldest = local_day(now - ROUTINE_KEEP_WEEKS * 7 * 86400)

        def write(db: Any) -> None:
            db.conn.executemany(
                "INSERT OR IGNORE INTO care_activity (household_id, day, bucket) VALUES (?, ?, ?)",
                [key for key in pending if key[0] in self._api.registry.households],  # type: ignore[union-attr]
            )
            if purge:
                db.conn.execute("DELETE FROM care_activity WHERE day < ?", (oldest,))

        try:
            await self._api.store.async_write(write)
        except Exception:
            self._buckets_pending.update(pending)  # try again on the next pass
            raise
        if purge:
            self._purged_on = today
            self._buckets_seen = {k for k in self._buckets_seen if k[1] == today}

    async def _check_check_in(self, household: str, now: float) -> list[str]:
        settings = self.check_in.get(household)
        if settings is None or not settings.enabled or household in self.away:
            return []
        day = local_day(now)
        if (household, day) in self._checked_in:
            return []
        deadline = at_on_day(day, parse_hhmm(settings.by))
        stage = self._check_in_stage.get((household, day))
        if now >= deadline + settings.grace_min * 60 and stage != "alerted":
            self._check_in_stage[(household, day)] = "alerted"
            self._request(
                household,
                "missed_check_in",
                "high",
                f"今日未报平安 No check-in today by {settings.by} (+{settings.grace_min:g} min)",
                dedup=f"missed_check_in:{day}",
                data={
                    "title_key": "missed_check_in",
                    "params": {"by": settings.by, "grace": f"{settings.grace_min:g}"},
                },
            )
            return [f"missed_check_in:{household}"]
        if now >= deadline and stage is None:
            self._check_in_stage[(household, day)] = "reminded"
            self._request(
                household,
                "check_in_reminder",
                "info",
                "请按“确定”报平安 Please check in: press OK",
                dedup=f"check_in_reminder:{day}",
                data={"title_key": "check_in_reminder", "params": {}},
            )
            return [f"check_in_reminder:{household}"]
        return []

    async def _check_reminders(self, now: float) -> list[str]:
        raised = []
        today, yesterday = local_day(now), local_day(now - 86400)
        for reminder in list(self.reminders.values()):
            if not reminder.active:
                continue
            for day in (yesterday, today):
                for when in reminder.times:
                    due = at_on_day(day, parse_hhmm(when))
                    key = (reminder.id, due)
                    state = self._reminder_log.get(key)
                    if due > now or now - due > 86400 or due < reminder.created:
                        continue
                    if state is None:
                        await self._set_reminder_state(key, "due", None)
                        self._request(
                            reminder.household_id,
                            "reminder",
                            "info",
                            f"{_REMINDER_LABEL[reminder.kind]}: {reminder.title}",
                            dedup=f"reminder:{reminder.id}:{due:.0f}",
                            resident=reminder.resident_id,
                            data={
                                "reminder_id": reminder.id,
                                "due": due,
                                "title_key": f"reminder_{reminder.kind}",
                                "params": {"title": reminder.title},
                            },
                        )
                        raised.append(f"reminder:{reminder.id}")
                    elif state == "due" and now >= due + reminder.window_min * 60:
                        await self._set_reminder_state(key, "missed", None)
                        self._request(
                            reminder.household_id,
                            "missed_medication",
                            "high",
                            f"未确认{'服药' if reminder.kind == 'medication' else '预约'} Not confirmed: "
                            f"{reminder.title} ({when})",
                            dedup=f"missed:{reminder.id}:{due:.0f}",
                            resident=reminder.resident_id,
                            data={
                                "reminder_id": reminder.id,
                                "due": due,
                                "title_key": f"missed_{reminder.kind}",
                                "params": {"title": reminder.title, "when": when},
                            },
                        )
                        raised.append(f"missed_medication:{reminder.id}")
        return raised

    # -- plumbing ----------------------------------------------------------------

    def _request(
        self,
        household: str,
        kind: str,
        severity: str,
        title: str,
        *,
        dedup: str,
        resident: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        assert self._api is not None
        self._api.bus.fire(
            AlertRequested(
                kind=kind,
                severity=severity,
                title=title,
                dedup_key=dedup,
                resident=resident,
                data={**(data or {}), "care_key": dedup},
                context=Context(household=household, origin=self.name),
            )
        )

    def _answer(self, alert_id: int, household: str, by: str, note: str) -> None:
        assert self._api is not None
        self._api.bus.fire(
            core_events.AlertAnswered(
                alert_id=alert_id,
                action="resolve",
                by=by,
                note=note,
                context=Context(household=household, origin=self.name, user=by),
            )
        )

    async def _set_reminder_state(self, key: tuple[str, float], state: str, by: str | None) -> None:
        await self._write(
            "INSERT OR REPLACE INTO care_reminder_log (reminder_id, due, state, by, ts) "
            "VALUES (?, ?, ?, ?, ?)",
            (key[0], key[1], state, by, self.clock()),
        )
        self._reminder_log[key] = state

    async def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        assert self._api is not None
        await self._api.store.async_write(lambda db: db.conn.execute(sql, params))

    def _changed(self, household_id: str, what: str) -> None:
        assert self._api is not None
        context = Context(household=household_id, origin=self.name)
        self._api.bus.fire(CareChanged(what=what, context=context))

    def _require_household(self, household_id: str) -> None:
        assert self._api is not None
        if household_id not in self._api.registry.households:
            raise CareError("not_found", f"no household {household_id!r}")
