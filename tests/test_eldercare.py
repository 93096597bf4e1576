"""Elder care: a home too quiet, a missed check-in, a forgotten pill — each reaches a person."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from linli.gateway.notify import Audience
from linli.services.eldercare import CareError
from linli.services.eldercare.routine import bucket_of
from tests.alerting import RecordingChannel
from tests.brokers import settle
from tests.homes import add_home, publish

SERVICES = [
    "linli.adapters.mqtt_device:MqttDeviceAdapter",
    "linli.services.alerts:AlertEngine",
    "linli.services.eldercare:ElderCare",
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


# -- the learned routine and per-resident limits -------------------------------------------------


async def lived(gateway, household: str, days: range, *times: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """Weeks of a routine on disk: activity at the same times each December day in `days`."""
    rows = [(household, f"2026-12-{d:02d}", (h * 60 + m) // 15) for d in days for h, m in times]
    await gateway.store.async_write(
        lambda db: db.conn.executemany("INSERT INTO care_activity VALUES (?, ?, ?)", rows)
    )


EARLY_RISER = ((7, 30), (8, 0), (12, 0), (18, 0), (21, 30))


async def test_a_learned_routine_notices_a_late_morning_sooner_than_the_fixed_rule(
    make_gateway, tmp_path
) -> None:
    # given two weeks in which the home was up by half past seven every day
    clock = Clock(local(15, 9, 0))
    gateway, care, engine, _ = await start(make_gateway, tmp_path, clock)
    await lived(gateway, "h1", range(1, 15), *EARLY_RISER)
    await care.async_configure("h1", {"inactivity": {"learned": True}})
    routine = await care.routine("h1")
    assert routine.ready and routine.days == 14
    # and today nobody has stirred since ten last night
    care.last_activity["h1"] = local(14, 22, 0)
    assert await care.async_run_due() == []  # at nine: running late is allowed for
    clock.now = local(15, 9, 50)
    assert await tick(care, engine) == ["inactivity:h1"]
    [alert] = engine.alerts.values()
    assert "usually quiet" in alert.title and "14 days" in alert.title
    # whereas the fixed rules (4 daytime hours from 07:00, 12 h overall) would still be waiting
    await care.async_configure("h1", {"inactivity": {"learned": False}})
    care._quiet_alerted.clear()
    assert await care.async_run_due() == []


async def test_a_daily_nap_is_part_of_the_routine_not_an_alarm(make_gateway, tmp_path) -> None:
    # given a resident who, every day, is quiet from one till half past five
    clock = Clock(local(15, 17, 15))
    gateway, care, engine, _ = await start(make_gateway, tmp_path, clock)
    await lived(gateway, "h1", range(1, 15), (7, 30), (12, 45), (17, 30), (21, 0))
    care.last_activity["h1"] = local(15, 12, 50)
    # the fixed rule alarms: 4 h 25 min of daytime silence
    assert await care.async_run_due() == ["inactivity:h1"]
    care._quiet_alerted.clear()
    # the learned routine knows the nap, but not a silence running two hours past it
    await care.async_configure("h1", {"inactivity": {"learned": True}})
    assert await care.async_run_due() == []
    clock.now = local(15, 20, 30)
    assert await care.async_run_due() == ["inactivity:h1"]


@pytest.mark.slow
async def test_until_there_are_enough_days_the_fixed_limits_apply(make_gateway, tmp_path) -> None:
    clock = Clock(local(15, 9, 50))
    gateway, care, engine, _ = await start(make_gateway, tmp_path, clock)
    await lived(gateway, "h1", range(11, 15), *EARLY_RISER)  # four days: not enough to learn from
    await care.async_configure("h1", {"inactivity": {"learned": True}})
    assert not (await care.routine("h1")).ready
    care.last_activity["h1"] = local(14, 22, 0)
    assert await care.async_run_due() == []
    clock.now = local(15, 11, 5)  # four daytime hours after seven
    assert await care.async_run_due() == ["inactivity:h1"]


async def test_activity_is_learned_from_real_messages_and_kept_across_a_restart(
    make_gateway, broker, tmp_path
) -> None:
    gateway, care, _, _ = await start(make_gateway, tmp_path, Clock(time.time()))
    topics = await add_home(gateway, "h2", devices={"motion": "aqara/rtcgq11lm"})
    await publish(broker.port, [(topics["h2-motion"], {"occupancy": True})])
    await settle(lambda: care.last_activity.get("h2", 0) > time.time() - 60)
    await care.async_run_due(time.time())  # the pass writes the quarter-hours seen
    await gateway.async_stop()
    again = await make_gateway(data_dir=tmp_path / "data", components=SERVICES, gateway_id="gw-again")
    rows = await again.store.async_read(
        lambda conn: conn.execute(
            "SELECT day, bucket FROM care_activity WHERE household_id = 'h2'"
        ).fetchall()
    )
    assert rows == [bucket_of(care.last_activity["h2"])]


async def test_a_resident_with_her_own_pendant_and_limits_is_watched_on_her_own(
    make_gateway, tmp_path
) -> None:
    # given a couple: 王秀英 wears the pendant and has a 2-hour daytime limit; the motion sensor is shared
    clock = Clock(local(3, 12, 0))
    gateway, care, engine, _ = await start(make_gateway, tmp_path, clock)
    registry = gateway.registry
    await registry.async_add_resident("r-wang", "h1", "王秀英")
    await registry.async_add_resident("r-li", "h1", "李建国")
    await registry.async_assign_device("h1-sos", "r-wang")
    await care.async_configure("h1", {"inactivity": {"residents": {"r-wang": {"daytime_limit_s": 7200}}}})
    care.last_activity["h1"] = local(3, 9, 30)  # the shared sensor, half past nine
    care.resident_activity["r-wang"] = local(3, 10, 30)  # her pendant moved at half past ten
    assert await care.async_run_due() == []
    clock.now = local(3, 12, 45)  # 2 h 15 min since her pendant moved, 3 h 15 since anyone else
    assert await tick(care, engine) == ["inactivity:h1:r-wang"]
    [alert] = engine.alerts.values()
    assert alert.resident == "r-wang" and "王秀英" in alert.title
    # the household's own 4-hour limit, for 李建国 and the shared sensors, follows at half past one
    clock.now = local(3, 13, 35)
    assert await care.async_run_due() == ["inactivity:h1"]


@pytest.mark.parametrize(
    "inactivity",
    [
        {"learned": "yes"},
        {"daytime_limit_s": True},
        {"learned_weeks": 52},
        {"surprise": 1},
        {"residents": {"r-1": {"learned": True}}},
        {"residents": {"r-1": {"daytime_limit_s": 60}}},
    ],
    ids=["string-bool", "bool-seconds", "many-weeks", "unknown-key", "resident-unknown-key", "resident-tiny"],
)
async def test_bad_inactivity_settings_name_the_problem(make_gateway, tmp_path, inactivity) -> None:
    _, care, _, _ = await start(make_gateway, tmp_path, Clock(local(1, 12)))
    with pytest.raises(CareError) as raised:
        await care.async_configure("h1", {"inactivity": inactivity})
    assert raised.value.code == "invalid" and raised.value.message
    assert care.settings("h1")["inactivity"]["learned"] is False  # nothing changed


async def test_a_removed_household_is_forgotten_by_elder_care(make_gateway, tmp_path) -> None:
    # given an empty household with care settings and a reminder due at eight
    clock = Clock(local(4, 7, 0))
    gateway, care, _, _ = await start(make_gateway, tmp_path, clock)
    await gateway.registry.async_add_household("h9", "u-h1", "空置房")
    await care.async_configure("h9", {"check_in": {"enabled": True, "by": "07:30"}})
    await care.async_add_reminder("h9", title="钙片", times=["08:00"])
    # when the manager removes it
    await gateway.registry.async_remove_household("h9")
    # then nothing is due for it any more, and it is unknown to elder care
    clock.now = local(4, 9, 0)
    assert not [r for r in await care.async_run_due() if "h9" in r]
    assert not [r for r in care.reminders.values() if r.household_id == "h9"]
    with pytest.raises(CareError) as gone:
        care.settings("h9")
    assert gone.value.code == "not_found"
