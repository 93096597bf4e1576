"""The alert engine: durable before told, escalating on a clock, stopped by a person."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from linli.gateway.events import AlertAnswered, AlertChanged
from linli.gateway.notify import Audience
from linli.services.alerts import AlertError, AlertState
from tests.alerting import RecordingChannel
from tests.brokers import settle
from tests.homes import add_home, publish

SERVICES = [
    "linli.adapters.mqtt_device:MqttDeviceAdapter",
    "linli.services.alerts:AlertEngine",
    "linli.services.eldercare:ElderCare",
]


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


async def start(make_gateway, tmp_path, clock: Clock | None = None, **kw):  # type: ignore[no-untyped-def]
    gateway = await make_gateway(data_dir=tmp_path / "data", components=SERVICES, **kw)
    engine = gateway.components["alerts"]
    if clock is not None:
        engine.clock = clock
    channel = RecordingChannel(db=gateway.store.path)
    gateway.notifier.register(channel)
    return gateway, engine, channel


async def test_sos_press_is_durable_before_any_screen_shows_it(make_gateway, broker, tmp_path) -> None:
    # given a home with an SOS pendant and a screen
    gateway, engine, screen = await start(make_gateway, tmp_path)
    topics = await add_home(gateway)
    changes = gateway.bus.subscribe(AlertChanged)
    # when the resident presses the pendant
    await publish(broker.port, [(topics["h1-sos"], {"sos": "idle"}), (topics["h1-sos"], {"sos": "pressed"})])
    # then the household's screens show an SOS alert, which was on disk first
    await settle(lambda: screen.received)
    alert_id, audience, _ = screen.received[0]
    assert audience is Audience.HOUSEHOLD
    assert screen.durable_before_delivery == [True]
    alert = engine.alerts[alert_id]
    assert (alert.kind, alert.severity, alert.household_id) == ("sos", "critical", "h1")
    transitions = []
    await settle(
        lambda: (e := changes.get_nowait()) is None or transitions.append(e.transition) or False, timeout=1
    )
    assert transitions[:2] == ["raised", "notified"]


def hold_writer(gateway):  # type: ignore[no-untyped-def]
    """Occupy the store's writer thread (as a long telemetry batch or checkpoint would)."""
    release = threading.Event()
    gateway.store._writer.submit(release.wait, 30)
    return release


def journal_entries(gateway) -> list[tuple[int, str, bytes]]:  # type: ignore[no-untyped-def]
    with sqlite3.connect(gateway.store.journal.path) as conn:
        return conn.execute("SELECT id, kind, doc FROM entries").fetchall()


@pytest.mark.slow
async def test_sos_is_announced_without_waiting_for_a_busy_database_writer(
    make_gateway, broker, tmp_path
) -> None:
    # given a home whose database writer is busy with something long
    gateway, engine, _ = await start(make_gateway, tmp_path)
    topics = await add_home(gateway)
    changes = gateway.bus.subscribe(AlertChanged)
    release = hold_writer(gateway)
    # when the pendant is pressed
    await publish(broker.port, [(topics["h1-sos"], {"sos": "idle"}), (topics["h1-sos"], {"sos": "pressed"})])
    # then the screens hear of it at once, and it is on disk already, in the alarm journal
    raised = await asyncio.wait_for(changes.get(), 5)
    assert raised.transition == "raised"
    assert [kind for _, kind, _ in journal_entries(gateway)] == ["alerts"]
    with sqlite3.connect(gateway.store.path) as conn:
        assert conn.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0
    # and reads wait for it: nobody sees the database without it
    release.set()
    listed = await gateway.store.async_read(lambda c: c.execute("SELECT id, state FROM alerts").fetchall())
    assert [row[0] for row in listed] == [raised.alert_id]
    await settle(lambda: not journal_entries(gateway))


