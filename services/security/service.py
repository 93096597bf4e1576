"""Component `security`: each household's alarm panel, driven by its sensors and its people.

* Sensors are capability kinds (`roles.py`): door and window contacts, motion,
  glass-break trip the alarm according to their role and the arming mode;
  smoke, gas, water and tamper raise their own alert in every mode.
* People arm and disarm with a per-user PIN (`pins.py`); wrong codes lock the
  keypad with a growing backoff. Every privileged action is in `alarm_events`.
* The panel (`panel.py`) is persisted after every change, deadlines on the wall
  clock, so an exit or entry delay resumes after a restart with the time it had
  left; then `AlarmStateChanged` is fired.
* A triggered alarm raises an `intrusion` alert through the bus (the alert
  engine listens there; this service never imports it) and sounds the sirens.

`clock` is replaceable (tests step it); `async_run_due()` applies every
deadline that has come.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any, Final

from linli.gateway import keyfile
from linli.gateway.bus import EventBus
from linli.gateway.component import ComponentApi
from linli.gateway.context import Context
from linli.gateway.events import (
    AlarmStateChanged,
    AlertAnswered,
    AlertChanged,
    AlertRequested,
    HouseholdRemoved,
    StateChanged,
)
from linli.gateway.registry import Device, Registry
from linli.services.security import siren
from linli.services.security.errors import SecurityError
from linli.services.security.migrations import MIGRATIONS
from linli.services.security.panel import AlarmState, ArmMode, Bypass, Panel, Trip, blocks_arming, role_active
from linli.services.security.pins import (
    PEPPERED,
    async_hash_pin,
    async_verify_pin,
    check_pin_format,
    needs_rehash,
)
from linli.services.security.roles import HAZARDS, INTRUSION_KINDS, Role, default_role, intrusion_capabilities
from linli.services.security.settings import HouseholdSettings, parse_mode, parse_role
from linli.services.security.storage import AuditEvent, SecurityStore

_LOGGER = logging.getLogger(__name__)
_ORIGIN: Final = "security"
_MAX_USER_LEN: Final = 64


def _check_user(user: Any, what: str = "user") -> str:
    if not isinstance(user, str) or not user.strip() or len(user) > _MAX_USER_LEN:
        raise SecurityError(
            "invalid_user", f"{what} must be a non-empty id of at most {_MAX_USER_LEN} characters"
        )
    return user


#: The armed modes as the alert's detail says them (a zh-CN sentence: the screen shows it as is).
_MODE_ZH: Final = {"home": "在家布防", "away": "离家布防", "night": "夜间布防", "vacation": "度假布防"}


class Security:
    name = "security"
    requires = ("registry",)
    migrations = MIGRATIONS  # its own tables, made before it starts

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._api: ComponentApi | None = None
        self._db: SecurityStore | None = None
        self._panels: dict[str, Panel] = {}
        self._settings: dict[str, HouseholdSettings] = {}
        self._pins: dict[tuple[str, str], str] = {}
        self._pepper = b""  # read from the data folder at start
        self._locks: dict[str, asyncio.Lock] = {}
        self._siren_next: dict[str, float] = {}  # household → when to repeat the siren command
        self._trips: asyncio.Queue[StateChanged] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._saves: set[asyncio.Task[None]] = set()
        self._sirens: siren.SirenDriver | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def async_start(self, api: ComponentApi) -> None:
        self._api = api
        self._stopping = False
        self._db = SecurityStore(api.store)
        self._sirens = siren.SirenDriver(api.registry, api.commands)
        loaded = await self._db.async_load()
        self._panels = {p.household_id: p for p in loaded.panels}
        self._settings = loaded.settings
        self._pins = loaded.pins
        self._pepper, created = await asyncio.to_thread(
            keyfile.load_or_create, api.data_dir / "secrets" / "pin-pepper"
        )
        if created and any(d.startswith(PEPPERED) for d in self._pins.values()):
            _LOGGER.error(
                "security: the PIN pepper (%s) was missing and has been made anew: the %d PINs set "
                "before cannot be checked any more; restore that file from the data folder's backup, "
                "or have each household set its PINs again",
                api.data_dir / "secrets" / "pin-pepper",
                sum(d.startswith(PEPPERED) for d in self._pins.values()),
            )
        now = self.clock()
        for panel in self._panels.values():
            if panel.state is AlarmState.TRIGGERED:
                self._siren_next[panel.household_id] = now  # sound again at once
        live = [p for p in self._panels.values() if p.state is not AlarmState.DISARMED]
        if live:
            _LOGGER.info(
                "security: %d alarm panels resumed (%s)",
                len(live),
                ", ".join(sorted(f"{p.household_id} {p.state.value}" for p in live)),
            )
        api.bus.listen(StateChanged, self._on_state)
        api.bus.listen(HouseholdRemoved, self._forget)
        api.bus.listen(AlertChanged, self._on_alert_changed)
        self._tasks = [
            asyncio.create_task(self._trip_worker(), name="linli-security-sensors"),
            asyncio.create_task(self._timer_loop(), name="linli-security-timers"),
        ]

    async def async_stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._saves:  # panel writes are shielded; let the last ones land
            await asyncio.gather(*self._saves, return_exceptions=True)
        if self._sirens is not None:
            await self._sirens.async_close()

    # -- people: arming, disarming, bypass ---------------------------------------

    async def async_arm(
        self, household: str, mode: str, user: str, pin: str, force: bool = False
    ) -> dict[str, Any]:
        """Arm in `mode` (home, away, night, vacation) after the mode's exit delay.

        Refused with code `open_sensors` (and `data["sensors"]`) while a door or
        window that the mode watches is open, unless `force`: then those sensors
        are bypassed until the next disarm, recorded with who did it.
        """
        self._check_household(household)
        arm_mode = parse_mode(mode)
        _check_user(user)
        check_pin_format(pin)
        async with self._lock(household):
            panel = self._panel(household)
            await self._authenticate(panel, user, pin)
            now = self.clock()
            if panel.state in (AlarmState.PENDING, AlarmState.TRIGGERED):
                await self._save(panel)  # the right PIN reset the lockout
                raise SecurityError(
                    "alarm_active",
                    f"household {household!r} is {panel.state.value}: disarm first, then arm again",
                    state=panel.state.value,
                )
            open_sensors = self._open_sensors(household, panel, arm_mode)
            if open_sensors and not force:
                await self._save(
                    panel,
                    self._audit(panel, "arm_refused", user, mode=arm_mode.value, open=open_sensors),
                )
                names = ", ".join(s["name"] + (f" ({s['room']})" if s["room"] else "") for s in open_sensors)
                raise SecurityError(
                    "open_sensors",
                    f"cannot arm {arm_mode.value}: {len(open_sensors)} sensor(s) open: {names}; "
                    "close them, or arm with force to bypass them until the next disarm",
                    sensors=open_sensors,
                )
            events = []
            for sensor in open_sensors:
                bypass = Bypass(
                    device_id=sensor["device_id"],
                    by=user,
                    ts=now,
                    reason=f"open when armed {arm_mode.value} (forced)",
                    auto=True,
                )
                panel.bypassed[bypass.device_id] = bypass
                events.append(self._audit(panel, "bypass", user, **bypass.as_dict()))
            previous = panel.state
            exit_delay = self._settings_for(household).exit_delay_s[arm_mode]
            panel.arm(arm_mode, now, exit_delay)
            arm_event = self._audit(
                panel, "arm", user, mode=arm_mode.value, force=force, exit_delay_s=exit_delay
            )
            await self._commit(
                panel, previous, by=user, reason="armed by a user", events=[arm_event, *events], always=True
            )
        self._wake.set()
        return self.status(household)

    async def async_disarm(self, household: str, user: str, pin: str) -> dict[str, Any]:
        """Disarm from any state: stops an entry delay, silences the sirens.

        The intrusion alert of a triggered alarm stays open, acknowledged by the
        user who disarmed (a person has it: escalation stops).
        """
        self._check_household(household)
        _check_user(user)
        check_pin_format(pin)
        async with self._lock(household):
            panel = self._panel(household)
            await self._authenticate(panel, user, pin)
            previous = panel.state
            alert_id = panel.alert_id
            sounding = household in self._siren_next
            panel.disarm(self.clock())
            self._siren_next.pop(household, None)
            event = self._audit(panel, "disarm", user, previous=previous.value)
            await self._commit(panel, previous, by=user, reason="disarmed by a user", events=[event])
        if sounding:
            self._sound(household, False)
        if alert_id is not None:
            self._bus.fire(
                AlertAnswered(
                    alert_id=alert_id,
                    action="acknowledge",
                    by=user,
                    context=Context(household=household, origin=_ORIGIN, user=user),
                )
            )
        return self.status(household)

    async def async_bypass(
        self, household: str, device: str, user: str, pin: str | None = None
    ) -> dict[str, Any]:
        """Leave a (faulty) door, window or motion sensor out of the alarm until unbypassed.

        While the alarm is not disarmed this needs the user's PIN. Smoke, gas,
        water and tamper cannot be bypassed: they stay active in every mode.
        """
        return await self._set_bypass(household, device, user, pin, bypass=True)

    async def async_unbypass(
        self, household: str, device: str, user: str, pin: str | None = None
    ) -> dict[str, Any]:
        """Put a bypassed sensor back into the alarm."""
        return await self._set_bypass(household, device, user, pin, bypass=False)

    async def _set_bypass(
        self, household: str, device_id: str, user: str, pin: str | None, *, bypass: bool
    ) -> dict[str, Any]:
        self._check_household(household)
        _check_user(user)
        device = self._device(household, device_id)
        if not intrusion_capabilities(device):
            raise SecurityError(
                "not_supported",
                f"device {device_id!r} is not a door, window, glass-break or motion sensor; smoke, gas, "
                "water and tamper alarms stay active in every mode and cannot be bypassed",
            )
        if pin is not None:
            check_pin_format(pin)
        async with self._lock(household):
            panel = self._panel(household)
            if panel.state is not AlarmState.DISARMED:
                if pin is None:
                    raise SecurityError(
                        "pin_required",
                        f"household {household!r} is {panel.state.value}: changing a bypass needs your PIN",
                    )
                await self._authenticate(panel, user, pin)
            if bypass:
                entry = Bypass(device_id=device_id, by=user, ts=self.clock(), reason="bypassed by a user")
                panel.bypassed[device_id] = entry
                await self._save(panel, self._audit(panel, "bypass", user, **entry.as_dict()))
            elif panel.bypassed.pop(device_id, None) is not None:
                await self._save(panel, self._audit(panel, "unbypass", user, device_id=device_id))
        return self.status(household)

    def _forget(self, event: HouseholdRemoved) -> None:
        """The household is gone (its panel, settings and PINs went with its rows)."""
        household = event.household_id
        self._panels.pop(household, None)
        self._settings.pop(household, None)
        self._siren_next.pop(household, None)
        self._locks.pop(household, None)
        for key in [k for k in self._pins if k[0] == household]:
            del self._pins[key]

    # -- people: PINs and settings -----------------------------------------------

    async def async_set_pin(
        self, household: str, user: str, pin: str, *, by: str | None = None, current: str | None = None
    ) -> None:
        """Set (or change) `user`'s PIN: 4 to 8 digits, stored only as an argon2 hash.

        `by` is who did it when it is not the user (a household admin); whoever
        calls this must have checked that they may. A user changing their own PIN
        gives the `current` one, checked like a keypad entry (wrong codes count
        toward the keypad's lockout): a phone left unlocked cannot change it.
        """
        self._check_household(household)
        _check_user(user)
        actor = _check_user(by, "by") if by is not None else user
        check_pin_format(pin)
        digest = await async_hash_pin(pin, self._pepper)
        async with self._lock(household):
            panel = self._panel(household)
            if by is None and (household, user) in self._pins:
                if current is None:
                    raise SecurityError(
                        "pin_required", "you have a PIN already: enter the current one to change it"
                    )
                await self._authenticate(panel, user, check_pin_format(current))
            await self._require_db().async_save_pin(
                household, user, digest, self._audit(panel, "pin_set", actor, user=user)
            )
            self._pins[(household, user)] = digest

    async def async_remove_pin(self, household: str, user: str, *, by: str) -> None:
        """Remove `user`'s PIN (they can no longer arm or disarm)."""
        self._check_household(household)
        _check_user(user)
        _check_user(by, "by")
        async with self._lock(household):
            if (household, user) not in self._pins:
                raise SecurityError("unknown_user", f"user {user!r} has no PIN in household {household!r}")
            panel = self._panel(household)
            await self._require_db().async_save_pin(
                household, user, None, self._audit(panel, "pin_removed", by, user=user)
            )
            del self._pins[(household, user)]

    async def async_configure(
        self,
        household: str,
        *,
        by: str,
        exit_delay_s: dict[str, float] | None = None,
        entry_delay_s: dict[str, float] | None = None,
        alarm_s: float | None = None,
    ) -> dict[str, Any]:
        """Change delays per mode (`{"away": 45}`) and the alarm period; returns the settings."""
        self._check_household(household)
        _check_user(by, "by")
        async with self._lock(household):
            settings = self._settings_for(household).updated(
                exit_delay_s=exit_delay_s, entry_delay_s=entry_delay_s, alarm_s=alarm_s
            )
            changes = {
                k: v
                for k, v in (
                    ("exit_delay_s", exit_delay_s),
                    ("entry_delay_s", entry_delay_s),
                    ("alarm_s", alarm_s),
                )
                if v is not None
            }
            panel = self._panel(household)
            await self._require_db().async_save_settings(
                household, settings, self._audit(panel, "settings", by, **changes)
            )
            self._settings[household] = settings
        return settings.as_dict()

    async def async_set_role(
        self, household: str, device: str, role: str | None, *, by: str
    ) -> dict[str, Any]:
        """Give a sensor a role (entry, perimeter, interior, 24h, ignore); None restores the default."""
        self._check_household(household)
        _check_user(by, "by")
        found = self._device(household, device)
        new_role = parse_role(role) if role is not None else None
        if not intrusion_capabilities(found):
            raise SecurityError(
                "not_supported",
                f"device {device!r} has no door, window, glass-break or motion sensor to give a role",
            )
        async with self._lock(household):
            settings = self._settings_for(household).updated()
            if new_role is None:
                settings.roles.pop(device, None)
            else:
                settings.roles[device] = new_role
            panel = self._panel(household)
            await self._require_db().async_save_settings(
                household,
                settings,
                self._audit(panel, "role", by, device_id=device, role=new_role.value if new_role else None),
            )
            self._settings[household] = settings
        return self.status(household)

    # -- reading -----------------------------------------------------------------

    def status(self, household: str) -> dict[str, Any]:
        """What an alarm keypad shows: state, time left, sensors with their roles, bypasses."""
        self._check_household(household)
        panel = self._panel(household)
        settings = self._settings_for(household)
        now = self.clock()
        mode = panel.armed_mode
        sensors = []
        hazards = []
        for device in self._registry.household_devices(household):
            for cap in device.profile.capabilities:
                state = device.states.get(cap.key)
                active = state.value is True if state is not None else None
                if cap.kind in INTRUSION_KINDS:
                    role = self._role(settings, device, cap.kind)
                    sensors.append(
                        {
                            **self._describe(device, cap.key, cap.kind, role),
                            "active": active,
                            "live": role_active(role, mode) and device.id not in panel.bypassed,
                            "bypassed": device.id in panel.bypassed,
                            "available": device.available,
                        }
                    )
                elif cap.kind in HAZARDS:
                    hazards.append(
                        {
                            "device_id": device.id,
                            "name": device.name,
                            "room": device.room,
                            "capability": cap.key,
                            "kind": cap.kind,
                            "active": active,
                            "available": device.available,
                        }
                    )
        return {
            "household_id": household,
            "state": panel.state.value,
            "mode": panel.mode.value if panel.mode else None,
            "since": panel.since or None,
            "deadline": panel.deadline,
            "remaining_s": max(0.0, panel.deadline - now) if panel.deadline is not None else None,
            "trigger": panel.trigger,
            "alert_id": panel.alert_id,
            "open": [s["device_id"] for s in sensors if s["active"]],
            "sensors": sensors,
            "hazards": hazards,
            "bypassed": [b.as_dict() for b in panel.bypassed.values()],
            "sirens": [device_id for device_id, _ in siren.sirens(self._registry, household)],
            "locked_out_s": panel.lockout.remaining(now),
            "users": sorted(u for h, u in self._pins if h == household),
            "settings": settings.as_dict(),
        }

    async def async_events(self, household: str, limit: int = 100) -> list[dict[str, Any]]:
        """The household's alarm audit trail, newest first."""
        self._check_household(household)
        return await self._require_db().async_events(household, max(1, min(int(limit), 1000)))

    # -- sensors -----------------------------------------------------------------

    def _on_state(self, event: StateChanged) -> None:
        """Bus callback (inline, must be quick): hazards alert at once, intrusion goes to the worker."""
        if event.new is not True or event.old is True:
            return
        kind = event.kind
        if kind in HAZARDS:
            self._raise_hazard(event)
        elif kind in INTRUSION_KINDS:
            self._trips.put_nowait(event)

    def _raise_hazard(self, event: StateChanged) -> None:
        hazard = HAZARDS[event.kind]
        device = self._registry.device(event.device_id)
        name = device.name if device else "设备"  # never a device id on a screen
        where = f" ({device.room})" if device and device.room else ""
        household = event.context.household
        panel = self._panels.get(household) if household else None
        self._bus.fire(
            AlertRequested(
                kind=hazard.kind,
                severity=hazard.severity,
                title=f"{hazard.title}: {name}{where}",
                dedup_key=f"{hazard.kind}:{event.device_id}",
                data={
                    # pages say it in the reader's language from the key and the name's forms
                    "title_key": hazard.kind,
                    "params": device.label_forms() if device else {},
                    "source": _ORIGIN,
                    "device_id": event.device_id,
                    "capability": event.capability,
                    "alarm_state": panel.state.value if panel else AlarmState.DISARMED.value,
                    "ts": event.ts,
                },
                context=event.context.child(origin=_ORIGIN),
            )
        )

    async def _trip_worker(self) -> None:
        while True:
            event = await self._trips.get()
            try:
                await self._trip(event)
            except Exception:
                _LOGGER.exception("security: handling %s of %s failed", event.kind, event.device_id)

    async def _trip(self, event: StateChanged) -> None:
        device = self._registry.device(event.device_id)
        if device is None:
            return
        household = device.household_id
        settings = self._settings_for(household)
        role = self._role(settings, device, event.kind)
        async with self._lock(household):
            panel = self._panel(household)
            if device.id in panel.bypassed:
                return
            decision = panel.decide(role)
            if decision is Trip.IGNORED:
                return
            trigger = {**self._describe(device, event.capability, event.kind, role), "ts": event.ts}
            await self._apply_trip(panel, decision, trigger, settings)

    async def _apply_trip(
        self, panel: Panel, decision: Trip, trigger: dict[str, Any], settings: HouseholdSettings
    ) -> None:
        """Move to pending or triggered (caller holds the household lock)."""
        previous = panel.state
        now = self.clock()
        if decision is Trip.PENDING and panel.mode is not None:
            panel.enter_pending(now, settings.entry_delay_s[panel.mode], trigger)
            reason = f"entry delay: {trigger['name']} opened"
        else:
            panel.enter_triggered(now, settings.alarm_s, trigger)
            reason = f"{trigger['role']} sensor {trigger['name']} tripped"
        event = self._audit(panel, panel.state.value, None, reason=reason, trigger=trigger)
        await self._commit(panel, previous, by=None, reason=reason, events=[event])
        if panel.state is AlarmState.TRIGGERED:
            await self._alarm(panel)
        self._wake.set()

    # -- the alarm ---------------------------------------------------------------

    async def _alarm(self, panel: Panel) -> None:
        """A triggered panel: raise the intrusion alert (through the bus) and sound the sirens."""
        household = panel.household_id
        trigger = panel.trigger or {}
        _LOGGER.info(
            "security: alarm triggered in household %s by %s (%s)",
            household,
            trigger.get("device_id", "a timer"),
            trigger.get("role", "?"),
        )
        self._request_alert(panel)
        self._siren_next[household] = self.clock() + siren.REPEAT_S
        self._sound(household, True)

    def _request_alert(self, panel: Panel) -> None:
        trigger = panel.trigger or {}
        name = trigger.get("name") or "传感器"  # never a device id on a screen
        where = f" ({trigger['room']})" if trigger.get("room") else ""
        device = self._registry.device(trigger.get("device_id") or "")
        mode = panel.mode.value if panel.mode else "disarmed"
        self._bus.fire(
            AlertRequested(
                kind="intrusion",
                severity="critical",
                title=f"入侵报警: {name}{where}",
                detail=f"{_MODE_ZH.get(mode, mode)}时触发",
                dedup_key=f"intrusion:{panel.household_id}",
                data={
                    "source": _ORIGIN,
                    "mode": mode,
                    "trigger": trigger,
                    "title_key": "intrusion",
                    "params": device.label_forms() if device else {},
                },
                context=Context(household=panel.household_id, origin=_ORIGIN),
            )
        )

    def _on_alert_changed(self, event: AlertChanged) -> None:
        """Remember which alert is this household's intrusion alarm (to acknowledge it on disarm)."""
        alert = event.alert
        if event.transition not in ("raised", "repeated") or alert.get("kind") != "intrusion":
            return
        if (alert.get("data") or {}).get("source") != _ORIGIN:
            return
        panel = self._panels.get(alert.get("household_id", ""))
        if panel is None or panel.alert_id == event.alert_id or panel.state is AlarmState.DISARMED:
            return
        panel.alert_id = event.alert_id
        task = asyncio.create_task(self._save_locked(panel), name="linli-security-save")
        self._saves.add(task)
        task.add_done_callback(self._saves.discard)

    async def _save_locked(self, panel: Panel) -> None:
        try:
            async with self._lock(panel.household_id):
                await self._save(panel)
        except Exception:
            _LOGGER.exception("security: saving the alert id of household %s failed", panel.household_id)

    def _sound(self, household: str, on: bool) -> None:
        if self._sirens is not None:
            self._sirens.sound(household, on)

    # -- time --------------------------------------------------------------------

    async def _timer_loop(self) -> None:
        gateway = self._gateway_required()
        await gateway.ready.wait()
        # Alarms that were triggered when the gateway stopped and whose alert the
        # engine never confirmed are requested again (the engine folds repeats).
        for panel in list(self._panels.values()):
            if panel.state is AlarmState.TRIGGERED and panel.alert_id is None:
                self._request_alert(panel)
        while not self._stopping:
            try:
                await self.async_run_due()
            except Exception:
                _LOGGER.exception("security: timer pass failed; will run again")
            deadlines = [p.deadline for p in self._panels.values() if p.deadline is not None]
            deadlines += list(self._siren_next.values())
            wait = min(deadlines, default=math.inf) - self.clock()
            self._wake.clear()
            # Never sleep long: the clock may be a test's, or the wall clock may jump.
            # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives as the event is set, and the loop would never stop.)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, min(wait, 1.0))):
                    await self._wake.wait()

    async def async_run_due(self, now: float | None = None) -> int:
        """Apply every delay or alarm period that has ended, repeat due siren commands; returns how many."""
        done = 0
        for household in list(self._panels):
            panel = self._panels[household]
            at = self.clock() if now is None else now
            if panel.due(at) is not None:
                async with self._lock(household):
                    done += await self._expire(panel, self.clock() if now is None else now)
        at = self.clock() if now is None else now
        for household, next_at in list(self._siren_next.items()):
            if next_at <= at:
                self._siren_next[household] = at + siren.REPEAT_S
                self._sound(household, True)
                done += 1
        return done

    async def _expire(self, panel: Panel, now: float) -> int:
        previous = panel.state
        settings = self._settings_for(panel.household_id)
        if panel.expire(now, settings.alarm_s) is None:
            return 0
        reason = {
            AlarmState.ARMING: "exit delay over",
            AlarmState.PENDING: "entry delay over without a disarm",
            AlarmState.TRIGGERED: "alarm period over",
        }[previous]
        event = self._audit(panel, panel.state.value, None, reason=reason, trigger=panel.trigger)
        await self._commit(panel, previous, by=None, reason=reason, events=[event])
        if panel.state is AlarmState.TRIGGERED:
            await self._alarm(panel)
        elif previous is AlarmState.TRIGGERED:
            self._siren_next.pop(panel.household_id, None)
            self._sound(panel.household_id, False)
        elif previous is AlarmState.ARMING:
            await self._exit_fault(panel, settings)
        return 1

    async def _exit_fault(self, panel: Panel, settings: HouseholdSettings) -> None:
        """Armed with a door or window still open (opened during the exit delay): it trips now."""
        assert panel.mode is not None
        for sensor in self._open_sensors(panel.household_id, panel, panel.mode):
            decision = panel.decide(Role(sensor["role"]))
            if decision is not Trip.IGNORED:
                await self._apply_trip(panel, decision, {**sensor, "ts": self.clock()}, settings)
                return

    # -- PINs and lockout ----------------------------------------------------------

    async def _authenticate(self, panel: Panel, user: str, pin: str) -> None:
        """Check `user`'s PIN against the lockout (caller holds the household lock)."""
        household = panel.household_id
        now = self.clock()
        remaining = panel.lockout.remaining(now)
        if remaining > 0:
            raise SecurityError(
                "locked_out",
                f"too many wrong PINs for household {household!r}: try again in {math.ceil(remaining)} s",
                retry_after_s=math.ceil(remaining),
            )
        if not any(h == household for h, _ in self._pins):
            raise SecurityError(
                "no_pin",
                f"household {household!r} has no alarm PIN yet: set one first",
            )
        digest = self._pins.get((household, user))
        if await async_verify_pin(digest, pin, self._pepper):
            panel.lockout.succeed()
            if digest is not None and needs_rehash(digest):
                self._pins[(household, user)] = new_digest = await async_hash_pin(pin, self._pepper)
                await self._require_db().async_save_pin(household, user, new_digest, None)
            return
        now = self.clock()
        lock_s = panel.lockout.fail(now)
        events = [self._audit(panel, "wrong_pin", user, failures=panel.lockout.failures)]
        if lock_s:
            events.append(
                self._audit(panel, "locked_out", user, seconds=lock_s, lockouts=panel.lockout.lockouts)
            )
        await self._save(panel, *events)
        if lock_s:
            _LOGGER.warning(
                "security: household %s keypad locked for %d s after repeated wrong PINs (lockout %d)",
                household,
                lock_s,
                panel.lockout.lockouts,
            )
            self._bus.fire(
                AlertRequested(
                    kind="tamper",
                    severity="warning",
                    title="报警密码多次错误，键盘已锁定",
                    detail=f"锁定 {lock_s:.0f} 秒（第 {panel.lockout.lockouts} 次）；最后尝试的账号：{user}",
                    dedup_key=f"keypad_lockout:{household}",
                    data={
                        "source": _ORIGIN,
                        "reason": "wrong_pin_lockout",
                        "seconds": lock_s,
                        "title_key": "keypad_locked",
                        "params": {},
                    },
                    context=Context(household=household, origin=_ORIGIN, user=user),
                )
            )
            raise SecurityError(
                "locked_out",
                f"too many wrong PINs for household {household!r}: try again in {math.ceil(lock_s)} s",
                retry_after_s=math.ceil(lock_s),
            )
        raise SecurityError("wrong_pin", f"wrong PIN for user {user!r} in household {household!r}")

    # -- plumbing ----------------------------------------------------------------

    def _open_sensors(self, household: str, panel: Panel, mode: ArmMode) -> list[dict[str, Any]]:
        """Sensors that stop arming in `mode`: active now, watched by the mode, not bypassed."""
        settings = self._settings_for(household)
        found = []
        for device in self._registry.household_devices(household):
            if device.id in panel.bypassed:
                continue
            for key, kind in intrusion_capabilities(device):
                state = device.states.get(key)
                role = self._role(settings, device, kind)
                if state is not None and state.value is True and blocks_arming(role, mode):
                    found.append(self._describe(device, key, kind, role))
                    break
        return found

    @staticmethod
    def _describe(device: Device, capability: str, kind: str, role: Role) -> dict[str, Any]:
        return {
            "device_id": device.id,
            "name": device.name,
            "room": device.room,
            "capability": capability,
            "kind": kind,
            "role": role.value,
        }

    @staticmethod
    def _role(settings: HouseholdSettings, device: Device, kind: str) -> Role:
        return settings.roles.get(device.id) or default_role(device, kind)

    def _audit(self, panel: Panel, action: str, actor: str | None, **detail: Any) -> AuditEvent:
        return AuditEvent(
            household_id=panel.household_id,
            ts=self.clock(),
            action=action,
            actor=actor,
            state=panel.state.value,
            detail=detail,
        )

    async def _save(self, panel: Panel, *events: AuditEvent) -> None:
        # Shielded: the panel in memory has already changed, so the write must land even
        # if the gateway stops (and cancels the caller) while it is queued.
        await asyncio.shield(self._require_db().async_save(panel, *events))

    async def _commit(
        self,
        panel: Panel,
        previous: AlarmState,
        *,
        by: str | None,
        reason: str,
        events: list[AuditEvent],
        always: bool = False,
    ) -> None:
        """Persist the panel with its audit events, then tell the bus (durable before told).

        `always`: tell even when the state stays the same (arming again restarts the exit delay).
        """
        await self._save(panel, *events)
        if panel.state is not previous or always:
            self._bus.fire(
                AlarmStateChanged(
                    state=panel.state.value,
                    previous=previous.value,
                    mode=panel.mode.value if panel.mode else None,
                    deadline=panel.deadline,
                    by=by,
                    reason=reason,
                    ts=panel.since,
                    context=Context(household=panel.household_id, origin=_ORIGIN, user=by),
                )
            )

    def _check_household(self, household: Any) -> None:
        if not isinstance(household, str) or household not in self._registry.households:
            raise SecurityError(
                "unknown_household", f"no household {household!r}: check the id (the registry lists them)"
            )

    def _device(self, household: str, device_id: Any) -> Device:
        device = self._registry.device(device_id) if isinstance(device_id, str) else None
        if device is None or device.household_id != household:
            raise SecurityError("unknown_device", f"no device {device_id!r} in household {household!r}")
        return device

    def _panel(self, household: str) -> Panel:
        panel = self._panels.get(household)
        if panel is None:
            panel = self._panels[household] = Panel(household_id=household)
        return panel

    def _settings_for(self, household: str) -> HouseholdSettings:
        return self._settings.get(household) or HouseholdSettings()

    def _lock(self, household: str) -> asyncio.Lock:
        lock = self._locks.get(household)
        if lock is None:
            lock = self._locks[household] = asyncio.Lock()
        return lock

    def _gateway_required(self) -> ComponentApi:
        if self._api is None:
            raise RuntimeError("security is not started: start the gateway first")
        return self._api

    def _require_db(self) -> SecurityStore:
        if self._db is None:
            raise RuntimeError("security is not started: start the gateway first")
        return self._db

    @property
    def _registry(self) -> Registry:
        return self._gateway_required().registry

    @property
    def _bus(self) -> EventBus:
        return self._gateway_required().bus
