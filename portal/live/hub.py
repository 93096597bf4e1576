"""The hub: every open WebSocket, indexed by who may receive what, fed from the bus.

Each connection has its own bounded send queue and its own writer task, so a
slow phone on a bad line can never stall the others or the bus: when its queue
is full the hub closes it (code 1013, "try again later") and the page
reconnects and reloads. Messages are encoded once per event, not once per
connection.

Who gets what (decided here, on the server):
* residents and household admins: their household's alerts, device state
  changes, availability, the alarm panel, announcements for them;
* carers: their household's alerts, only while the household consents;
* managers: every alert, alarm state and availability change (not every
  device reading), announcements;
* the `ws` channel's deliveries go to the audience the escalation step names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, Final

import orjson
from aiohttp import WSCloseCode, web

import gateway.events as core_events
from gateway.events import AlertChanged, AvailabilityChanged, Event, StateChanged
from gateway.runtime import Gateway
from gateway.users import Role
from portal.api.shapes import public_alert
from portal.auth.principal import MEMBERS, Principal, reachable, reaches

_LOGGER = logging.getLogger(__name__)
QUEUE_SIZE: Final = 256
SEND_TIMEOUT_S: Final = 10.0


class Connection:
    """One open WebSocket of one signed-in user."""

    def __init__(
        self, hub: Hub, ws: web.WebSocketResponse, principal: Principal, households: set[str]
    ) -> None:
        self.hub = hub
        self.ws = ws
        self.principal = principal
        self.households = households
        self.queue: asyncio.Queue[tuple[str, asyncio.Future[bool] | None]] = asyncio.Queue(QUEUE_SIZE)
        self.sent = 0
        self.closed = False
        self.task: asyncio.Task[None] | None = None

    @property
    def role(self) -> Role:
        return self.principal.role

    def offer(self, text: str, waiter: asyncio.Future[bool] | None = None) -> bool:
        """Queue a message; a full queue means a stalled client, which is dropped."""
        if self.closed:
            return False
        try:
            self.queue.put_nowait((text, waiter))
        except asyncio.QueueFull:
            self.hub.overflows += 1
            _LOGGER.warning(
                "closing a stalled WebSocket of %s: %d messages unsent", self.principal.name, QUEUE_SIZE
            )
            self.close(WSCloseCode.TRY_AGAIN_LATER)
            return False
        return True

    async def run_writer(self) -> None:
        try:
            while True:
                text, waiter = await self.queue.get()
                try:
                    await asyncio.wait_for(self.ws.send_str(text), SEND_TIMEOUT_S)
                except (ConnectionError, RuntimeError, TimeoutError):
                    if waiter is not None and not waiter.done():
                        waiter.set_result(False)
                    self.close(WSCloseCode.GOING_AWAY)
                    return
                self.sent += 1
                if waiter is not None and not waiter.done():
                    waiter.set_result(True)
        finally:
            while not self.queue.empty():
                _, waiter = self.queue.get_nowait()
                if waiter is not None and not waiter.done():
                    waiter.set_result(False)

    def close(self, code: int = WSCloseCode.GOING_AWAY) -> None:
        if self.closed:
            return
        self.closed = True
        self.hub.remove(self)
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
            self.hub.retired.add(self.task)
            self.task.add_done_callback(self.hub.retired.discard)
        if not self.ws.closed:  # the client's own close needs no answer
            self.hub.gateway.spawn(self.ws.close(code=code), "portal-ws-close")


class Hub:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.members: dict[str, set[Connection]] = {}  # household → residents, admins
        self.carers: dict[str, set[Connection]] = {}  # household → carers
        self.managers: set[Connection] = set()
        self.everyone: set[Connection] = set()
        self.retired: set[asyncio.Task[None]] = set()  # writers of closed connections, finishing
        self.overflows = 0
        self._unlisten: list[Callable[[], None]] = []
        self._state_listeners: dict[str, Callable[[], None]] = {}

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        bus = self.gateway.bus
        self._unlisten = [
            bus.listen(AlertChanged, self._on_alert),
            bus.listen(AvailabilityChanged, self._on_availability),
        ]
        alarm_event = getattr(core_events, "AlarmStateChanged", None)
        if alarm_event is not None:
            self._unlisten.append(bus.listen(alarm_event, self._on_alarm))

    async def async_stop(self) -> None:
        for unlisten in [*self._unlisten, *self._state_listeners.values()]:
            unlisten()
        self._unlisten = []
        self._state_listeners.clear()
        for connection in list(self.connections()):
            connection.close(WSCloseCode.GOING_AWAY)
            if connection.task is not None:
                connection.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await connection.task
            with contextlib.suppress(Exception):
                await connection.ws.close(code=WSCloseCode.GOING_AWAY)
        if self.retired:
            await asyncio.gather(*self.retired, return_exceptions=True)

    def connections(self) -> Iterable[Connection]:
        return set(self.everyone)

    @property
    def count(self) -> int:
        return sum(1 for _ in self.connections())

    # -- membership ----------------------------------------------------------------

    def add(self, ws: web.WebSocketResponse, principal: Principal) -> Connection:
        households = set(reachable(principal, self.gateway))
        connection = Connection(self, ws, principal, households)
        self.everyone.add(connection)
        if principal.role is Role.MANAGER:
            self.managers.add(connection)
        elif principal.role in MEMBERS:
            for household in households:
                group = self.members.setdefault(household, set())
                group.add(connection)
                if household not in self._state_listeners:
                    self._state_listeners[household] = self.gateway.bus.listen(
                        StateChanged, self._on_state, household=household
                    )
        elif principal.role is Role.CARER:
            for household in households:
                self.carers.setdefault(household, set()).add(connection)
        connection.task = asyncio.create_task(connection.run_writer(), name="linli-portal-ws-writer")
        return connection

    def remove(self, connection: Connection) -> None:
        self.everyone.discard(connection)
        self.managers.discard(connection)
        for household in connection.households:
            for index in (self.members, self.carers):
                group = index.get(household)
                if group is not None:
                    group.discard(connection)
                    if not group:
                        del index[household]
            if household not in self.members and household in self._state_listeners:
                self._state_listeners.pop(household)()

    # -- audiences -----------------------------------------------------------------

    def household_members(self, household: str) -> list[Connection]:
        return list(self.members.get(household, ()))

    def household_carers(self, household: str) -> list[Connection]:
        # Consent is checked at send time too: a withdrawal stops delivery at once.
        return [c for c in self.carers.get(household, ()) if reaches(c.principal, self.gateway, household)]

    def duty_desk(self) -> list[Connection]:
        return list(self.managers)

    # -- sending -------------------------------------------------------------------

    @staticmethod
    def encode(message: dict[str, Any]) -> str:
        return orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS).decode()

    def send(self, connections: Iterable[Connection], message: dict[str, Any]) -> int:
        text = self.encode(message)
        return sum(1 for c in connections if c.offer(text))

    def _household_event(
        self, event: Event, message: dict[str, Any], *, carers: bool, managers: bool
    ) -> None:
        household = event.context.household
        if household is None:
            return
        targets = self.household_members(household)
        if carers:
            targets += self.household_carers(household)
        if managers:
            targets += self.duty_desk()
        if targets:
            self.send(targets, message)

    def _on_alert(self, event: AlertChanged) -> None:
        self._household_event(
            event,
            {"type": "alert_changed", "transition": event.transition, "alert": public_alert(event.alert)},
            carers=True,
            managers=True,
        )

    def _on_state(self, event: StateChanged) -> None:
        self._household_event(
            event,
            {
                "type": "state",
                "household_id": event.context.household,
                "device_id": event.device_id,
                "capability": event.capability,
                "kind": event.kind,
                "value": event.new,
                "ts": event.ts,
            },
            carers=False,
            managers=False,
        )

    def _on_availability(self, event: AvailabilityChanged) -> None:
        self._household_event(
            event,
            {
                "type": "availability",
                "household_id": event.context.household,
                "device_id": event.device_id,
                "available": event.available,
                "ts": event.ts,
            },
            carers=False,
            managers=True,
        )

    def _on_alarm(self, event: Any) -> None:
        self._household_event(
            event,
            {
                "type": "alarm",
                "household_id": event.context.household,
                "state": event.state,
                "previous": event.previous,
                "mode": event.mode,
                "deadline": event.deadline,
                "by": event.by,
                "ts": event.ts,
            },
            carers=False,
            managers=True,
        )

    def announce(self, announcement: dict[str, Any], households: set[str] | None) -> int:
        """Push an announcement to its scope (None: the whole community)."""
        if households is None:
            targets = set(self.connections())
        else:
            targets = set(self.managers)
            for household in households:
                targets.update(self.members.get(household, ()))
                targets.update(self.carers.get(household, ()))
        return self.send(targets, {"type": "announcement", "announcement": announcement})
