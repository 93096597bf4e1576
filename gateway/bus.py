"""The in-process event bus.

Two ways to listen:

* `listen()` registers a *callback* run inline by `fire()`. It must be quick and
  must not block: the store and registry use it on the ingest hot path.
* `subscribe()` returns a `Subscription` with its own bounded queue, read by
  the subscriber's own task. A slow subscriber can never stall `fire()`: when
  its queue is full, the overflow policy decides what is dropped, the drop is
  counted on the subscription, and one warning per minute is logged.

Both can be scoped to one household.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from typing import Any, Final, Generic, Protocol, TypeVar

from linli.common.ratelog import RateLimitedLog
from linli.gateway.events import Event

_LOGGER = logging.getLogger(__name__)
E = TypeVar("E", bound=Event)
_ANY: Final = None  # household key meaning "every household"


class Overflow(StrEnum):
    """What a full subscription queue does with one more event."""

    DROP_OLDEST = "drop_oldest"  # keep the newest: right for live views
    DROP_NEWEST = "drop_newest"  # keep what is queued: right for ordered replays


class Subscription(Generic[E]):
    """A bounded queue of events for one consumer task."""

    def __init__(
        self, bus: EventBus, key: tuple[type[Event], str | None], maxsize: int, overflow: Overflow
    ) -> None:
        self._bus = bus
        self._key = key
        self.maxsize = maxsize
        self.overflow = overflow
        self._queue: collections.deque[E] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self.dropped = 0
        self.delivered = 0
        self._overflow_log: RateLimitedLog | None = None  # made at the first overflow
        self.closed = False

    def _offer(self, event: E) -> None:
        queue = self._queue
        if len(queue) >= self.maxsize:
            self.dropped += 1
            if self._overflow_log is None:
                self._overflow_log = RateLimitedLog(_LOGGER)  # once a minute per subscription
            self._overflow_log.warning(
                "subscriber to %s is too slow: queue full at %d, %s (%d dropped so far)",
                self._key[0].__name__,
                self.maxsize,
                self.overflow.value,
                self.dropped,
            )
            if self.overflow is Overflow.DROP_NEWEST:
                return
            queue.popleft()
        queue.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __len__(self) -> int:
        return len(self._queue)

    async def get(self) -> E:
        """Wait for the next event."""
        while not self._queue:
            if self.closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self.delivered += 1
        return self._queue.popleft()

    def get_nowait(self) -> E | None:
        if not self._queue:
            return None
        self.delivered += 1
        return self._queue.popleft()

    def __aiter__(self) -> AsyncIterator[E]:
        return self

    async def __anext__(self) -> E:
        return await self.get()

    def close(self) -> None:
        """Stop receiving; a consumer waiting in `get()` ends its iteration."""
        if self.closed:
            return
        self.closed = True
        self._bus._remove_subscription(self)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class EventBus:
    """Routes events to listeners by type and household."""

    def __init__(self, *, default_maxsize: int = 1024) -> None:
        self.default_maxsize = default_maxsize
        self._callbacks: dict[tuple[type[Event], str | None], list[Callable[[Any], None]]] = {}
        self._subscriptions: dict[tuple[type[Event], str | None], list[Subscription[Any]]] = {}
        self.fired = 0
        self.callback_errors = 0
        # (event type, household) → (callbacks, subscriptions): computed once per
        # key and dropped whenever a listener comes or goes, so fire() is two lookups.
        self._targets: dict[
            tuple[type[Event], str | None],
            tuple[tuple[Callable[[Any], None], ...], tuple[Subscription[Any], ...]],
        ] = {}

    def listen(
        self, event_type: type[E], callback: Callable[[E], None], *, household: str | None = None
    ) -> Callable[[], None]:
        """Run `callback(event)` inline for each matching event; returns an unlisten function.

        `event_type=Event` receives every event. The callback must not block.
        """
        key = (event_type, household)
        self._callbacks.setdefault(key, []).append(callback)
        self._targets.clear()

        def remove() -> None:
            self._targets.clear()
            callbacks = self._callbacks.get(key, [])
            if callback in callbacks:
                callbacks.remove(callback)
            if not callbacks:
                self._callbacks.pop(key, None)

        return remove

    def subscribe(
        self,
        event_type: type[E],
        *,
        household: str | None = None,
        maxsize: int | None = None,
        overflow: Overflow = Overflow.DROP_OLDEST,
    ) -> Subscription[E]:
        """A bounded queue of matching events for a consumer task."""
        key = (event_type, household)
        sub: Subscription[E] = Subscription(self, key, maxsize or self.default_maxsize, overflow)
        self._subscriptions.setdefault(key, []).append(sub)
        self._targets.clear()
        return sub

    def _remove_subscription(self, sub: Subscription[Any]) -> None:
        self._targets.clear()
        subs = self._subscriptions.get(sub._key, [])
        if sub in subs:
            subs.remove(sub)
        if not subs:
            self._subscriptions.pop(sub._key, None)

    def has_listeners(self, event_type: type[Event], household: str | None = None) -> bool:
        """True when an event of this type (for this household) would reach anyone.

        Lets hot paths skip building events nobody receives.
        """
        callbacks, subs = self._resolve(event_type, household)
        return bool(callbacks or subs)

    def _resolve(
        self, etype: type[Event], household: str | None
    ) -> tuple[tuple[Callable[[Any], None], ...], tuple[Subscription[Any], ...]]:
        key = (etype, household)
        targets = self._targets.get(key)
        if targets is None:
            keys: list[tuple[type[Event], str | None]] = [(etype, _ANY), (Event, _ANY)]
            if household is not None:
                keys += [(etype, household), (Event, household)]
            targets = (
                tuple(cb for k in keys for cb in self._callbacks.get(k, ())),
                tuple(sub for k in keys for sub in self._subscriptions.get(k, ())),
            )
            self._targets[key] = targets
        return targets

    def fire(self, event: Event) -> None:
        """Deliver `event` to every matching callback and subscription, never blocking."""
        self.fired += 1
        key = (type(event), event.context.household)
        targets = self._targets.get(key)
        if targets is None:
            targets = self._resolve(*key)
        callbacks, subs = targets
        for callback in callbacks:
            try:
                callback(event)
            except Exception:
                self.callback_errors += 1
                _LOGGER.exception("listener %r failed on %s", callback, key[0].__name__)
        for sub in subs:
            sub._offer(event)

    def close(self) -> None:
        for subs in list(self._subscriptions.values()):
            for sub in list(subs):
                sub.close()
        self._callbacks.clear()
        self._targets.clear()


class BusAccess(Protocol):
    """Firing and listening, as a part of the core that a component builds needs them.

    The `EventBus` itself, or the component's `TrackedBus` (linli.gateway.component),
    which remembers the listeners so that stopping the component removes them.
    """

    def fire(self, event: Event) -> None: ...

    def has_listeners(self, event_type: type[Event], household: str | None = None) -> bool: ...

    def listen(
        self, event_type: type[E], callback: Callable[[E], None], *, household: str | None = None
    ) -> Callable[[], None]: ...