@pytest.mark.slow
async def test_a_journaled_sos_the_database_never_got_is_restored_on_start(
    make_gateway, broker, tmp_path
) -> None:
    # given an SOS journaled while the writer was busy, and the gateway dying before the copy
    gateway, engine, _ = await start(make_gateway, tmp_path)
    topics = await add_home(gateway)
    release = hold_writer(gateway)
    await publish(broker.port, [(topics["h1-sos"], {"sos": "idle"}), (topics["h1-sos"], {"sos": "pressed"})])
    await settle(lambda: journal_entries(gateway))
    kept = journal_entries(gateway)
    release.set()
    await gateway.async_stop()
    with sqlite3.connect(tmp_path / "data" / "linli.db") as conn:  # as if the copy never committed
        conn.execute("DELETE FROM alert_events")
        conn.execute("DELETE FROM alerts")
    with sqlite3.connect(tmp_path / "data" / "linli-alarms.db") as conn:
        conn.executemany("INSERT INTO entries (id, kind, doc) VALUES (?, ?, ?)", kept)
    # when it starts again
    again, engine2, _ = await start(make_gateway, tmp_path, gateway_id="gw-again")
    # then the SOS is open, recorded once, and the journal is empty
    [alert] = engine2.open_alerts("h1")
    assert alert.kind == "sos"
    events = await again.store.async_read(lambda c: c.execute("SELECT action FROM alert_events").fetchall())
    assert [e for e in events if e[0] == "raised"] == [("raised",)]
    assert journal_entries(again) == []
    await again.async_stop()
    # and an entry the database already holds is not applied twice (nor does it reopen anything)
    with sqlite3.connect(tmp_path / "data" / "linli-alarms.db") as conn:
        conn.executemany("INSERT INTO entries (id, kind, doc) VALUES (?, ?, ?)", kept)
    third, engine3, _ = await start(make_gateway, tmp_path, gateway_id="gw-third")
    events = await third.store.async_read(lambda c: c.execute("SELECT action FROM alert_events").fetchall())
    assert [e for e in events if e[0] == "raised"] == [("raised",)]
    assert [a.id for a in engine3.open_alerts("h1")] == [alert.id]


async def test_unanswered_alert_escalates_carers_then_duty_desk_then_again(make_gateway, tmp_path) -> None:
    clock = Clock()
    gateway, engine, screen = await start(make_gateway, tmp_path, clock)
    await add_home(gateway)
    alert = await engine.async_raise(kind="sos", household_id="h1", title="SOS")
    await engine.async_run_due()
    assert screen.audiences(alert.id) == [Audience.HOUSEHOLD]
    clock.now += 59
    await engine.async_run_due()
    assert screen.audiences(alert.id) == [Audience.HOUSEHOLD]  # not yet
    clock.now += 1
    await engine.async_run_due()
    assert screen.audiences(alert.id)[-1] is Audience.CARERS
    clock.now += 120
    await engine.async_run_due()
    assert screen.audiences(alert.id)[-1] is Audience.DUTY_DESK
    clock.now += 120
    await engine.async_run_due()
    assert screen.audiences(alert.id)[-1] is Audience.EMERGENCY
    clock.now += 120  # nobody answered: everyone again
    await engine.async_run_due()
    assert set(screen.audiences(alert.id)[-4:]) == set(Audience)


async def test_acknowledgement_stops_escalation_and_records_who(make_gateway, tmp_path) -> None:
    clock = Clock()
    gateway, engine, screen = await start(make_gateway, tmp_path, clock)
    await add_home(gateway)
    alert = await engine.async_raise(kind="sos", household_id="h1", title="SOS")
    await engine.async_run_due()
    await engine.async_acknowledge(alert.id, "daughter")
    clock.now += 3600
    await engine.async_run_due()
    assert screen.audiences(alert.id) == [Audience.HOUSEHOLD]
    timeline = await engine.async_timeline(alert.id)
    assert [e["action"] for e in timeline][:2] == ["raised", "notifying"]
    assert {"action": "acknowledged", "actor": "daughter"}.items() <= timeline[-1].items()


