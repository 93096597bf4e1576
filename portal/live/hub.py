"""The hub: every open WebSocket, indexed by who may receive what; device news from the bus.

A message is serialised and framed once per event, not once per connection:
server-to-client WebSocket frames are unmasked, so the same bytes are valid on
every socket. Fanning out is then one `transport.write` per socket, done right
away while the socket keeps up — no task, queue or timer per message — because
a community announcement goes to thousands of sockets at once, and creating a
task per send cost more than the send (and the garbage they left behind woke
the full garbage collector mid-fan-out, for a quarter of a second).

A socket that does not keep up (its transport holds more than `BUFFER_LIMIT`
unsent bytes) gets a bounded backlog and a writer task of its own until the
backlog is empty, so a slow phone on a bad line never stalls the others or the
bus. When its backlog is full, or it makes no progress for `SEND_TIMEOUT_S`,
the hub closes it (code 1013, "try again later") and the page reconnects and
reloads.

Who gets what (decided here, on the server):
* residents and household admins: their household's device state changes,
  availability, the alarm panel, announcements for them;
* managers: every alarm state and availability change (not every device
  reading), announcements;
* alerts do not come from the bus at all: only the `ws` delivery channel
  (portal/live/channel.py) sends them, to the audience the escalation step names
  when the step starts, and each later change to the audiences reached so far —
  one message per screen per change, on the policy's timing (so carers never
  hear of a fall in its cancel window, nor the duty desk before its step);
* the press of an alarm button, a fall, smoke, gas, a leak or tampering is not
  sent as device state: the alert it raises is that news (one message, not two);
* every alert as its reader may see it (`portal/api/shapes.py` `alert_for`): a reading
  or a medicine only to whom the household's consent allows, like the REST API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final

import orjson
from aiohttp import WSCloseCode, web

import linli.gateway.events as core_events
from linli.gateway.component import ComponentApi
from linli.gateway.events import AvailabilityChanged, CareChanged, Event, StateChanged
from linli.gateway.privacy import category_of
from linli.gateway.users import Role
from linli.portal.api.shapes import REDACTED
from linli.portal.auth.principal import MEMBERS, Principal, may_see_value, reachable, reaches

_LOGGER = logging.getLogger(__name__)
QUEUE_SIZE: Final = 256  # messages a lagging socket may have waiting before it is dropped
BUFFER_LIMIT: Final = 64 * 1024  # unsent bytes in a socket's transport before messages wait in its backlog
SEND_TIMEOUT_S: Final = 10.0  # a lagging socket that takes nothing for this long is dropped
POLL_S: Final = 0.02  # how often a lagging socket's writer looks whether its transport drained
_TEXT: Final = 0x81  # FIN + text opcode
#: Kinds whose turning true raises an alert in every mode (elder care: SOS, fall; security:
#: smoke, gas, leak, tamper): the alert, told by its escalation step, is what screens get.
ALARM_KINDS: Final = frozenset({"sos_button", "fall", "smoke", "gas", "water_leak", "tamper"})


def frame(text: bytes) -> bytes:
    """One unmasked, uncompressed WebSocket text frame (RFC 6455 §5.2), valid on any server socket."""
    size = len(text)
    if size < 126:
        header = struct.pack("!BB", _TEXT, size)
    elif size < 65536:
        header = struct.pack("!BBH", _TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", _TEXT, 127, size)
    return header + text


class Connection:
    """One open WebSocket of one signed-in user."""

    def __init__(
        self,
        hub: Hub,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        principal: Principal,
        households: set[str],
    ) -> None:
        self.hub = hub
        self.ws = ws
        self.transport = transport
        self.principal = principal
        self.households = households
        self.backlog: deque[tuple[bytes, asyncio.Future[bool] | None]] = deque()
        self.sent = 0
        self.closed = False
        self.task: asyncio.Task[None] | None = None  # the backlog's writer, only while there is one

    @property
    def role(self) -> Role:
        return self.principal.role

    def _keeping_up(self) -> bool:
        return self.transport.get_write_buffer_size() <= BUFFER_LIMIT

    def offer(self, data: bytes, waiter: asyncio.Future[bool] | None = None) -> bool:
        """Send a framed message now, or queue it behind a lagging socket's backlog.

        False when the connection is closed, or is closed now because its backlog is full.
        """
        if self.closed:
            return False
        if self.ws.closed or self.transport.is_closing():
            self.close(WSCloseCode.GOING_AWAY)
            return False
        if not self.backlog and self._keeping_up():
            self.transport.write(data)
            self.sent += 1
            if waiter is not None and not waiter.done():
                waiter.set_result(True)
            return True
        if len(self.backlog) >= QUEUE_SIZE:
            self.hub.overflows += 1
            _LOGGER.warning(
                "closing a stalled WebSocket of %s: %d messages unsent", self.principal.name, QUEUE_SIZE
            )
            self.close(WSCloseCode.TRY_AGAIN_LATER)
            return False
        self.backlog.append((data, waiter))
        if self.task is None:
            self.task = asyncio.create_task(self._write_backlog(), name="linli-portal-ws-backlog")
        return True

    async def _write_backlog(self) -> None:
        # asyncio offers no public "buffer below N" wait for a transport, and a lagging
        # socket is the exception: looking every POLL_S costs nothing measurable.
        progress = time.monotonic()
        try:
            while self.backlog and not self.closed:
                if self.ws.closed or self.transport.is_closing():
                    self.close(WSCloseCode.GOING_AWAY)
                    return
                if not self._keeping_up():
                    if time.monotonic() - progress > SEND_TIMEOUT_S:
                        self.close(WSCloseCode.TRY_AGAIN_LATER)
                        return
                    await asyncio.sleep(POLL_S)
                    continue
                data, waiter = self.backlog.popleft()
                self.transport.write(data)
                self.sent += 1
                progress = time.monotonic()
                if waiter is not None and not waiter.done():
                    waiter.set_result(True)
        finally:
            self.task = None
            if self.closed:
                self._fail_backlog()

    def _fail_backlog(self) -> None:
        while self.backlog:
            _, waiter = self.backlog.popleft()
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
        self._fail_backlog()
        if not self.ws.closed:  # the client's own close needs no answer
            self.hub.gateway.spawn(self.ws.close(code=code), "portal-ws-close")


class Hub:
    def __init__(self, gateway: ComponentApi) -> None:
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
            bus.listen(AvailabilityChanged, self._on_availability),
            bus.listen(CareChanged, self._on_care),
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

    def close_where(
        self, predicate: Callable[[Principal], bool], code: int = WSCloseCode.POLICY_VIOLATION
    ) -> int:
        """Close at once every socket whose principal matches (a revoked session, a disabled account).

        Code 1008: the page's reconnect then meets the server's refusal (or, after a role
        change, is indexed anew as what the account is now). Returns how many were closed.
        """
        matching = [c for c in self.everyone if predicate(c.principal)]
        for connection in matching:
            connection.close(code)
        return len(matching)

    # -- membership ----------------------------------------------------------------

    def add(
        self, ws: web.WebSocketResponse, transport: asyncio.Transport, principal: Principal
    ) -> Connection:
        """Index a prepared WebSocket (its frames go straight to `transport`) by who may receive what."""
        households = set(reachable(principal, self.gateway))
        connection = Connection(self, ws, transport, principal, households)
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
    def encode(message: dict[str, Any]) -> bytes:
        """The message as a ready WebSocket frame: serialised and framed once for all its sockets."""
        return frame(orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS))

    def send(self, connections: Iterable[Connection], message: dict[str, Any]) -> int:
        data = self.encode(message)
        return sum(1 for c in connections if c.offer(data))

    def frames_per_reader(
        self, connections: Iterable[Connection], build: Callable[[Principal], dict[str, Any]]
    ) -> list[tuple[Connection, bytes]]:
        """Each connection with the message as its reader may see it, framed once per kind of reader.

        What a reader may see depends on their role, household and a key's granted kinds (and
        the household's consent, the same for all of them at one moment), so those name a frame.
        """
        frames: dict[tuple[Any, ...], bytes] = {}
        result = []
        for connection in connections:
            p = connection.principal
            key = (p.role, p.household_id, p.scope_kinds, p.scope_households)
            data = frames.get(key)
            if data is None:
                data = frames[key] = self.encode(build(p))
            result.append((connection, data))
        return result

    def send_per_reader(
        self, connections: Iterable[Connection], build: Callable[[Principal], dict[str, Any]]
    ) -> int:
        return sum(1 for c, data in self.frames_per_reader(connections, build) if c.offer(data))

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

    def _on_care(self, event: CareChanged) -> None:
        # only that something changed: each screen re-reads what its reader may see
        message = {"type": "care_changed", "what": event.what}
        self._household_event(event, message, carers=True, managers=False)

    def _on_state(self, event: StateChanged) -> None:
        household = event.context.household
        if household is None or (event.new is True and event.kind in ALARM_KINDS):
            return
        message = {
            "type": "state",
            "household_id": household,
            "device_id": event.device_id,
            "capability": event.capability,
            "kind": event.kind,
            "value": event.new,
            "ts": event.ts,
        }
        targets = self.household_members(household)
        if not targets:
            return
        if category_of(event.kind) is None:
            self.send(targets, message)
            return
        # A health reading as device state is health data: the same rule as the REST API's,
        # per connection (only members get state today; this keeps it so if that changes).
        allowed: list[Connection] = []
        withheld: list[Connection] = []
        for connection in targets:
            seen = may_see_value(connection.principal, self.gateway, household, event.kind)
            (allowed if seen else withheld).append(connection)
        if allowed:
            self.send(allowed, message)
        if withheld:
            self.send(withheld, {**message, "value": None, "ts": None, "redacted": REDACTED})

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
            targets = self.connections()
        else:
            targets = set(self.managers)
            for household in households:
                targets.update(self.members.get(household, ()))
                targets.update(self.carers.get(household, ()))
        return self.send(targets, {"type": "announcement", "announcement": announcement})
