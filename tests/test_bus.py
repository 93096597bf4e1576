"""The event bus, the events it carries, their context and ids."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import types

import pytest

import linli.common.ids
import linli.common.ratelog
from linli.common.ids import id_time, new_id
from linli.gateway.bus import EventBus, Overflow
from linli.gateway.context import Context
from linli.gateway.events import DeviceAdded, Event, StateChanged, TelemetryReceived


def telemetry(household: str | None = "h1", n: int = 0) -> TelemetryReceived:
    return TelemetryReceived(
        device_id=f"{household}-thermo",
        values={"temperature": n},
        ts=1.0,
        context=Context(household=household),
    )


def added(household: str | None = "h1") -> DeviceAdded:
    return DeviceAdded(device_id=f"{household}-door", context=Context(household=household))


class FakeClock:
    """Stands in for `time` inside the rate-limited logger, so rate limits can be tested without waiting."""

    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


def drop_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "linli.gateway.bus" and r.levelno == logging.WARNING]


# -- callbacks -------------------------------------------------------------------------------


def test_callback_receives_only_its_event_type() -> None:
    # given a listener for telemetry
    bus = EventBus()
    seen: list[Event] = []
    bus.listen(TelemetryReceived, seen.append)
    # when telemetry and another kind of event are fired
    reading = telemetry()
    bus.fire(reading)
    bus.fire(added())
    # then only the telemetry reached it
    assert seen == [reading]


def test_household_listener_does_not_see_other_households() -> None:
    # given listeners scoped to h1 and h2 and one for every household
    bus = EventBus()
    h1: list[Event] = []
    h2: list[Event] = []
    everyone: list[Event] = []
    bus.listen(TelemetryReceived, h1.append, household="h1")
    bus.listen(TelemetryReceived, h2.append, household="h2")
    bus.listen(TelemetryReceived, everyone.append)
    # when each household reports once
    from_h1, from_h2 = telemetry("h1"), telemetry("h2")
    bus.fire(from_h1)
    bus.fire(from_h2)
    # then each scoped listener sees only its own household; the unscoped one sees both
    assert h1 == [from_h1]
    assert h2 == [from_h2]
    assert everyone == [from_h1, from_h2]


def test_event_base_class_listens_to_every_event_type() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.listen(Event, seen.append)
    events = [telemetry(), added(), added(None)]
    for event in events:
        bus.fire(event)
    assert seen == events


def test_event_base_class_scoped_to_household_sees_all_types_of_that_household_only() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.listen(Event, seen.append, household="h1")
    mine = [telemetry("h1"), added("h1")]
    for event in [*mine, telemetry("h2"), added("h2"), added(None)]:
        bus.fire(event)
    assert seen == mine


def test_unlisten_stops_delivery() -> None:
    # given a listener that was removed
    bus = EventBus()
    seen: list[Event] = []
    unlisten = bus.listen(TelemetryReceived, seen.append)
    first = telemetry()
    bus.fire(first)
    unlisten()
    # when another event is fired
    bus.fire(telemetry())
    # then it was not delivered, and unlisten twice is harmless
    assert seen == [first]
    unlisten()
    assert not bus.has_listeners(TelemetryReceived)


def test_unlisten_removes_only_that_listener() -> None:
    bus = EventBus()
    kept: list[Event] = []
    removed: list[Event] = []
    bus.listen(TelemetryReceived, kept.append)
    bus.listen(TelemetryReceived, removed.append)()
    event = telemetry()
    bus.fire(event)
    assert kept == [event]
    assert removed == []


def test_failing_callback_does_not_stop_other_listeners_nor_fire(caplog: pytest.LogCaptureFixture) -> None:
    # given a broken listener registered between two healthy ones
    bus = EventBus()
    before: list[Event] = []
    after: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    bus.listen(TelemetryReceived, before.append)
    bus.listen(TelemetryReceived, broken)
    bus.listen(TelemetryReceived, after.append)
    sub = bus.subscribe(TelemetryReceived)
    # when an event is fired (fire() itself must not raise)
    event = telemetry()
    bus.fire(event)
    # then everyone else still got it, and the failure was logged with its traceback
    assert before == [event]
    assert after == [event]
    assert sub.get_nowait() is event
    assert bus.callback_errors == 1
    logged = [r for r in caplog.records if r.name == "linli.gateway.bus" and r.exc_info]
    assert len(logged) == 1
    assert "listener bug" in caplog.text
    # this exception was provoked on purpose: tell the autouse check it was expected
    for record in logged:
        record.expected = True


# -- subscriptions ---------------------------------------------------------------------------


def test_slow_subscriber_drop_oldest_keeps_the_last_events_and_counts() -> None:
    # given a subscriber that holds 3 events and keeps the newest
    bus = EventBus()
    sub = bus.subscribe(TelemetryReceived, maxsize=3, overflow=Overflow.DROP_OLDEST)
    # when 10 events arrive and nobody reads
    for n in range(10):
        bus.fire(telemetry(n=n))
    # then the last 3 are queued and 7 were dropped
    assert len(sub) == 3
    assert sub.dropped == 7
    queued = [sub.get_nowait() for _ in range(3)]
    assert [e.values["temperature"] for e in queued] == [7, 8, 9]
    assert sub.get_nowait() is None


def test_slow_subscriber_drop_newest_keeps_the_first_events_and_counts() -> None:
    bus = EventBus()
    sub = bus.subscribe(TelemetryReceived, maxsize=3, overflow=Overflow.DROP_NEWEST)
    for n in range(10):
        bus.fire(telemetry(n=n))
    assert sub.dropped == 7
    queued = [sub.get_nowait() for _ in range(3)]
    assert [e.values["temperature"] for e in queued] == [0, 1, 2]
    assert sub.get_nowait() is None


@pytest.mark.slow
def test_fire_never_waits_for_a_subscriber_that_never_reads() -> None:
    # given a subscriber that never reads, and fire() called outside any event loop
    bus = EventBus()
    sub = bus.subscribe(TelemetryReceived, maxsize=10)
    received: list[Event] = []
    bus.listen(TelemetryReceived, received.append)
    # when many events are fired
    started = time.perf_counter()
    for n in range(50_000):
        bus.fire(telemetry(n=n))
    elapsed = time.perf_counter() - started
    # then fire() returned every time, quickly, with the subscriber's memory bounded
    assert len(received) == 50_000
    assert len(sub) == 10
    assert sub.dropped == 50_000 - 10
    assert elapsed < 5


def test_slow_subscriber_warns_once_per_minute(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a full subscription and a clock we control
    clock = FakeClock(10_000.0)
    monkeypatch.setattr(linli.common.ratelog, "time", clock)
    bus = EventBus()
    sub = bus.subscribe(TelemetryReceived, maxsize=1)
    # when many events are dropped within the same minute
    for n in range(1000):
        bus.fire(telemetry(n=n))
        clock.now += 0.05  # 50 s in all
    # then exactly one warning was logged
    assert sub.dropped == 999
    assert len(drop_warnings(caplog)) == 1
    assert "TelemetryReceived" in drop_warnings(caplog)[0].getMessage()
    # and when drops go on after the minute is over, there is one more
    clock.now += 11
    bus.fire(telemetry())
    bus.fire(telemetry())
    assert len(drop_warnings(caplog)) == 2


def test_first_drop_warns_even_shortly_after_boot(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a gateway whose host booted 20 seconds ago (monotonic clock at 20 s)
    monkeypatch.setattr(linli.common.ratelog, "time", FakeClock(20.0))
    bus = EventBus()
    sub = bus.subscribe(TelemetryReceived, maxsize=1)
    # when a slow subscriber starts dropping events
    for n in range(5):
        bus.fire(telemetry(n=n))
    # then the operator is told
    assert sub.dropped == 4
    assert len(drop_warnings(caplog)) == 1


async def test_subscription_delivers_in_order_to_a_waiting_consumer() -> None:
    bus = EventBus()
    sub = bus.subscribe(TelemetryReceived, household="h1")
    consumer = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    event = telemetry("h1")
    bus.fire(telemetry("h2"))
    bus.fire(event)
    assert await asyncio.wait_for(consumer, 1) is event


async def test_consumer_iterating_a_subscription_ends_when_it_is_closed() -> None:
    # given a consumer task iterating over a subscription
    bus = EventBus()
    sub = bus.subscribe(TelemetryReceived)
    seen: list[TelemetryReceived] = []

    async def consume() -> str:
        async for event in sub:
            seen.append(event)
        return "ended"

    task = asyncio.create_task(consume())
    bus.fire(telemetry(n=1))
    bus.fire(telemetry(n=2))
    await asyncio.sleep(0.01)  # the consumer is now waiting for more
    # when the subscription is closed
    sub.close()
    # then the iteration ends on its own, after what had been delivered
    assert await asyncio.wait_for(task, 1) == "ended"
    assert [e.values["temperature"] for e in seen] == [1, 2]
    # and later events no longer reach it
    bus.fire(telemetry(n=3))
    assert len(sub) == 0


async def test_bus_close_ends_every_consumer() -> None:
    bus = EventBus()
    subs = [bus.subscribe(TelemetryReceived), bus.subscribe(Event, household="h1")]

    async def drain(sub: linli.gateway.bus.Subscription[Event]) -> int:
        return len([event async for event in sub])

    tasks = [asyncio.create_task(drain(sub)) for sub in subs]
    await asyncio.sleep(0)
    bus.close()
    assert await asyncio.wait_for(asyncio.gather(*tasks), 1) == [0, 0]


def test_has_listeners_follows_subscribe_listen_and_close() -> None:
    # given an empty bus
    bus = EventBus()
    assert not bus.has_listeners(TelemetryReceived)
    assert not bus.has_listeners(TelemetryReceived, "h1")
    # when one household subscribes
    sub = bus.subscribe(TelemetryReceived, household="h1")
    # then events of that household (only) have a listener
    assert bus.has_listeners(TelemetryReceived, "h1")
    assert not bus.has_listeners(TelemetryReceived, "h2")
    assert not bus.has_listeners(StateChanged, "h1")
    # and when it closes, nobody listens any more
    sub.close()
    assert not bus.has_listeners(TelemetryReceived, "h1")
    # a catch-all callback makes every type and household listened to, until removed
    unlisten = bus.listen(Event, lambda event: None)
    assert bus.has_listeners(StateChanged, "h2")
    assert bus.has_listeners(StateChanged)
    unlisten()
    assert not bus.has_listeners(StateChanged, "h2")


# -- events, context, ids --------------------------------------------------------------------


def test_event_as_dict_flattens_context() -> None:
    ctx = Context(household="h1", origin="mqtt", user="u7")
    data = StateChanged(
        device_id="h1-door", capability="door", kind="contact", old=False, new=True, ts=5.0, context=ctx
    ).as_dict()
    assert data == {
        "type": "StateChanged",
        "device_id": "h1-door",
        "capability": "door",
        "kind": "contact",
        "old": False,
        "new": True,
        "ts": 5.0,
        "event_id": ctx.id,
        "household": "h1",
        "origin": "mqtt",
        "parent": None,
    }


def test_child_context_keeps_household_and_points_to_its_parent() -> None:
    # given a context for something that happened in household h1
    parent = Context(household="h1", origin="mqtt", user="resident-1")
    # when something it caused gets a child context
    child = parent.child(origin="alerts")
    # then the child is a new id in the same household, caused by the parent
    assert child.household == "h1"
    assert child.parent == parent.id
    assert child.id > parent.id
    assert child.origin == "alerts"
    assert child.user == "resident-1"
    assert parent.child().origin == "mqtt"


def test_ids_strictly_increase_and_carry_the_time() -> None:
    before = time.time()
    ids = [new_id() for _ in range(100_000)]
    after = time.time()
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert before - 0.002 <= id_time(ids[0]) <= id_time(ids[-1]) <= after + 0.002
    assert abs(id_time(new_id()) - time.time()) < 0.05


def test_ids_keep_increasing_when_the_sequence_wraps_within_a_millisecond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a clock standing still at one millisecond, in which almost 2**22 ids were made
    frozen_ns = time.time_ns() + 10_000_000
    monkeypatch.setattr(linli.common.ids, "time", types.SimpleNamespace(time_ns=lambda: frozen_ns))
    new_id()
    monkeypatch.setattr(linli.common.ids, "_seq", (1 << 22) - 2)
    # when a few more ids are made in that millisecond
    ids = [new_id() for _ in range(4)]
    # then they still increase
    assert all(a < b for a, b in itertools.pairwise(ids))