async def test_resolution_needs_a_note(make_gateway, tmp_path) -> None:
    gateway, engine, _ = await start(make_gateway, tmp_path)
    await add_home(gateway)
    alert = await engine.async_raise(kind="smoke", household_id="h1", title="Smoke in the kitchen")
    with pytest.raises(AlertError, match="needs a note"):
        await engine.async_resolve(alert.id, "manager", "  ")
    resolved = await engine.async_resolve(alert.id, "manager", "burnt toast, checked on site")
    assert resolved.state is AlertState.RESOLVED and resolved.acknowledged_by == "manager"
    assert alert.id not in engine.alerts


async def test_fall_answered_im_ok_within_the_window_calls_nobody_else(
    make_gateway, broker, tmp_path
) -> None:
    clock = Clock()
    gateway, engine, screen = await start(make_gateway, tmp_path, clock)
    topics = await add_home(gateway, devices={"fall": "linli/fall-radar"})
    await publish(
        broker.port, [(topics["h1-fall"], {"fall": "none"}), (topics["h1-fall"], {"fall": "detected"})]
    )
    await settle(lambda: screen.received)
    alert_id = screen.received[0][0]
    clock.now += 20  # within the 30 s window, the resident presses "I'm OK" on the TV remote
    gateway.bus.fire(AlertAnswered(alert_id=alert_id, action="cancel", by="resident:h1"))
    await settle(lambda: alert_id not in engine.alerts)
    clock.now += 600
    await engine.async_run_due()
    assert screen.audiences(alert_id) == [Audience.HOUSEHOLD]
    stored = await engine.async_get(alert_id)
    assert stored.resolution_note == "resident answered: I'm OK"


async def test_fall_unanswered_reaches_carers_after_30_seconds(make_gateway, tmp_path) -> None:
    clock = Clock()
    gateway, engine, screen = await start(make_gateway, tmp_path, clock)
    await add_home(gateway)
    alert = await engine.async_raise(kind="fall", household_id="h1", title="Fall")
    await engine.async_run_due()
    clock.now += 30
    await engine.async_run_due()
    assert screen.audiences(alert.id) == [Audience.HOUSEHOLD, Audience.CARERS]


async def test_flapping_sensor_is_one_alert_with_a_count(make_gateway, broker, tmp_path) -> None:
    gateway, engine, screen = await start(make_gateway, tmp_path)
    topics = await add_home(gateway)
    presses = []
    for _ in range(100):
        presses += [(topics["h1-sos"], {"sos": "pressed"}), (topics["h1-sos"], {"sos": "idle"})]
    await publish(broker.port, presses)
    await settle(lambda: engine.alerts and next(iter(engine.alerts.values())).count == 100)
    assert len(engine.alerts) == 1
    assert len(screen.received) == 1


async def test_open_alert_and_its_timer_survive_a_restart(make_gateway, tmp_path) -> None:
    clock = Clock()
    gateway, engine, screen = await start(make_gateway, tmp_path, clock)
    await add_home(gateway)
    alert = await engine.async_raise(kind="sos", household_id="h1", title="SOS")
    await engine.async_run_due()
    await gateway.async_stop()
    # the gateway is down for two minutes; it comes back
    clock.now += 120
    again, engine2, screen2 = await start(make_gateway, tmp_path, clock, gateway_id="gw-again")
    restored = engine2.alerts[alert.id]
    assert restored.state is AlertState.NOTIFIED and restored.step == 0
    await engine2.async_run_due()
    assert screen2.audiences(alert.id) == [Audience.CARERS]  # the overdue step, once
    clock.now += 60
    await engine2.async_run_due()
    assert screen2.audiences(alert.id)[-1] is Audience.DUTY_DESK


async def test_a_step_interrupted_by_a_crash_is_delivered_after_restart(make_gateway, tmp_path) -> None:
    clock = Clock()
    gateway, engine, screen = await start(make_gateway, tmp_path, clock)
    await add_home(gateway)
    alert = await engine.async_raise(kind="sos", household_id="h1", title="SOS")
    await engine.async_run_due()
    # a second channel existed at the time but its delivery was never recorded
    with sqlite3.connect(gateway.store.path) as conn:
        conn.execute("DELETE FROM alert_deliveries WHERE alert_id = ?", (alert.id,))
    await gateway.async_stop()
    again, engine2, screen2 = await start(make_gateway, tmp_path, clock, gateway_id="gw-again")
    await engine2.async_redeliver_missing()
    assert screen2.audiences(alert.id) == [Audience.HOUSEHOLD]


