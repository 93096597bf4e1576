"""Elder care: a home too quiet, a missed check-in, a forgotten pill — each reaches a person."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from gateway.notify import Audience
from services.eldercare import CareError
from tests.alerting import RecordingChannel
from tests.brokers import settle
from tests.homes import add_home, publish

SERVICES = [
    "adapters.mqtt_device:MqttDeviceAdapter",
    "services.alerts:AlertEngine",
    "services.eldercare:ElderCare",
]


def local(day: int, hour: int, minute: int = 0) -> float:
    """A wall-clock time in the gateway's local zone (the rules are about local hours)."""
    return dt.datetime(2026, 12, day, hour, minute).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def start(make_gateway, tmp_path, clock, **kw):  # type: ignore[no-untyped-def]
    gateway = await make_gateway(data_dir=tmp_path / "data", components=SERVICES, **kw)
    care, engine = gateway.components["eldercare"], gateway.components["alerts"]
    care.clock = engine.clock = clock
    screen = RecordingChannel()
    gateway.notifier.register(screen)
    if "h1" not in gateway.registry.households:
        await add_home(gateway)
    return gateway, care, engine, screen


async def tick(care, engine) -> list[str]:  # type: ignore[no-untyped-def]
    """One pass of the care checks, then of the alert engine once it has the new alerts."""
    before = len(engine.alerts)
    raised = await care.async_run_due()
    await settle(lambda: len(engine.alerts) >= before + len(raised), timeout=2)
    await engine.async_run_due()
    return raised


def kinds(engine) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(a.kind for a in engine.alerts.values())


async def test_motion_counts_as_activity(make_gateway, broker, tmp_path) -> None:
    gateway, care, _, _ = await start(make_gateway, tmp_path, Clock(local(1, 9)))
    care.last_activity["h1"] = 0.0
    topics = await add_home(gateway, "h2", devices={"motion": "aqara/rtcgq11lm"})
    await publish(broker.port, [(topics["h2-motion"], {"occupancy": True})])
    await settle(lambda: care.last_activity.get("h2", 0) > time.time() - 60)


async def test_daytime_silence_over_four_hours_alerts_the_household(make_gateway, tmp_path) -> None:
    clock = Clock(local(1, 14, 0))
    gateway, care, engine, screen = await start(make_gateway, tmp_path, clock)
    care.last_activity["h1"] = local(1, 10, 0)  # the kettle, at ten
    assert await tick(care, engine) == []  # exactly four hours: not yet
    clock.now = local(1, 14, 6)
    assert await tick(care, engine) == ["inactivity:h1"]
    [alert] = engine.alerts.values()
    assert alert.kind == "inactivity" and "daytime" in alert.title
    assert screen.audiences(alert.id) == [Audience.HOUSEHOLD]
    # the same silence is not alerted twice
    clock.now = local(1, 15)
    assert await care.async_run_due() == []


async def test_a_nights_sleep_is_not_inactivity_but_nobody_up_by_nine_is(make_gateway, tmp_path) -> None:
    clock = Clock(local(2, 7, 30))
    gateway, care, engine, _ = await start(make_gateway, tmp_path, clock)
    care.last_activity["h1"] = local(1, 21, 0)  # went to bed at nine
    assert await care.async_run_due() == []  # 07:30: asleep, fine
    clock.now = local(2, 8, 55)
    assert await care.async_run_due() == []
    clock.now = local(2, 9, 5)  # twelve hours without a movement
    assert await tick(care, engine) == ["inactivity:h1"]


async def test_an_away_household_is_never_too_quiet(make_gateway, tmp_path) -> None:
    clock = Clock(local(1, 20))
    gateway, care, engine, _ = await start(make_gateway, tmp_path, clock)
    await care.async_configure("h1", {"away": True})
    care.last_activity["h1"] = local(1, 8)
    assert await care.async_run_due() == []


