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
7. Screens hear of an alert only through the notifier's channels, and only from
   the escalation step that names their audience: a step is delivered as it
   starts, and every later change (repeated, escalated, acknowledged, resolved,
   cancelled) is followed on the audiences reached so far, one message per
   screen per change. A first step due at once starts in the raise's own commit,
   so the household's screens have an SOS as soon as it is on disk.
8. Nothing is done without a context derived from its cause's: the request's
   (the button press's child) → the alert's → each step's → each delivery's (the
   TV box's `notify` command, the WebSocket message). `alert_events` keeps every
   id with its parent, and `async_trace` reads the chain back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson
import sqlite_utils

from linli.common.backoff import backoff_delay
from linli.common.ids import new_id
from linli.gateway.component import ComponentApi
from linli.gateway.context import Context
from linli.gateway.events import AlertAnswered, AlertChanged, AlertRequested
from linli.gateway.notify import (
    Audience,
    Channel,
    Delivery,
    FollowingChannel,
    ImmediateChannel,
    Outcome,
)
from linli.gateway.uplink import outbox as uplink_outbox
from linli.gateway.uplink.provisions import ALERTS_RAISED, OPEN_ALERTS
from linli.services.alerts import config, reports
from linli.services.alerts.escalation import Policy, default_policy
from linli.services.alerts.migrations import MIGRATIONS
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
#: The columns of an `alert_events` row, in the order `_event` builds them.
EVENT_COLUMNS: Final = (
    "alert_id",
    "ts",
    "action",
    "actor",
    "step",
    "channel",
    "audience",
    "outcome",
    "detail",
    "context_id",
    "parent_id",
)
_INSERT_EVENT: Final = (
    f"INSERT INTO alert_events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
)
#: A channel's turn came after a person answered the alert: it told nobody, so nothing is recorded.
_ANSWERED_MEANWHILE: Final = Delivery(outcome=Outcome.NO_RECIPIENT, detail="answered before it was sent")
#: Rows that record what caused an alert: in its trace, not in its timeline.
CAUSE_ACTIONS: Final = ("cause", "requested")
_STEP_ACTIONS: Final = ("notifying", "escalated")


def _event(
    alert_id: int,
    ts: float,
    action: str,
    *,
    context: Context | None,
    actor: str | None = None,
    step: int | None = None,
    channel: str | None = None,
    audience: str | None = None,
    outcome: str | None = None,
    detail: str | None = None,
) -> tuple[Any, ...]:
    """One `alert_events` row, with the id of the context it happened in and that context's parent."""
    context_id, parent_id = (context.id, context.parent) if context is not None else (None, None)
    return (alert_id, ts, action, actor, step, channel, audience, outcome, detail, context_id, parent_id)


def _combined(reached: list[Delivery]) -> Delivery:
    """One channel's outcome over a step's audiences: failed if any failed (it is tried again),
    delivered if any screen has it, else nobody was there."""
    if any(d.outcome is Outcome.FAILED for d in reached):
        return next(d for d in reached if d.outcome is Outcome.FAILED)
    if any(d.outcome is Outcome.DELIVERED for d in reached):
        return Delivery(outcome=Outcome.DELIVERED, detail="; ".join(d.detail for d in reached if d.detail))
    return Delivery(outcome=Outcome.NO_RECIPIENT)


def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _trace_entry(
    context_id: int,
    parent_id: int | None,
    ts: float,
    action: str,
    step: int | None,
    channel: str | None,
    audience: str | None,
    outcome: str | None,
    detail: str | None,
) -> dict[str, Any]:
    """One `alert_events` row as a link of the chain: `what` happened `where`."""
    if action == "delivery":
        what, where = outcome or action, f"{channel}: {detail}" if detail else str(channel)
    elif action in _STEP_ACTIONS:
        what, where = action, f"step {step}: {audience}"
    elif action in CAUSE_ACTIONS:
        what, where = action, detail or "unknown"  # the device, or the service that asked
    elif action == "call_back":
        what, where = action, str(audience)
    else:  # raised, repeated, answers: the alert engine recorded them
        what, where = action, "alerts"
    return {"context_id": context_id, "parent_id": parent_id, "what": what, "when": ts, "where": where}


@dataclass(slots=True, kw_only=True)
class _Change:
    """A raise or a repeat admitted from a request, and the context it is recorded in."""

    alert: Alert
    transition: str  # raised | repeated
    request: AlertRequested
    context: Context  # a child of the request's


class AlertEngine:
    name = "alerts"
    config_schema = config.CONFIG_SCHEMA  # its own section of the configuration
    config_defaults = config.CONFIG_DEFAULTS
    requires = ("registry",)
    migrations = MIGRATIONS  # its own tables, made before it starts

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
        self._inflight: set[asyncio.Future[int]] = set()  # step deliveries still being recorded
        self.deliveries = 0
        self._session: aiohttp.ClientSession | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def async_start(self, api: ComponentApi) -> None:
        self._api = api
        # the uplink's reports count alerts the engine's way, without knowing its tables
        api.provide(OPEN_ALERTS, reports.open_by_severity)
        api.provide(ALERTS_RAISED, reports.raised_by_kind)

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
        webhooks = api.settings.get("webhooks", [])
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

    def _admit(self, requests: list[AlertRequested], now: float) -> tuple[list[Alert], list[_Change]]:
        """Validate, fold repeats into open alerts, and create the new ones (in memory).

        A new alert whose first step is due at once starts it here, so that the step is
        committed with the raise and its screens are told as soon as that commit is done.
        """
        results: list[Alert] = []
        changes: list[_Change] = []
        repeats: dict[int, _Change] = {}
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
                change = _Change(
                    alert=existing,
                    transition="repeated",
                    request=request,
                    context=request.context.child(origin=self.name),
                )
                if existing.id not in repeats:
                    changes.append(change)
                else:  # one row per alert and batch, in the latest repeat's context
                    changes[changes.index(repeats[existing.id])] = change
                repeats[existing.id] = change
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
                context=request.context.child(origin=self.name),
            )
            policy = self.policy(household, request.kind)
            if policy.cancel_window_s > 0:
                alert.data = {**alert.data, "held": True}
            if policy.steps[0].after_s <= 0:
                self._advance(alert, now)
            self._remember(alert)
            assert alert.context is not None
            changes.append(_Change(alert=alert, transition="raised", request=request, context=alert.context))
            results.append(alert)
        return results, changes

    def _rows(
        self, changes: list[_Change], now: float
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The alert rows and the events that record them: for a new alert its cause, its request,
        the raise and (when due at once) its first step; for a repeat, the count."""
        rows = [_alert_row(c.alert) for c in changes]
        events: list[tuple[Any, ...]] = []
        for change in changes:
            alert, request = change.alert, change.request
            if change.transition == "repeated":
                events.append(
                    _event(alert.id, now, "repeated", detail=f"count {alert.count}", context=change.context)
                )
                continue
            cause = request.context.parent
            if cause is not None:
                # What the requester says caused it (a service puts the device and its time in
                # `data`); the cause's own parent is not known here.
                ts = request.data.get("ts")
                where = "/".join(
                    str(request.data[k]) for k in ("device_id", "capability") if request.data.get(k)
                )
                events.append(
                    _event(
                        alert.id,
                        ts if isinstance(ts, int | float) else now,
                        "cause",
                        detail=where or None,
                        context=Context(id=cause, household=alert.household_id, origin="cause"),
                    )
                )
            events.append(
                _event(
                    alert.id,
                    now,
                    "requested",
                    actor=request.context.user,
                    detail=request.context.origin,
                    context=request.context,
                )
            )
            events.append(_event(alert.id, now, "raised", detail=alert.title, context=change.context))
            if alert.step == 0:
                events.append(self._step_event(alert, now))
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

    def _announce(self, changes: list[_Change], now: float) -> None:
        """After the commit: the bus hears of each change, and screens from the channels alone —
        a new alert's first step (started with the raise) is delivered now, a repeat is followed
        on the audiences reached so far."""
        bus = self._bus
        for change in changes:
            alert = change.alert
            if change.transition == "raised" and alert.step == 0 and alert.step_context is not None:
                # the screens first: the bus's listeners (elder care, the uplink) are not waited for
                self._start_delivery(alert, 0, [c.name for c in self._channels()], now, 0, alert.step_context)
            bus.fire(self._changed(alert, change.transition, change.context))
            if change.transition == "repeated":
                self._follow(alert, "repeated", change.context)
        if any(c.transition == "raised" for c in changes):
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
            _, changes = self._admit([request], now)
        except AlertError as exc:
            _LOGGER.warning("alert refused: %s (%s: %s)", exc.message, request.kind, request.title)
            return
        if not changes:
            return
        rows, events = self._rows(changes, now)
        try:
            # On disk (the alarm journal) before the broker is acknowledged; the main
            # file gets it from the writer thread, behind whatever it is writing now.
            self._api.store.write_journaled(
                self.name, {"rows": rows, "events": events}, lambda db: self._write(db, rows, events)
            )
        except Exception:
            _LOGGER.exception("could not commit a critical alert at once; retrying from the queue")
            for change in changes:
                alert = change.alert
                if change.transition != "raised":
                    continue
                self.alerts.pop(alert.id, None)
                if alert.dedup_key:
                    self._by_key.pop((alert.household_id, alert.dedup_key), None)
            self._requests.put_nowait(request)
            return
        self._announce(changes, now)

    async def _raise_batch(self, requests: list[AlertRequested]) -> list[Alert]:
        now = self.clock()
        async with self._lock:
            results, changes = self._admit(requests, now)
            if changes:
                rows, events = self._rows(changes, now)
                await self._store_write(lambda db: self._write(db, rows, events))
        self._announce(changes, now)
        return results

    # -- answers -----------------------------------------------------------------

    def _on_answer(self, event: AlertAnswered) -> None:
        assert self._api is not None
        self._api.spawn(self._answer(event), "alerts-answer")

    async def _answer(self, event: AlertAnswered) -> None:
        try:
            if event.action == "acknowledge":
                await self.async_acknowledge(event.alert_id, event.by, context=event.context)
            elif event.action == "resolve":
                await self.async_resolve(event.alert_id, event.by, event.note, context=event.context)
            elif event.action == "cancel":
                await self.async_cancel(event.alert_id, event.by, event.note, context=event.context)
            else:
                _LOGGER.warning("unknown alert answer %r from %s", event.action, event.by)
        except AlertError as exc:
            _LOGGER.warning("alert answer refused: %s", exc.message)

    def _get(self, alert_id: int) -> Alert:
        alert = self.alerts.get(alert_id)
        if alert is None:
            raise AlertError("not_found", f"no open alert {alert_id}")
        return alert

    @staticmethod
    def _answer_context(alert: Alert, by: str, context: Context | None) -> Context:
        """A person's answer: their own act (a root), or a child of the event that carried it."""
        return Context(
            household=alert.household_id,
            origin="alerts",
            user=by,
            parent=context.id if context is not None else None,
        )

    async def async_acknowledge(self, alert_id: int, by: str, *, context: Context | None = None) -> Alert:
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
            answer = self._answer_context(alert, by, context)
            event = _event(alert.id, now, "acknowledged", actor=by, step=alert.step, context=answer)
            await self._store_write(lambda db: self._write(db, [row], [event]))
        self._bus.fire(self._changed(alert, "acknowledged", answer))
        self._follow(alert, "acknowledged", answer)
        return alert

    async def async_resolve(
        self, alert_id: int, by: str, note: str, *, context: Context | None = None
    ) -> Alert:
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
            answer = self._answer_context(alert, by, context)
            event = _event(
                alert.id, now, "resolved", actor=by, step=alert.step, detail=note.strip(), context=answer
            )
            await self._store_write(lambda db: self._write(db, [row], [event]))
            self._remember(alert)
        self._bus.fire(self._changed(alert, "resolved", answer))
        self._follow(alert, "resolved", answer)
        return alert

    async def async_cancel(
        self, alert_id: int, by: str, note: str = "", *, context: Context | None = None
    ) -> Alert:
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
            answer = self._answer_context(alert, by, context)
            call = answer.child(origin=self.name)  # the duty desk's call back, when there is one
            events = [
                _event(alert.id, now, "cancelled", actor=by, step=alert.step, detail=note, context=answer)
            ]
            if call_back:
                alert.state = AlertState.CANCELLED
                events.append(
                    _event(
                        alert.id,
                        now,
                        "call_back",
                        step=alert.step,
                        audience=Audience.DUTY_DESK.value,
                        context=call,
                    )
                )
            else:
                alert.state = AlertState.RESOLVED
                if alert.acknowledged_at is None:
                    alert.acknowledged_at, alert.acknowledged_by = now, by
                alert.resolved_at, alert.resolved_by, alert.resolution_note = now, by, note
            row = _alert_row(alert)
            await self._store_write(lambda db: self._write(db, [row], events))
            self._remember(alert)
        self._bus.fire(self._changed(alert, "cancelled", answer))
        # The duty desk hears of a call back as its own delivery (one message), not as a change too.
        reached = [a for a in self._reached(alert) if not (call_back and a is Audience.DUTY_DESK)]
        self._follow(alert, "cancelled", answer, reached)
        if call_back:
            self._api.spawn(self._call_back(alert, call), "alerts-call-back")
        return alert

    async def _call_back(self, alert: Alert, context: Context) -> None:
        """Put the call-back task in front of the duty desk on every channel (recorded, best effort:
        the alert also stays in the desk's queue until it is resolved)."""
        payload = self._payload_for(alert, Audience.DUTY_DESK)

        async def one(channel: Channel) -> tuple[str, Context, Delivery]:
            delivery = context.child(origin=channel.name)
            try:
                async with asyncio.timeout(DELIVERY_TIMEOUT_S):
                    return (
                        channel.name,
                        delivery,
                        await channel.async_deliver(payload, Audience.DUTY_DESK, context=delivery),
                    )
            except Exception as exc:  # a channel's failure is recorded, never fatal
                failed = Delivery(outcome=Outcome.FAILED, detail=f"{type(exc).__name__}: {exc}")
                return channel.name, delivery, failed

        results = await asyncio.gather(*(one(c) for c in self._channels()))
        now, desk = self.clock(), Audience.DUTY_DESK.value
        events = [
            _event(
                alert.id,
                now,
                "delivery",
                step=alert.step,
                channel=name,
                audience=desk,
                outcome=d.outcome.value,
                detail=d.detail,
                context=ctx,
            )
            for name, ctx, d in results
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
        """Start every escalation step and retry that is due; returns deliveries attempted.

        Deliveries already under way (a first step started with its raise) finish first, so
        what a caller sees afterwards is what the screens were told.
        """
        async with self._due_lock:
            if self._inflight:
                await asyncio.gather(*list(self._inflight), return_exceptions=True)
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
                context = await self._step_context_of(alert, step)
                attempted += await self._deliver(alert, step, [channel], now, attempts, context)
        return attempted

    def _audiences(self, alert: Alert, step: int) -> list[Audience]:
        policy = self.policy(alert.household_id, alert.kind)
        if step < len(policy.steps):
            return [policy.steps[step].audience]
        # Re-alert: everyone reached so far, again.
        return list(dict.fromkeys(s.audience for s in policy.steps))

    def _reached(self, alert: Alert) -> list[Audience]:
        """The audiences the steps started so far have named: who may hear how the alert goes on."""
        if alert.step < 0:
            return []
        steps = self.policy(alert.household_id, alert.kind).steps
        return list(dict.fromkeys(s.audience for s in steps[: alert.step + 1]))

    def _advance(self, alert: Alert, now: float) -> bool:
        """Start the alert's next step in memory, in a context of its own (a child of the alert's).

        True when the cancel window ends with it: the first step at or after the window
        releases the alert to carers and the duty desk (the hub and the lists read `held`).
        """
        policy = self.policy(alert.household_id, alert.kind)
        step = alert.step + 1
        alert.step = step
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
        assert alert.context is not None
        alert.step_context = alert.context.child(origin=self.name)
        return released

    def _step_event(self, alert: Alert, now: float) -> tuple[Any, ...]:
        """The row that records the step `_advance` started."""
        return _event(
            alert.id,
            now,
            _STEP_ACTIONS[1] if alert.step else _STEP_ACTIONS[0],
            step=alert.step,
            audience=",".join(a.value for a in self._audiences(alert, alert.step)),
            context=alert.step_context,
        )

    async def _start_step(self, alert: Alert, now: float) -> int:
        reached = self._reached(alert)
        await self._context_of(alert)
        released = self._advance(alert, now)
        step, context = alert.step, alert.step_context
        assert context is not None
        row, event = _alert_row(alert), self._step_event(alert, now)
        await self._store_write(lambda db: self._write(db, [row], [event]))
        if released:
            self._bus.fire(self._changed(alert, "window_passed", context.child(origin=self.name)))
        # Those reached before hear that it went further (one message each); the step's own
        # audience hears of the alert itself, from the delivery.
        now_told = self._audiences(alert, step)
        earlier = [a for a in reached if a not in now_told]
        if earlier:
            self._follow(alert, "escalated", context, earlier)
        channels = [c.name for c in self._channels()]
        return await self._deliver(alert, step, channels, now, 0, context)

    async def _deliver(
        self, alert: Alert, step: int, channels: list[str], now: float, attempts: int, context: Context
    ) -> int:
        """Deliver one step on the given channels; record each outcome durably."""
        return await self._start_delivery(alert, step, channels, now, attempts, context)

    def _start_delivery(
        self, alert: Alert, step: int, channels: list[str], now: float, attempts: int, context: Context
    ) -> asyncio.Future[int]:
        """Hand one step to every channel at once; the returned task records every outcome when
        all have answered.

        Called straight after a raise's commit. A channel that can send within this turn of the
        loop (`ImmediateChannel`: the phones' WebSocket) sends right here; every other one
        runs in a task of its own, so none waits for another channel or a write.
        """
        assert self._api is not None
        if not alert.escalating:
            done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            done.set_result(0)
            return done
        by_name = {c.name: c for c in self._channels()}
        audiences = self._audiences(alert, step)
        payloads = {audience: self._payload_for(alert, audience) for audience in audiences}
        sends = {}
        for name in channels:
            delivery, channel = context.child(origin=name), by_name.get(name)
            if isinstance(channel, ImmediateChannel):
                job = self._outcomes(self._deliver_now(channel, audiences, payloads, delivery))
            else:
                job = self._deliver_one(alert, channel, audiences, payloads, delivery)
            sends[name] = (delivery, self._api.spawn(job, f"alerts-deliver-{name}"))
        task = self._api.spawn(self._record_deliveries(alert, step, sends, now, attempts), "alerts-delivered")
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return task

    async def _deliver_one(
        self,
        alert: Alert,
        channel: Channel | None,
        audiences: list[Audience],
        payloads: dict[Audience, dict[str, Any]],
        context: Context,
    ) -> Delivery:
        if channel is None:
            return Delivery(outcome=Outcome.NO_RECIPIENT, detail="channel gone")
        if not alert.escalating:  # answered before this channel's turn: nobody to tell, nothing to record
            return _ANSWERED_MEANWHILE
        reached: list[Delivery] = []
        for audience in audiences:
            if not alert.escalating:  # acknowledged meanwhile: tell nobody else
                break
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for runs the delivery in one more
                # task, a turn of the loop later — the SOS's first screen would wait for it.
                async with asyncio.timeout(DELIVERY_TIMEOUT_S):
                    reached.append(await channel.async_deliver(payloads[audience], audience, context=context))
            except Exception as exc:  # a channel's failure is recorded, never fatal
                reached.append(Delivery(outcome=Outcome.FAILED, detail=f"{type(exc).__name__}: {exc}"))
        return _combined(reached)

    @staticmethod
    def _deliver_now(
        channel: ImmediateChannel,
        audiences: list[Audience],
        payloads: dict[Audience, dict[str, Any]],
        context: Context,
    ) -> list[asyncio.Future[Delivery] | Delivery]:
        """Send to each audience in this turn of the loop; the outcomes (or failures) to wait for."""
        sent: list[asyncio.Future[Delivery] | Delivery] = []
        for audience in audiences:
            try:
                sent.append(channel.deliver_now(payloads[audience], audience, context=context))
            except Exception as exc:  # a channel's failure is recorded, never fatal
                sent.append(Delivery(outcome=Outcome.FAILED, detail=f"{type(exc).__name__}: {exc}"))
        return sent

    @staticmethod
    async def _outcomes(sent: list[asyncio.Future[Delivery] | Delivery]) -> Delivery:
        reached: list[Delivery] = []
        for outcome in sent:
            if isinstance(outcome, Delivery):
                reached.append(outcome)
                continue
            try:
                async with asyncio.timeout(DELIVERY_TIMEOUT_S):
                    reached.append(await outcome)
            except Exception as exc:
                reached.append(Delivery(outcome=Outcome.FAILED, detail=f"{type(exc).__name__}: {exc}"))
        return _combined(reached)

    async def _record_deliveries(
        self,
        alert: Alert,
        step: int,
        sends: dict[str, tuple[Context, asyncio.Task[Any]]],
        now: float,
        attempts: int,
    ) -> int:
        audiences = self._audiences(alert, step)
        answered = await asyncio.gather(*(task for _, task in sends.values()), return_exceptions=True)
        self.deliveries += len(answered)
        events, deliveries = [], []
        delivered_any = False
        for (name, (context, _)), result in zip(sends.items(), answered, strict=True):
            if result is _ANSWERED_MEANWHILE:
                continue
            if not isinstance(result, Delivery):  # the job itself broke (it was logged)
                result = Delivery(outcome=Outcome.FAILED, detail=f"delivery job failed: {result!r}"[:300])
            events.append(
                _event(
                    alert.id,
                    self.clock(),
                    "delivery",
                    step=step,
                    channel=name,
                    audience=",".join(a.value for a in audiences),
                    outcome=result.outcome.value,
                    detail=result.detail,
                    context=context,
                )
            )
            deliveries.append((alert.id, step, name, result.outcome.value, attempts + 1, self.clock()))
            if result.outcome is Outcome.FAILED:
                delay = backoff_delay(attempts, base=RETRY_MIN_S, cap=RETRY_MAX_S, jitter=False)
                self._retries[(alert.id, step, name)] = (now + delay, attempts + 1)
            else:
                self._retries.pop((alert.id, step, name), None)
                delivered_any |= result.outcome is Outcome.DELIVERED
        if not events:
            return 0
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
            step_context = await self._step_context_of(alert, step)
            self._bus.fire(self._changed(alert, "notified", step_context.child(origin=self.name)))
        return len(answered)

    def _follow(
        self, alert: Alert, transition: str, context: Context, audiences: list[Audience] | None = None
    ) -> None:
        """Tell the screens already showing the alert how it goes on: one call per channel that
        follows alerts and per audience reached so far (never one the policy has not reached),
        each channel in its own task so a slow TV box never holds the phones back."""
        assert self._api is not None
        audiences = self._reached(alert) if audiences is None else audiences
        channels = [c for c in self._channels() if isinstance(c, FollowingChannel)]
        if not audiences or not channels:
            return
        payloads = {audience: self._payload_for(alert, audience) for audience in audiences}
        for channel in channels:
            job = self._follow_one(channel, payloads, transition, context.child(origin=channel.name))
            self._api.spawn(job, f"alerts-follow-{channel.name}")

    @staticmethod
    async def _follow_one(
        channel: FollowingChannel, payloads: dict[Audience, dict[str, Any]], transition: str, context: Context
    ) -> None:
        for audience, payload in payloads.items():
            try:
                async with asyncio.timeout(DELIVERY_TIMEOUT_S):
                    await channel.async_follow(payload, audience, transition, context=context)
            except Exception as exc:  # best effort: a screen re-reads the alert when it reconnects
                _LOGGER.info(
                    "channel %s could not follow alert %s (%s): %s: %s",
                    channel.name,
                    payload.get("id"),
                    transition,
                    type(exc).__name__,
                    exc,
                )

    async def async_redeliver_missing(self) -> int:
        """After a restart: deliver the current step on every channel that has no outcome yet."""
        async with self._due_lock:
            if self._inflight:  # a step started with its raise is recorded first, not sent twice
                await asyncio.gather(*list(self._inflight), return_exceptions=True)
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
                context = await self._step_context_of(alert, alert.step)
                attempted += await self._deliver(alert, alert.step, missing, now, 0, context)
        return attempted

    async def _context_of(self, alert: Alert) -> Context:
        """The alert's own context; after a restart, found again from its `raised` row."""
        if alert.context is None:
            alert.context = await self._recorded_context(alert, "action = 'raised'", ())
        return alert.context

    async def _step_context_of(self, alert: Alert, step: int) -> Context:
        """A step's context (the current one's is kept with the alert; an older one's is read back)."""
        if step == alert.step and alert.step_context is not None:
            return alert.step_context
        context = await self._recorded_context(
            alert,
            "action IN ('notifying', 'escalated') AND step = ?",
            (step,),
            fallback=await self._context_of(alert),
        )
        if step == alert.step:
            alert.step_context = context
        return context

    async def _recorded_context(
        self, alert: Alert, where: str, params: tuple[Any, ...], fallback: Context | None = None
    ) -> Context:
        assert self._api is not None
        row = await self._api.store.async_read(
            lambda conn: conn.execute(
                f"SELECT context_id, parent_id FROM alert_events WHERE alert_id = ? AND {where} "
                "ORDER BY id DESC LIMIT 1",
                (alert.id, *params),
            ).fetchone()
        )
        if row is not None and row[0] is not None:
            return Context(id=row[0], parent=row[1], household=alert.household_id, origin=self.name)
        # Recorded before contexts were: the chain starts again here.
        if fallback is not None:
            return fallback.child(origin=self.name)
        return Context(household=alert.household_id, origin=self.name)

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
                f"WHERE alert_id = ? AND action NOT IN {_sql_list(CAUSE_ACTIONS)} ORDER BY id",
                (alert_id,),
            ).fetchall()
        )
        keys = ("ts", "action", "actor", "step", "channel", "audience", "outcome", "detail")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    async def async_trace(self, alert_id: int) -> list[dict[str, Any]]:
        """What caused what, in order: each entry's context id, its parent's, what, when and where.

        For an SOS press: the press (`cause`, at the pendant) → the service's request
        (`requested`) → `raised` → the first step (`notifying`, its audience) → each
        channel's delivery (`delivered` on `tv: overlay on <box>`, on `ws`, …) — and
        later steps, answers and the duty desk's call back, each under what caused it.
        """
        assert self._api is not None
        rows = await self._api.store.async_read(
            lambda conn: conn.execute(
                "SELECT context_id, parent_id, ts, action, step, channel, audience, outcome, detail "
                "FROM alert_events WHERE alert_id = ? AND context_id IS NOT NULL ORDER BY id",
                (alert_id,),
            ).fetchall()
        )
        return [_trace_entry(*row) for row in rows]

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

    @staticmethod
    def _changed(alert: Alert, transition: str, context: Context) -> AlertChanged:
        """The bus event of a recorded transition, in the context the transition was recorded in."""
        return AlertChanged(alert_id=alert.id, transition=transition, alert=alert.as_dict(), context=context)

    async def _store_write(self, fn: Callable[[sqlite_utils.Database], Any]) -> Any:
        assert self._api is not None
        return await self._api.store.async_write(fn)

    @staticmethod
    def _write(db: sqlite_utils.Database, rows: list[tuple[Any, ...]], events: list[tuple[Any, ...]]) -> None:
        db.conn.executemany(_UPSERT, rows)
        # A journal entry written before contexts were recorded has rows of nine columns.
        db.conn.executemany(
            _INSERT_EVENT, [e if len(e) == len(EVENT_COLUMNS) else (*e, None, None) for e in events]
        )
        if uplink_outbox.is_active(db):  # the regional uplink hears of it in this same transaction
            for row in rows:
                alert = dict(zip(COLUMNS, row, strict=True))
                transitions = [e[2] for e in events if e[0] == alert["id"]]
                uplink_outbox.enqueue(db, "alert", alert_event(alert, transitions))