async def test_failed_delivery_is_retried_with_backoff_and_recorded(make_gateway, tmp_path) -> None:
    clock = Clock()
    gateway, engine, screen = await start(make_gateway, tmp_path, clock)
    await add_home(gateway)
    screen.fail = True
    alert = await engine.async_raise(kind="gas", household_id="h1", title="Gas")
    await engine.async_run_due()
    assert alert.state is AlertState.RAISED  # nobody has seen it yet
    screen.fail = False
    clock.now += 1
    await engine.async_run_due()
    assert screen.audiences(alert.id) == [Audience.HOUSEHOLD]
    assert alert.state is AlertState.NOTIFIED
    outcomes = [e["outcome"] for e in await engine.async_timeline(alert.id) if e["action"] == "delivery"]
    assert outcomes == ["failed", "delivered"]


async def test_alert_for_an_unknown_household_is_refused(make_gateway, tmp_path) -> None:
    gateway, engine, _ = await start(make_gateway, tmp_path)
    with pytest.raises(AlertError, match="unknown household"):
        await engine.async_raise(kind="sos", household_id="nowhere", title="SOS")


async def test_household_can_set_its_own_chain(make_gateway, tmp_path) -> None:
    clock = Clock()
    gateway, engine, screen = await start(make_gateway, tmp_path, clock)
    await add_home(gateway)
    await engine.async_set_policy(
        "h1",
        "sos",
        {
            "steps": [{"after_s": 0, "audience": "household"}, {"after_s": 10, "audience": "duty_desk"}],
            "repeat_s": None,
        },
    )
    alert = await engine.async_raise(kind="sos", household_id="h1", title="SOS")
    await engine.async_run_due()
    clock.now += 10
    await engine.async_run_due()
    clock.now += 1000
    await engine.async_run_due()
    assert screen.audiences(alert.id) == [Audience.HOUSEHOLD, Audience.DUTY_DESK]
    with pytest.raises(ValueError, match="time order"):
        await engine.async_set_policy(
            "h1",
            "sos",
            {"steps": [{"after_s": 10, "audience": "household"}, {"after_s": 0, "audience": "carers"}]},
        )


@pytest.mark.slow
async def test_health_details_reach_carers_only_with_the_households_consent(make_gateway, tmp_path) -> None:
    clock = Clock()
    gateway, engine, screen = await start(make_gateway, tmp_path, clock)
    await add_home(gateway)
    shown: list[tuple[str, str]] = []

    class Phone:
        name = "phone"

        async def async_deliver(self, alert, audience, *, context):  # type: ignore[no-untyped-def]
            from linli.gateway.notify import Delivery, Outcome

            shown.append((audience.value, alert["title"]))
            return Delivery(outcome=Outcome.DELIVERED)

    gateway.notifier.register(Phone())
    consent = {"h1": False}
    gateway.privacy.register("health", lambda household, purpose: consent[household])
    reading = {"sensitive": "health", "value": 196, "unit": "mm[Hg]"}
    alert = await engine.async_raise(
        kind="vital_sign", household_id="h1", title="收缩压 196 mmHg", severity="high", data=reading
    )
    await engine.async_run_due()
    clock.now += 60
    await engine.async_run_due()
    assert shown[0] == ("household", "收缩压 196 mmHg")  # the household sees its own reading
    assert shown[1][0] == "carers" and "196" not in shown[1][1]  # carers: someone needs attention
    consent["h1"] = True
    clock.now += 120
    await engine.async_run_due()
    assert shown[2] == ("duty_desk", "收缩压 196 mmHg")
    assert alert.data["value"] == 196  # the stored alert keeps everything
