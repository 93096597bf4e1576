"""Component `alerts`: the durable, escalating alert engine.

Guarantees, in order:

1. An alert is committed to SQLite (synchronous=FULL) before any channel is
   told. Requests are group-committed: a burst of alarms costs one fsync.
2. Escalation timers are wall-clock times stored with the alert, so after a
   crash or restart open alerts resume at the step they were on.
3. Every step is delivered at least once to every registered channel: each
   (alert, step, channel) outcome is recorded, and what is missing after a
   restart — or failed — is retried with backoff.
4. Acknowledgement stops escalation at once (in memory first, then on disk),
   so no channel is told again after a person has the alert. So does the
   resident's "I'm OK" (`async_cancel`), which never erases the alert: it is
   kept, marked as cancelled, and the duty desk calls back where the policy
   says so.
5. Repeats of the same condition (`dedup_key`) while an alert is unresolved
   only count up: a sensor flapping 100 times a minute is one alert with a count.
6. During a policy's cancel window the alert is `held` (`data["held"]`): only
   the household's own screens know of it. When the window passes without a
   cancel, the engine announces it (transition `window_passed`) and carers and
   the duty desk see it from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import aiohttp
import orjson
import sqlite_utils

from linli.common.backoff import backoff_delay
from linli.common.ids import new_id
from linli.gateway.component import ComponentApi
from linli.gateway.context import Context
from linli.gateway.events import AlertAnswered, AlertChanged, AlertRequested
from linli.gateway.notify import Audience, Delivery, Outcome
from linli.gateway.uplink import outbox as uplink_outbox
from linli.services.alerts.escalation import Policy, default_policy
from linli.services.alerts.model import COLUMNS, OPEN_STATES, Alert, AlertError, AlertState, Severity
from linli.services.alerts.webhook import WebhookChannel
from linli.wire.messages import alert_event

_LOGGER = logging.getLogger(__name__)
DELIVERY_TIMEOUT_S: Final = 5.0
RETRY_MIN_S: Final = 1.0
RETRY_MAX_S: Final = 60.0


def _row_to_alert(row: tuple[Any, ...]) -> Alert:
    data = dict(zip(COLUMNS, row, strict=True))
    data["state"] = AlertState(data["state"])
    data["data"] = orjson.loads(data["data"] or "{}")
    return Alert(**data)


def _alert_row(alert: Alert) -> tuple[Any, ...]:
    values = {**alert.as_dict(), "dedup_key": alert.dedup_key}
    values["data"] = orjson.dumps(alert.data).decode()
    return tuple(values[c] for c in COLUMNS)


_UPSERT: Final = (
    f"INSERT OR REPLACE INTO alerts ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)


class AlertEngine:
    name = "alerts"
    requires = ("registry",)

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._api: ComponentApi | None = None
        self.alerts: dict[int, Alert] = {}  # every unresolved alert
        self._by_key: dict[tuple[str, str], Alert] = {}
        self._policies: dict[tuple[str, str], Policy] = {}
        self._requests: asyncio.Queue[AlertRequested] = asyncio.Queue()
        self._retries: dict[tuple[int, int, str], tuple[float, int]] = {}
        self._lock = asyncio.Lock()  # raises, acknowledgements, resolutions
        self._due_lock = asyncio.Lock()  # one escalation pass at a time
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.deliveries = 0
        self._session: aiohttp.ClientSession | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def async_start(self, api: ComponentApi) -> None:
        self._api = api

        def load(conn: Any) -> tuple[list[Any], list[Any]]:
            alerts = conn.execute(
                f"SELECT {', '.join(COLUMNS)} FROM alerts WHERE state != 'resolved'"
            ).fetchall()
            policies = conn.execute("SELECT household_id, kind, policy FROM alert_policies").fetchall()
            return alerts, policies

        await api.store.async_replay(self.name, self._replay)  # raises a crash kept from the main file
        rows, policies = await api.store.async_read(load)
        for household, kind, policy in policies:
            self._policies[(household, kind)] = Policy.from_dict(orjson.loads(policy))
        for row in rows:
            self._remember(_row_to_alert(row))
        resumed = sum(1 for a in self.alerts.values() if a.escalating)
        if resumed:
            _LOGGER.info("alerts: resumed %d open alerts and their escalation timers", resumed)
        api.bus.listen(AlertRequested, self._on_request)
        api.bus.listen(AlertAnswered, self._on_answer)
        webhooks = api.config.get("alerts", {}).get("webhooks", [])
        if webhooks:
            self._session = aiohttp.ClientSession()
            for hook in webhooks:
                channel = WebhookChannel(
                    webhook_id=hook["id"],
                    url=hook["url"],
                    secret=hook["secret"],
                    audiences=hook.get("audiences", ["carers", "emergency"]),
                    households=hook.get("households"),
                    session=self._session,
                )
                api.notifier.register(channel)
        self._tasks = [
            asyncio.create_task(self._raise_worker(), name="linli-alerts-raise"),
            asyncio.create_task(self._timer_loop(), name="linli-alerts-timers"),
        ]

    async def async_stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        assert self._api is not None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _remember(self, alert: Alert) -> None:
        if alert.state is AlertState.RESOLVED:
            self.alerts.pop(alert.id, None)
            if alert.dedup_key:
                key = (alert.household_id, alert.dedup_key)
                if self._by_key.get(key) is alert:
                    del self._by_key[key]
            return
        self.alerts[alert.id] = alert
        if alert.dedup_key:
            self._by_key[(alert.household_id, alert.dedup_key)] = alert

    # -- policies ----------------------------------------------------------------

    def policy(self, household_id: str, kind: str) -> Policy:
        return self._policies.get((household_id, kind)) or default_policy(kind)

    async def async_set_policy(self, household_id: str, kind: str, policy: dict[str, Any]) -> Policy:
        parsed = Policy.from_dict(policy)
        text = orjson.dumps(parsed.as_dict()).decode()
        await self._store_write(
            lambda db: db.conn.execute(
                "INSERT OR REPLACE INTO alert_policies (household_id, kind, policy) VALUES (?, ?, ?)",
                (household_id, kind, text),
            )
        )
        self._policies[(household_id, kind)] = parsed
        return parsed

    # -- raising -----------------------------------------------------------------

    async def async_raise(
        self,
        *,
        kind: str,
        household_id: str,
        title: str,
        severity: str = Severity.CRITICAL,
        detail: str = "",
        resident: str | None = None,
        dedup_key: str | None = None,
        data: dict[str, Any] | None = None,
        context: Context | None = None,
    ) -> Alert:
        """Raise (durably) and start escalating; returns once the alert is on disk."""
        request = AlertRequested(
            kind=kind,
            severity=str(severity),
            title=title,
            detail=detail,
            resident=resident,
            dedup_key=dedup_key,
            data=data or {},
            context=context or Context(household=household_id, origin="alerts"),
        )
        [alert] = await self._raise_batch([request])
        return alert

    def _validate(self, request: AlertRequested) -> str | None:
        gateway = self._api
        assert gateway is not None
        household = request.context.household
        if not household:
            return "alert request without a household"
        if household not in gateway.registry.households:
            return f"alert request for unknown household {household!r}"
        if request.severity not in Severity.__members__.values():
            return f"severity {request.severity!r} is not one of {[s.value for s in Severity]}"
        if not request.kind or not request.title:
            return "alert request needs a kind and a title"
        return None

    async def _raise_worker(self) -> None:
        while True:
            batch = [await self._requests.get()]
            while not self._requests.empty() and len(batch) < 500:
                batch.append(self._requests.get_nowait())
            try:
                await self._raise_batch(batch)
            except Exception:
                _LOGGER.exception("raising %d alerts failed; retrying in 1 s", len(batch))
                for request in batch:
                    self._requests.put_nowait(request)
                await asyncio.sleep(1.0)

    def _admit(
        self, requests: list[AlertRequested], now: float
    ) -> tuple[list[Alert], list[Alert], list[Alert]]:
        """Validate, fold repeats into open alerts, and create the new ones (in memory)."""
        results: list[Alert] = []
        new: list[Alert] = []
        repeated: list[Alert] = []
        for request in requests:
            problem = self._validate(request)
            if problem is not None:
                if len(requests) == 1:
                    raise AlertError("invalid_alert", problem)
                _LOGGER.warning("alert refused: %s (%s: %s)", problem, request.kind, request.title)
                continue
            household = request.context.household
            assert household is not None
            existing = self._by_key.get((household, request.dedup_key)) if request.dedup_key else None
            if existing is not None and existing.state is AlertState.CANCELLED:
                existing = None  # the resident said "I'm OK" to that one: a new press is a new alarm
            if existing is not None:
                existing.count += 1
                existing.last_seen_at = now
                if existing not in repeated:
                    repeated.append(existing)
                results.append(existing)
                continue
            alert = Alert(
                id=new_id(),
                kind=request.kind,
                severity=request.severity,
                household_id=household,
                resident=request.resident,
                title=request.title,
                detail=request.detail,
                dedup_key=request.dedup_key,
                count=1,
                state=AlertState.RAISED,
                raised_at=now,
                last_seen_at=now,
                step=-1,
                next_step_at=now,
                data=request.data,
            )
            if self.policy(household, request.kind).cancel_window_s > 0:
                alert.data = {**alert.data, "held": True}
            self._remember(alert)
            new.append(alert)
            results.append(alert)
        return results, new, repeated

    @staticmethod
    def _rows(
        new: list[Alert], repeated: list[Alert], now: float
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The alert rows and the `raised`/`repeated` events that record them."""
        rows = [_alert_row(a) for a in (*new, *repeated)]
        events = [(a.id, now, "raised", None, None, None, None, None, a.title) for a in new]
        events += [
            (a.id, now, "repeated", None, None, None, None, None, f"count {a.count}") for a in repeated
        ]
        return rows, events

    def _replay(self, db: sqlite_utils.Database, doc: dict[str, Any]) -> bool:
        """Write a journaled raise unless the main file holds it (its events are its proof)."""
        events = [tuple(e) for e in doc["events"]]
        held = db.conn.execute(
            "SELECT 1 FROM alert_events WHERE alert_id = ? AND ts = ? AND action = ?", events[0][:3]
        ).fetchone()
        if held is not None:
            return False
        self._write(db, [tuple(r) for r in doc["rows"]], events)
        return True

    def _announce(self, new: list[Alert], repeated: list[Alert]) -> None:
        bus = self._bus
        for alert in new:
            bus.fire(self._changed(alert, "raised"))
        for alert in repeated:
            bus.fire(self._changed(alert, "repeated"))
        if new:
            self._wake.set()

    def _on_request(self, request: AlertRequested) -> None:
        """Bus callback. A critical alarm is committed right here, synchronously.

        This runs inside the MQTT receive callback of the message that carried the
        alarm, and the broker is acknowledged as soon as that callback returns. If the
        gateway died between that acknowledgement and an asynchronous commit, the SOS
        would be gone: neither the device nor the broker would send it again. So a
        critical alarm is committed to the alarm journal here (a fraction of a
        millisecond on the loop, never behind telemetry); everything else is
        group-committed by the raise worker.
        """
        if request.severity != Severity.CRITICAL or self._api is None:
            self._requests.put_nowait(request)
            return
        now = self.clock()
        try:
            _, new, repeated = self._admit([request], now)
        except AlertError as exc:
            _LOGGER.warning("alert refused: %s (%s: %s)", exc.message, request.kind, request.title)
            return
        if not new and not repeated:
            return
        rows, events = self._rows(new, repeated, now)
        try:
            # On disk (the alarm journal) before the broker is acknowledged; the main
            # file gets it from the writer thread, behind whatever it is writing now.
            self._api.store.write_journaled(
                self.name, {"rows": rows, "events": events}, lambda db: self._write(db, rows, events)
            )
        except Exception:
            _LOGGER.exception("could not commit a critical alert at once; retrying from the queue")
            for alert in new:
                self.alerts.pop(alert.id, None)
                if alert.dedup_key:
                    self._by_key.pop((alert.household_id, alert.dedup_key), None)
            self._requests.put_nowait(request)
            return
        self._announce(new, repeated)

    async def _raise_batch(self, requests: list[AlertRequested]) -> list[Alert]:
        now = self.clock()
        async with self._lock:
            results, new, repeated = self._admit(requests, now)
            if new or repeated:
                rows, events = self._rows(new, repeated, now)
                await self._store_write(lambda db: self._write(db, rows, events))
        self._announce(new, repeated)
        return results

    # -- answers -----------------------------------------------------------------

    def _on_answer(self, event: AlertAnswered) -> None:
        assert self._api is not None
        self._api.spawn(self._answer(event), "alerts-answer")

    async def _answer(self, event: AlertAnswered) -> None:
        try:
            if event.action == "acknowledge":
                await self.async_acknowledge(event.alert_id, event.by)
            elif event.action == "resolve":
                await self.async_resolve(event.alert_id, event.by, event.note)
            elif event.action == "cancel":
                await self.async_cancel(event.alert_id, event.by, event.note)
            else:
                _LOGGER.warning("unknown alert answer %r from %s", event.action, event.by)
        except AlertError as exc:
            _LOGGER.warning("alert answer refused: %s", exc.message)

    def _get(self, alert_id: int) -> Alert:
        alert = self.alerts.get(alert_id)
        if alert is None:
            raise AlertError("not_found", f"no open alert {alert_id}")
        return alert

    async def async_acknowledge(self, alert_id: int, by: str) -> Alert:
        """A person has the alert: escalation stops (recorded with who and when)."""
        if not by:
            raise AlertError("invalid", "an acknowledgement needs the person who made it")
        async with self._lock:
            alert = self._get(alert_id)
            if alert.state is AlertState.ACKNOWLEDGED:
                return alert
            now = self.clock()
            alert.state = AlertState.ACKNOWLEDGED  # stops deliveries before the write returns
            alert.acknowledged_at, alert.acknowledged_by = now, by
            alert.next_step_at = None
            self._drop_retries(alert.id)
            row = _alert_row(alert)
            await self._store_write(
                lambda db: self._write(
                    db, [row], [(alert.id, now, "acknowledged", by, alert.step, None, None, None, None)]
                )
            )
        self._bus.fire(self._changed(alert, "acknowledged", user=by))
        return alert

    async def async_resolve(self, alert_id: int, by: str, note: str) -> Alert:
        """Close the alert; a resolution needs a note saying what happened."""
        if not note or not note.strip():
            raise AlertError("note_required", "resolving an alert needs a note saying what happened")
        if not by:
            raise AlertError("invalid", "a resolution needs the person who made it")
        async with self._lock:
            alert = self._get(alert_id)
            now = self.clock()
            if alert.acknowledged_at is None:
                alert.acknowledged_at, alert.acknowledged_by = now, by
            alert.state = AlertState.RESOLVED
            alert.resolved_at, alert.resolved_by, alert.resolution_note = now, by, note.strip()
            alert.next_step_at = None
            self._drop_retries(alert.id)
            row = _alert_row(alert)
            await self._store_write(
                lambda db: self._write(
                    db, [row], [(alert.id, now, "resolved", by, alert.step, None, None, None, note.strip())]
                )
            )
            self._remember(alert)
        self._bus.fire(self._changed(alert, "resolved", user=by))
        return alert

    async def async_cancel(self, alert_id: int, by: str, note: str = "") -> Alert:
        """The resident answered "I'm OK": escalation stops, and the alert is kept, marked.

        Within the policy's cancel window, or where the policy says `close`, the alert is
        resolved at once (marked as cancelled by the resident). Otherwise it stays in the
        duty desk's queue in the `cancelled` state with a call-back task (delivered to the
        duty desk on every channel) until someone has called and resolves it.
        """
        if not by:
            raise AlertError("invalid", "a cancel needs the person who made it")
        assert self._api is not None
        async with self._lock:
            alert = self._get(alert_id)
            if alert.state is AlertState.CANCELLED:
                return alert
            now = self.clock()
            within = bool(alert.data.get("held"))
            call_back = self.policy(alert.household_id, alert.kind).on_cancel == "call_back" and not within
            note = (note or "").strip()[:1000] or "resident answered: I'm OK"
            alert.data = {
                **alert.data,
                "cancelled": {
                    "by": by,
                    "at": now,
                    "within_window": within,
                    "call_back": "pending" if call_back else None,
                },
            }
            alert.next_step_at = None
            self._drop_retries(alert.id)
            events = [(alert.id, now, "cancelled", by, alert.step, None, None, None, note)]
            if call_back:
                alert.state = AlertState.CANCELLED
                events.append(
                    (alert.id, now, "call_back", None, alert.step, None, Audience.DUTY_DESK.value, None, None)
                )
            else:
                alert.state = AlertState.RESOLVED
                if alert.acknowledged_at is None:
                    alert.acknowledged_at, alert.acknowledged_by = now, by
                alert.resolved_at, alert.resolved_by, alert.resolution_note = now, by, note
            row = _alert_row(alert)
            await self._store_write(lambda db: self._write(db, [row], events))
            self._remember(alert)
        self._bus.fire(self._changed(alert, "cancelled", user=by))
        if call_back:
            self._api.spawn(self._call_back(alert), "alerts-call-back")
        return alert

    async def _call_back(self, alert: Alert) -> None:
        """Put the call-back task in front of the duty desk on every channel (recorded, best effort:
        the alert also stays in the desk's queue until it is resolved)."""
        payload = self._payload_for(alert, Audience.DUTY_DESK)

        async def one(channel: Any) -> tuple[str, Delivery]:
            try:
                return channel.name, await asyncio.wait_for(
                    channel.async_deliver(payload, Audience.DUTY_DESK), DELIVERY_TIMEOUT_S
                )
            except Exception as exc:  # a channel's failure is recorded, never fatal
                return channel.name, Delivery(outcome=Outcome.FAILED, detail=f"{type(exc).__name__}: {exc}")

        results = await asyncio.gather(*(one(c) for c in self._channels()))
        now, desk = self.clock(), Audience.DUTY_DESK.value
        events = [
            (alert.id, now, "delivery", None, alert.step, name, desk, d.outcome.value, d.detail)
            for name, d in results
        ]
        if events:
            await self._store_write(lambda db: self._write(db, [], events))

    # -- escalation --------------------------------------------------------------

    async def _timer_loop(self) -> None:
        assert self._api is not None
        # Channels register as their components start; once all have, finish any
        # deliveries a crash interrupted.
        await self._api.ready.wait()
        try:
            await self.async_redeliver_missing()
        except Exception:
            _LOGGER.exception("re-delivering interrupted alert steps failed")
        while True:
            try:
                await self.async_run_due()
            except Exception:
                _LOGGER.exception("alert escalation pass failed; will run again")
            due = [a.next_step_at for a in self.alerts.values() if a.escalating and a.next_step_at]
            due += [at for at, _ in self._retries.values()]
            wait = min(due, default=self.clock() + 1.0) - self.clock()
            self._wake.clear()
            # Never sleep long: the clock may be a test's, or the wall clock may jump.
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that lands as the event fires, and the engine would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, min(wait, 1.0))):
                    await self._wake.wait()

    async def async_run_due(self, now: float | None = None) -> int:
        """Start every escalation step and retry that is due; returns deliveries attempted."""
        async with self._due_lock:
            return await self._run_due(self.clock() if now is None else now)

    async def _run_due(self, now: float) -> int:
        attempted = 0
        for alert in sorted(self.alerts.values(), key=lambda a: a.raised_at):
            if alert.escalating and alert.next_step_at is not None and alert.next_step_at <= now:
                attempted += await self._start_step(alert, now)
        for (alert_id, step, channel), (at, attempts) in list(self._retries.items()):
            alert = self.alerts.get(alert_id)
            if alert is None or not alert.escalating:
                self._retries.pop((alert_id, step, channel), None)
            elif at <= now:
                attempted += await self._deliver(alert, step, [channel], now, attempts)
        return attempted

    def _audiences(self, alert: Alert, step: int) -> list[Audience]:
        policy = self.policy(alert.household_id, alert.kind)
        if step < len(policy.steps):
            return [policy.steps[step].audience]
        # Re-alert: everyone reached so far, again.
        return list(dict.fromkeys(s.audience for s in policy.steps))

    async def _start_step(self, alert: Alert, now: float) -> int:
        policy = self.policy(alert.household_id, alert.kind)
        step = alert.step + 1
        alert.step = step
        # The cancel window ends with the first step at or after it: from now on carers and
        # the duty desk may see the alert (the hub and the lists read `held`).
        released = bool(alert.data.get("held")) and (
            step >= len(policy.steps) or policy.steps[step].after_s >= policy.cancel_window_s
        )
        if released:
            alert.data = {**alert.data, "held": False}
        if step + 1 < len(policy.steps):
            alert.next_step_at = alert.raised_at + policy.steps[step + 1].after_s
        elif policy.repeat_s is not None:
            alert.next_step_at = now + policy.repeat_s
        else:
            alert.next_step_at = None
        row = _alert_row(alert)
        audiences = ",".join(a.value for a in self._audiences(alert, step))
        await self._store_write(
            lambda db: self._write(
                db,
                [row],
                [
                    (
                        alert.id,
                        now,
                        "escalated" if step else "notifying",
                        None,
                        step,
                        None,
                        audiences,
                        None,
                        None,
                    )
                ],
            )
        )
        if released:
            self._bus.fire(self._changed(alert, "window_passed"))
        channels = [c.name for c in self._channels()]
        return await self._deliver(alert, step, channels, now, 0)

    async def _deliver(self, alert: Alert, step: int, channels: list[str], now: float, attempts: int) -> int:
        """Deliver one step on the given channels; record each outcome durably."""
        assert self._api is not None
        by_name = {c.name: c for c in self._channels()}
        audiences = self._audiences(alert, step)
        payloads = {audience: self._payload_for(alert, audience) for audience in audiences}

        async def one(name: str) -> tuple[str, Delivery]:
            channel = by_name.get(name)
            if channel is None:
                return name, Delivery(outcome=Outcome.NO_RECIPIENT, detail="channel gone")
            reached: list[Delivery] = []
            for audience in audiences:
                if not alert.escalating:  # acknowledged meanwhile: tell nobody else
                    break
                try:
                    reached.append(
                        await asyncio.wait_for(
                            channel.async_deliver(payloads[audience], audience), DELIVERY_TIMEOUT_S
                        )
                    )
                except Exception as exc:  # a channel's failure is recorded, never fatal
                    reached.append(Delivery(outcome=Outcome.FAILED, detail=f"{type(exc).__name__}: {exc}"))
            if any(d.outcome is Outcome.FAILED for d in reached):
                return name, next(d for d in reached if d.outcome is Outcome.FAILED)
            if any(d.outcome is Outcome.DELIVERED for d in reached):
                return name, Delivery(
                    outcome=Outcome.DELIVERED, detail="; ".join(d.detail for d in reached if d.detail)
                )
            return name, Delivery(outcome=Outcome.NO_RECIPIENT)

        if not alert.escalating:
            return 0
        results = await asyncio.gather(*(one(name) for name in channels))
        self.deliveries += len(results)
        events, deliveries = [], []
        delivered_any = False
        for name, result in results:
            events.append(
                (
                    alert.id,
                    self.clock(),
                    "delivery",
                    None,
                    step,
                    name,
                    ",".join(a.value for a in audiences),
                    result.outcome.value,
                    result.detail,
                )
            )
            deliveries.append((alert.id, step, name, result.outcome.value, attempts + 1, self.clock()))
            if result.outcome is Outcome.FAILED:
                delay = backoff_delay(attempts, base=RETRY_MIN_S, cap=RETRY_MAX_S, jitter=False)
                self._retries[(alert.id, step, name)] = (now + delay, attempts + 1)
            else:
                self._retries.pop((alert.id, step, name), None)
                delivered_any |= result.outcome is Outcome.DELIVERED
        became_notified = delivered_any and alert.state is AlertState.RAISED
        if became_notified:
            alert.state = AlertState.NOTIFIED
        row = _alert_row(alert)

        def record(db: sqlite_utils.Database) -> None:
            self._write(db, [row], events)
            db.conn.executemany(
                "INSERT OR REPLACE INTO alert_deliveries (alert_id, step, channel, outcome, attempts, ts) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                deliveries,
            )

        await self._store_write(record)
        if became_notified:
            self._bus.fire(self._changed(alert, "notified"))
        return len(results)

    async def async_redeliver_missing(self) -> int:
        """After a restart: deliver the current step on every channel that has no outcome yet."""
        async with self._due_lock:
            return await self._redeliver_missing()

    async def _redeliver_missing(self) -> int:
        assert self._api is not None
        open_ids = [a.id for a in self.alerts.values() if a.escalating and a.step >= 0]
        if not open_ids:
            return 0

        def done(conn: Any) -> set[tuple[int, int, str]]:
            marks = ",".join("?" * len(open_ids))
            return {
                (r[0], r[1], r[2])
                for r in conn.execute(
                    f"SELECT alert_id, step, channel FROM alert_deliveries WHERE alert_id IN ({marks}) "
                    "AND outcome != 'failed'",
                    open_ids,
                )
            }

        recorded = await self._api.store.async_read(done)
        attempted = 0
        now = self.clock()
        for alert_id in open_ids:
            alert = self.alerts[alert_id]
            missing = [c.name for c in self._channels() if (alert.id, alert.step, c.name) not in recorded]
            if missing:
                attempted += await self._deliver(alert, alert.step, missing, now, 0)
        return attempted

    def _payload_for(self, alert: Alert, audience: Audience) -> dict[str, Any]:
        """The alert as this audience may see it.

        Sensitive data (a vital-sign reading) leaves the household only with the
        household's consent for that purpose; without it, carers, the duty desk and
        providers still learn that someone needs attention, but not the reading.
        """
        payload = alert.as_dict()
        category = alert.data.get("sensitive")
        if not category or audience is Audience.HOUSEHOLD:
            return payload
        purpose = "carer" if audience is Audience.CARERS else "provider"
        assert self._api is not None
        if self._api.privacy.may_share(str(category), alert.household_id, purpose):
            return payload
        return {
            **payload,
            "title": "健康提醒 Health alert — details withheld (no consent to share)",
            "detail": "",
            "data": {"sensitive": category, "withheld": True},
        }

    def _drop_retries(self, alert_id: int) -> None:
        for key in [k for k in self._retries if k[0] == alert_id]:
            del self._retries[key]

    # -- queries -----------------------------------------------------------------

    def open_alerts(self, household_id: str | None = None) -> list[Alert]:
        return sorted(
            (
                a
                for a in self.alerts.values()
                if a.state in (*OPEN_STATES, AlertState.ACKNOWLEDGED, AlertState.CANCELLED)
                and (household_id is None or a.household_id == household_id)
            ),
            key=lambda a: a.raised_at,
        )

    async def async_timeline(self, alert_id: int) -> list[dict[str, Any]]:
        assert self._api is not None
        rows = await self._api.store.async_read(
            lambda conn: conn.execute(
                "SELECT ts, action, actor, step, channel, audience, outcome, detail FROM alert_events "
                "WHERE alert_id = ? ORDER BY id",
                (alert_id,),
            ).fetchall()
        )
        keys = ("ts", "action", "actor", "step", "channel", "audience", "outcome", "detail")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    async def async_get(self, alert_id: int) -> Alert | None:
        if alert_id in self.alerts:
            return self.alerts[alert_id]
        assert self._api is not None
        row = await self._api.store.async_read(
            lambda conn: conn.execute(
                f"SELECT {', '.join(COLUMNS)} FROM alerts WHERE id = ?", (alert_id,)
            ).fetchone()
        )
        return _row_to_alert(row) if row else None

    # -- plumbing ----------------------------------------------------------------

    @property
    def _bus(self):  # type: ignore[no-untyped-def]
        assert self._api is not None
        return self._api.bus

    def _channels(self) -> list[Any]:
        assert self._api is not None
        return self._api.notifier.channels

    def _changed(self, alert: Alert, transition: str, user: str | None = None) -> AlertChanged:
        return AlertChanged(
            alert_id=alert.id,
            transition=transition,
            alert=alert.as_dict(),
            context=Context(household=alert.household_id, origin="alerts", user=user),
        )

    async def _store_write(self, fn: Callable[[sqlite_utils.Database], Any]) -> Any:
        assert self._api is not None
        return await self._api.store.async_write(fn)

    @staticmethod
    def _write(db: sqlite_utils.Database, rows: list[tuple[Any, ...]], events: list[tuple[Any, ...]]) -> None:
        db.conn.executemany(_UPSERT, rows)
        db.conn.executemany(
            "INSERT INTO alert_events (alert_id, ts, action, actor, step, channel, audience, outcome, "
            "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            events,
        )
        if uplink_outbox.is_active(db):  # the regional uplink hears of it in this same transaction
            for row in rows:
                alert = dict(zip(COLUMNS, row, strict=True))
                transitions = [e[2] for e in events if e[0] == alert["id"]]
                uplink_outbox.enqueue(db, "alert", alert_event(alert, transitions))