async def test_missed_check_in_reminds_then_alerts_carers(make_gateway, tmp_path) -> None:
    clock = Clock(local(3, 9, 59))
    gateway, care, engine, screen = await start(make_gateway, tmp_path, clock)
    await care.async_configure("h1", {"check_in": {"enabled": True, "by": "10:00", "grace_min": 30}})
    assert await care.async_run_due() == []
    clock.now = local(3, 10, 0)
    assert await tick(care, engine) == ["check_in_reminder:h1"]
    [reminder] = engine.alerts.values()
    assert screen.audiences(reminder.id) == [Audience.HOUSEHOLD]
    clock.now = local(3, 10, 31)
    assert await tick(care, engine) == ["missed_check_in:h1"]
    missed = next(a for a in engine.alerts.values() if a.kind == "missed_check_in")
    assert screen.audiences(missed.id) == [Audience.CARERS]


async def test_checking_in_settles_the_reminder_and_nobody_is_alerted(make_gateway, tmp_path) -> None:
    clock = Clock(local(3, 10, 0))
    gateway, care, engine, screen = await start(make_gateway, tmp_path, clock)
    await care.async_configure("h1", {"check_in": {"enabled": True, "by": "10:00"}})
    await tick(care, engine)
    clock.now = local(3, 10, 12)
    await care.async_check_in("h1", by="resident:h1")  # one press of OK on the TV
    await settle(lambda: not engine.alerts)
    clock.now = local(3, 11, 0)
    assert await care.async_run_due() == []
    assert care.checked_in_today("h1")


async def test_medication_reminder_confirmed_or_missed(make_gateway, tmp_path) -> None:
    clock = Clock(local(4, 7, 59))
    gateway, care, engine, screen = await start(make_gateway, tmp_path, clock)
    pill = await care.async_add_reminder("h1", title="降压药 1 片", times=["08:00"], window_min=60)
    assert await care.async_run_due() == []
    clock.now = local(4, 8, 0)
    assert await tick(care, engine) == [f"reminder:{pill.id}"]
    assert await care.async_confirm_reminder(pill.id, "resident:h1")
    await settle(lambda: not engine.alerts)
    # the next day nobody confirms it
    clock.now = local(5, 8, 0)
    await tick(care, engine)
    clock.now = local(5, 9, 1)
    assert await tick(care, engine) == [f"missed_medication:{pill.id}"]
    missed = next(a for a in engine.alerts.values() if a.kind == "missed_medication")
    assert "降压药" in missed.title and screen.audiences(missed.id) == [Audience.CARERS]


async def test_reminders_and_check_ins_survive_a_restart(make_gateway, tmp_path) -> None:
    clock = Clock(local(6, 8, 0))
    gateway, care, engine, _ = await start(make_gateway, tmp_path, clock)
    pill = await care.async_add_reminder("h1", title="钙片", times=["08:00", "20:00"])
    await care.async_configure("h1", {"check_in": {"enabled": True, "by": "09:00"}})
    await tick(care, engine)
    await care.async_check_in("h1", by="resident:h1")
    await gateway.async_stop()
    again, care2, engine2, _ = await start(make_gateway, tmp_path, clock, gateway_id="gw-again")
    assert care2.reminders[pill.id].times == ["08:00", "20:00"]
    assert care2.checked_in_today("h1")
    assert await care2.async_run_due() == []  # the 08:00 reminder is not shown twice


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda care: care.async_add_reminder("h1", title="x", times=["25:00"]), "invalid"),
        (lambda care: care.async_add_reminder("h1", title="  ", times=["08:00"]), "invalid"),
        (lambda care: care.async_add_reminder("nowhere", title="x", times=["08:00"]), "not_found"),
        (lambda care: care.async_configure("h1", {"inactivity": {"daytime_limit_s": 5}}), "invalid"),
        (lambda care: care.async_configure("h1", {"bogus": 1}), "invalid"),
        (lambda care: care.async_check_in("nowhere", by="x"), "not_found"),
    ],
    ids=["bad-time", "no-title", "no-household", "tiny-limit", "unknown-setting", "check-in-nowhere"],
)
async def test_bad_care_settings_are_refused_clearly(make_gateway, tmp_path, call, code) -> None:
    _, care, _, _ = await start(make_gateway, tmp_path, Clock(local(1, 12)))
    with pytest.raises(CareError) as raised:
        await call(care)
    assert raised.value.code == code
