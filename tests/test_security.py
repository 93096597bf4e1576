"""The household alarm: arming, delays, sensor roles, PINs and lockout, alerts and sirens.

Driven by real MQTT messages from devices with the shipped firmware profiles
(an Aqara door contact reports `contact: false` when the door is OPEN), with a
clock the test steps, so no test waits out a delay.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from pathlib import Path
from typing import Any

import aiomqtt
import argon2
import orjson
import pytest

from linli.gateway.events import AlarmStateChanged
from linli.gateway.mqtt.topics import device_topic
from linli.gateway.notify import Audience
from linli.gateway.runtime import Gateway
from linli.services.security import AlarmState, ArmMode, Role, SecurityError
from linli.services.security.panel import Panel, Trip
from tests.alerting import RecordingChannel
from tests.brokers import settle
from tests.homes import publish

SERVICES = [
    "linli.adapters.mqtt_device:MqttDeviceAdapter",
    "linli.services.alerts:AlertEngine",
    "linli.services.security:Security",
]

# device suffix → (profile, room, name)
HOME = {
    "front-door": ("aqara/mccgq11lm", "hall", "Front door"),
    "window": ("aqara/mccgq11lm", "living room", "Living room window"),
    "motion": ("aqara/rtcgq11lm", "living room", "Living room motion"),
    "smoke": ("heiman/hs1sa", "kitchen", "Kitchen smoke alarm"),
    "siren": ("heiman/hs2wd-e", "hall", "Hall siren"),
}
CLOSED = {"contact": True, "battery": 90}  # Aqara: contact means the magnet is near
OPEN = {"contact": False, "battery": 90}
PIN = "2468"


class Clock:
    # Far beyond the wall clock, so that nothing run on real time is ever due.
    def __init__(self, start: float = 4_000_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Home:
    """A started gateway with one secured household (h1) and handles on what tests look at."""

    def __init__(self, gateway: Gateway, port: int, clock: Clock) -> None:
        self.gateway = gateway
        self.port = port
        self.clock = clock
        self.security: Any = gateway.components["security"]
        self.security.clock = clock
        self.engine: Any = gateway.components["alerts"]
        self.screen = RecordingChannel()
        gateway.notifier.register(self.screen)
        self.changes = gateway.bus.subscribe(AlarmStateChanged, household="h1")

    def topic(self, suffix: str) -> str:
        return device_topic("h1", f"h1-{suffix}")

    async def send(self, suffix: str, payload: dict[str, Any]) -> None:
        await publish(self.port, [(self.topic(suffix), payload)])

    async def report(self, suffix: str, payload: dict[str, Any], capability: str, value: bool) -> None:
        """Publish a device report and wait until the gateway has it."""
        await self.send(suffix, payload)
        device = self.gateway.registry.device(f"h1-{suffix}")
        await settle(lambda: (s := device.states.get(capability)) is not None and s.value is value)

    async def all_closed(self) -> None:
        await self.report("front-door", CLOSED, "door", False)
        await self.report("window", CLOSED, "door", False)
        await self.report("motion", {"occupancy": False}, "motion", False)
        await self.report("smoke", {"smoke": False, "tamper": False}, "smoke", False)

    @property
    def state(self) -> str:
        return str(self.security.status("h1")["state"])

    async def until_state(self, state: AlarmState) -> None:
        await settle(lambda: self.state == state.value)

    async def step(self, seconds: float) -> None:
        self.clock.now += seconds
        await self.security.async_run_due()

    def transitions(self) -> list[str]:
        seen = []
        while (event := self.changes.get_nowait()) is not None:
            seen.append(event.state)
        return seen

    def alerts(self, kind: str) -> list[dict[str, Any]]:
        return [a.as_dict() for a in self.engine.alerts.values() if a.kind == kind]


async def add_secured_home(gateway: Gateway, household: str = "h1") -> None:
    registry = gateway.registry
    await registry.async_add_building("b1", "1号楼")
    await registry.async_add_unit(f"u-{household}", "b1", "101")
    await registry.async_add_household(household, f"u-{household}", f"{household} home")
    for suffix, (profile, room, name) in HOME.items():
        device_id = f"{household}-{suffix}"
        await registry.async_add_device(
            device_id,
            household_id=household,
            name=name,
            profile_id=profile,
            topic=device_topic(household, device_id),
            room=room,
        )


async def start(make_gateway, broker, tmp_path: Path, clock: Clock | None = None, **kw: Any) -> Home:  # type: ignore[no-untyped-def]
    gateway = await make_gateway(data_dir=tmp_path / "data", components=SERVICES, **kw)
    if "h1" not in gateway.registry.households:
        await add_secured_home(gateway)
    home = Home(gateway, broker.port, clock or Clock())
    return home


async def armed(home: Home, mode: str = "away") -> None:
    """Set a PIN, close everything, arm and let the exit delay run out."""
    await home.security.async_set_pin("h1", "mum", PIN)
    await home.all_closed()
    status = await home.security.async_arm("h1", mode, "mum", PIN)
    await home.step(status["remaining_s"])
    assert home.state == f"armed_{mode}"


async def test_arming_is_refused_while_a_window_is_open_and_lists_it(make_gateway, broker, tmp_path) -> None:
    # given a home with the living-room window open
    home = await start(make_gateway, broker, tmp_path)
    await home.security.async_set_pin("h1", "mum", PIN)
    await home.all_closed()
    await home.report("window", OPEN, "door", True)
    # when mum arms away
    with pytest.raises(SecurityError) as refused:
        await home.security.async_arm("h1", "away", "mum", PIN)
    # then she is told which sensor is open, and nothing is armed
    assert refused.value.code == "open_sensors"
    assert [s["device_id"] for s in refused.value.data["sensors"]] == ["h1-window"]
    assert "Living room window (living room)" in refused.value.message
    assert "arm with force" in refused.value.message
    assert home.state == "disarmed"
    trail = await home.security.async_events("h1")
    assert trail[0]["action"] == "arm_refused" and trail[0]["actor"] == "mum"


@pytest.mark.slow
async def test_forced_arming_bypasses_open_sensors_until_disarm_and_records_who(
    make_gateway, broker, tmp_path
) -> None:
    home = await start(make_gateway, broker, tmp_path)
    await home.security.async_set_pin("h1", "mum", PIN)
    await home.all_closed()
    await home.report("window", OPEN, "door", True)
    status = await home.security.async_arm("h1", "away", "mum", PIN, force=True)
    assert [(b["device_id"], b["by"], b["auto"]) for b in status["bypassed"]] == [("h1-window", "mum", True)]
    await home.step(60)
    assert home.state == "armed_away"
    # the bypassed window closing and opening again trips nothing; the front door does
    await home.report("window", CLOSED, "door", False)
    await home.report("window", OPEN, "door", True)
    await home.send("front-door", OPEN)
    await home.until_state(AlarmState.PENDING)
    status = await home.security.async_disarm("h1", "mum", PIN)
    assert status["bypassed"] == []  # a forced bypass lasts one arming
    actions = [(e["action"], e["actor"]) for e in reversed(await home.security.async_events("h1"))]
    assert actions[:3] == [("pin_set", "mum"), ("arm", "mum"), ("bypass", "mum")]
    assert actions[-2:] == [("pending", None), ("disarm", "mum")]


async def test_exit_delay_runs_out_then_the_home_is_armed(make_gateway, broker, tmp_path) -> None:
    home = await start(make_gateway, broker, tmp_path)
    await home.security.async_set_pin("h1", "mum", PIN)
    await home.all_closed()
    status = await home.security.async_arm("h1", "away", "mum", PIN)
    assert (status["state"], status["mode"], status["remaining_s"]) == ("arming", "away", 60)
    await home.step(59)
    assert home.state == "arming"
    await home.step(1)
    assert home.state == "armed_away"
    assert home.transitions() == ["arming", "armed_away"]


async def test_a_door_left_open_when_the_exit_delay_ends_starts_the_entry_delay(
    make_gateway, broker, tmp_path
) -> None:
    home = await start(make_gateway, broker, tmp_path)
    await home.security.async_set_pin("h1", "mum", PIN)
    await home.all_closed()
    await home.security.async_arm("h1", "away", "mum", PIN)
    # mum goes out during the exit delay and does not shut the door behind her
    await home.report("front-door", OPEN, "door", True)
    assert home.state == "arming"
    await home.step(60)
    assert home.state == "pending"
    assert home.transitions() == ["arming", "armed_away", "pending"]


@pytest.mark.slow
async def test_entry_door_then_the_right_pin_within_the_entry_delay_raises_no_alert(
    make_gateway, broker, tmp_path
) -> None:
    home = await start(make_gateway, broker, tmp_path)
    await armed(home, "away")
    # when mum comes home and disarms within the 30 s entry delay
    await home.send("front-door", OPEN)
    await home.until_state(AlarmState.PENDING)
    assert home.security.status("h1")["remaining_s"] == 30
    await home.step(20)
    await home.security.async_disarm("h1", "mum", PIN)
    # then nothing sounds and nobody is alerted
    await home.step(600)
    assert home.state == "disarmed"
    assert home.alerts("intrusion") == [] and home.screen.received == []


@pytest.mark.slow
async def test_entry_door_without_a_disarm_raises_an_intrusion_alert_and_sounds_the_siren(
    make_gateway, broker, tmp_path
) -> None:
    home = await start(make_gateway, broker, tmp_path)
    await armed(home, "away")
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="test-siren") as siren:
        await siren.subscribe(home.topic("siren") + "/set", qos=1)
        # when the front door opens and nobody disarms for 30 s
        await home.send("front-door", OPEN)
        await home.until_state(AlarmState.PENDING)
        await home.step(29)
        assert home.state == "pending"
        await home.step(1)
        assert home.state == "triggered"
        # then the siren is told to sound…
        command = await asyncio.wait_for(anext(siren.messages), 5)
        assert orjson.loads(command.payload) == {"warning": {"mode": "burglar"}}
        # …and the household's screens show a critical intrusion alert
        await settle(lambda: home.screen.received)
        [alert] = home.alerts("intrusion")
        assert (alert["severity"], alert["household_id"]) == ("critical", "h1")
        assert "Front door" in alert["title"]
        assert home.screen.audiences(alert["id"]) == [Audience.HOUSEHOLD]
        # when mum disarms, the siren stops and the alert is hers (escalation stops)
        await settle(lambda: home.security.status("h1")["alert_id"] == alert["id"])
        await home.security.async_disarm("h1", "mum", PIN)
        command = await asyncio.wait_for(anext(siren.messages), 5)
        assert orjson.loads(command.payload) == {"warning": {"mode": "stop"}}
        await settle(lambda: home.alerts("intrusion")[0]["acknowledged_by"] == "mum")


@pytest.mark.slow
async def test_the_siren_repeats_while_the_alarm_sounds_then_stops_and_the_panel_rearms(
    make_gateway, broker, tmp_path
) -> None:
    home = await start(make_gateway, broker, tmp_path)
    await armed(home, "away")
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="test-siren") as siren:
        await siren.subscribe(home.topic("siren") + "/set", qos=1)

        async def next_mode() -> str:
            message = await asyncio.wait_for(anext(siren.messages), 5)
            return str(orjson.loads(message.payload)["warning"]["mode"])

        await home.send("window", OPEN)
        await home.until_state(AlarmState.TRIGGERED)
        assert await next_mode() == "burglar"
        # the siren sounds only seconds per command, so it is told again while the alarm lasts
        await home.step(8)
        assert await next_mode() == "burglar"
        # after the alarm period (3 minutes) the siren stops and the panel watches again
        await home.step(172)
        assert await next_mode() == "stop"
    assert home.state == "armed_away"
    await settle(lambda: home.alerts("intrusion"))  # the alert stays open for a person


async def test_an_open_window_triggers_at_once(make_gateway, broker, tmp_path) -> None:
    home = await start(make_gateway, broker, tmp_path)
    await armed(home, "home")
    await home.send("window", OPEN)
    await home.until_state(AlarmState.TRIGGERED)
    assert home.security.status("h1")["trigger"]["device_id"] == "h1-window"
    await settle(lambda: home.alerts("intrusion"))


@pytest.mark.slow
async def test_interior_motion_is_ignored_at_home_but_trips_when_away(make_gateway, broker, tmp_path) -> None:
    home = await start(make_gateway, broker, tmp_path)
    await armed(home, "home")
    # someone walks through the living room while the family is in: nothing happens
    await home.report("motion", {"occupancy": True}, "motion", True)
    await home.send("front-door", OPEN)  # sensors are handled in order: this one comes after
    await home.until_state(AlarmState.PENDING)
    assert home.security.status("h1")["trigger"]["device_id"] == "h1-front-door"
    await home.security.async_disarm("h1", "mum", PIN)
    # armed away, the same motion is an intruder
    await home.all_closed()
    status = await home.security.async_arm("h1", "away", "mum", PIN)
    await home.step(status["remaining_s"])
    await home.send("motion", {"occupancy": True})
    await home.until_state(AlarmState.TRIGGERED)
    assert home.security.status("h1")["trigger"]["role"] == "interior"


def test_night_mode_ignores_interior_motion_and_the_walk_to_the_keypad_follows_the_entry_delay() -> None:
    panel = Panel(household_id="h1")
    panel.arm(ArmMode.NIGHT, 0.0, 0.0)
    assert panel.decide(Role.INTERIOR) is Trip.IGNORED
    assert panel.decide(Role.ENTRY) is Trip.PENDING
    panel.arm(ArmMode.AWAY, 0.0, 0.0)
    panel.enter_pending(1.0, 30.0, {"device_id": "door"})
    assert panel.decide(Role.INTERIOR) is Trip.IGNORED  # walking to the keypad
    assert panel.decide(Role.PERIMETER) is Trip.TRIGGERED  # a window is not on the way
    assert Panel(household_id="h1").decide(Role.H24) is Trip.TRIGGERED  # even disarmed


async def test_smoke_and_tamper_alert_even_when_disarmed(make_gateway, broker, tmp_path) -> None:
    home = await start(make_gateway, broker, tmp_path)
    await home.all_closed()
    assert home.state == "disarmed"
    await home.send("smoke", {"smoke": True, "tamper": False})
    await settle(lambda: home.alerts("smoke"))
    [smoke] = home.alerts("smoke")
    assert smoke["severity"] == "critical" and "Kitchen smoke alarm (kitchen)" in smoke["title"]
    await home.send("smoke", {"smoke": True, "tamper": True})
    await settle(lambda: home.alerts("tamper"))
    assert home.alerts("tamper")[0]["severity"] == "warning"
    assert home.state == "disarmed"
    with pytest.raises(SecurityError) as refused:
        await home.security.async_bypass("h1", "h1-smoke", "mum")
    assert refused.value.code == "not_supported"


@pytest.mark.slow
async def test_five_wrong_pins_lock_the_keypad_with_growing_backoff_all_recorded(
    make_gateway, broker, tmp_path
) -> None:
    home = await start(make_gateway, broker, tmp_path)
    await home.security.async_set_pin("h1", "mum", PIN)
    for _ in range(4):
        with pytest.raises(SecurityError) as wrong:
            await home.security.async_arm("h1", "away", "mum", "0000")
        assert wrong.value.code == "wrong_pin"
    with pytest.raises(SecurityError) as locked:
        await home.security.async_arm("h1", "away", "mum", "0000")
    assert (locked.value.code, locked.value.data["retry_after_s"]) == ("locked_out", 30)
    # even the right PIN waits out the lockout
    with pytest.raises(SecurityError, match="try again in 30 s"):
        await home.security.async_arm("h1", "away", "mum", PIN)
    home.clock.now += 30
    for _ in range(5):  # a second lockout lasts twice as long
        with pytest.raises(SecurityError):
            await home.security.async_disarm("h1", "stranger", "1111")
    assert home.security.status("h1")["locked_out_s"] == 60
    home.clock.now += 60
    await home.security.async_disarm("h1", "mum", PIN)
    trail = [(e["action"], e["actor"]) for e in reversed(await home.security.async_events("h1"))]
    assert trail.count(("wrong_pin", "mum")) == 5 and trail.count(("wrong_pin", "stranger")) == 5
    locks = [e for e in await home.security.async_events("h1") if e["action"] == "locked_out"]
    assert [e["detail"]["seconds"] for e in locks] == [60, 30]
    assert trail[-1] == ("disarm", "mum")
    await settle(lambda: home.alerts("tamper"))  # the household hears of it


@pytest.mark.slow
async def test_pins_are_stored_only_as_hashes(make_gateway, broker, tmp_path, caplog) -> None:
    home = await start(make_gateway, broker, tmp_path)
    secret = "73519864"
    await home.security.async_set_pin("h1", "dad", secret)
    await home.all_closed()
    await home.security.async_arm("h1", "night", "dad", secret)
    with pytest.raises(SecurityError):
        await home.security.async_disarm("h1", "dad", "86419375")
    await home.security.async_disarm("h1", "dad", secret)
    await home.gateway.async_stop()
    stored = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("linli.db*"))
    assert b"$argon2id$" in stored
    assert secret.encode() not in stored and b"86419375" not in stored
    assert secret not in caplog.text


async def stored_pin(home: Home, user: str) -> str:
    return await home.gateway.store.async_read(
        lambda conn: conn.execute("SELECT hash FROM alarm_pins WHERE user_id = ?", (user,)).fetchone()[0]
    )


async def test_a_leaked_database_alone_cannot_be_searched_for_a_pin(make_gateway, broker, tmp_path) -> None:
    home = await start(make_gateway, broker, tmp_path)
    await home.security.async_set_pin("h1", "mum", PIN)
    digest = await stored_pin(home, "mum")
    # the hash is not of the PIN itself: trying the 10,000 PINs against it finds nothing
    assert digest.startswith("p1$")
    with pytest.raises(argon2.exceptions.VerifyMismatchError):
        argon2.PasswordHasher().verify(digest.removeprefix("p1$"), PIN)
    # it is of the PIN keyed with the pepper, which lives outside the database, readable by us alone
    pepper_file = tmp_path / "data" / "secrets" / "pin-pepper"
    assert pepper_file.stat().st_mode & 0o077 == 0
    keyed = hmac.new(pepper_file.read_bytes(), PIN.encode(), hashlib.sha256).hexdigest()
    assert argon2.PasswordHasher().verify(digest.removeprefix("p1$"), keyed)
    await home.gateway.async_stop()
    stored = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("linli.db*"))
    assert pepper_file.read_bytes() not in stored


@pytest.mark.slow
async def test_a_pin_hashed_before_peppering_works_and_is_rehashed(make_gateway, broker, tmp_path) -> None:
    home = await start(make_gateway, broker, tmp_path)
    await home.security.async_set_pin("h1", "mum", PIN)
    legacy = argon2.PasswordHasher().hash(PIN)
    await home.gateway.store.async_write(
        lambda db: db.conn.execute("UPDATE alarm_pins SET hash = ? WHERE user_id = 'mum'", (legacy,))
    )
    await home.gateway.async_stop()
    again = await start(make_gateway, broker, tmp_path, gateway_id="gw-again")
    await again.all_closed()
    await again.security.async_arm("h1", "home", "mum", PIN)
    assert (await stored_pin(again, "mum")).startswith("p1$")
    await again.security.async_disarm("h1", "mum", PIN)


@pytest.mark.slow
async def test_without_its_pepper_file_a_pin_is_refused_and_the_log_says_what_to_do(
    make_gateway, broker, tmp_path, caplog
) -> None:
    home = await start(make_gateway, broker, tmp_path)
    await home.security.async_set_pin("h1", "mum", PIN)
    await home.gateway.async_stop()
    (tmp_path / "data" / "secrets" / "pin-pepper").unlink()  # a restore that forgot the secrets folder
    again = await start(make_gateway, broker, tmp_path, gateway_id="gw-again")
    assert "restore that file" in caplog.text and "set its PINs again" in caplog.text
    await again.all_closed()
    with pytest.raises(SecurityError) as refused:
        await again.security.async_arm("h1", "home", "mum", PIN)
    assert refused.value.code == "wrong_pin"
    await again.security.async_set_pin("h1", "mum", PIN, by="admin")  # the way back
    await again.security.async_arm("h1", "home", "mum", PIN)


async def test_a_pending_entry_delay_resumes_after_a_restart_with_the_time_it_had_left(
    make_gateway, broker, tmp_path
) -> None:
    clock = Clock()
    home = await start(make_gateway, broker, tmp_path, clock)
    await armed(home, "away")
    await home.send("front-door", OPEN)
    await home.until_state(AlarmState.PENDING)
    clock.now += 10
    await home.gateway.async_stop()
    clock.now += 5  # the gateway is down for 5 s
    again = await start(make_gateway, broker, tmp_path, clock, gateway_id="gw-again")
    status = again.security.status("h1")
    assert (status["state"], status["mode"], status["remaining_s"]) == ("pending", "away", 15)
    await again.step(14)
    assert again.state == "pending"
    await again.step(1)
    assert again.state == "triggered"
    await settle(lambda: again.alerts("intrusion"))


async def test_bad_input_gets_a_clear_error(make_gateway, broker, tmp_path) -> None:
    home = await start(make_gateway, broker, tmp_path)
    security = home.security
    await security.async_set_pin("h1", "mum", PIN)
    cases = [
        (security.async_arm("nowhere", "away", "mum", PIN), "unknown_household", "no household 'nowhere'"),
        (security.async_arm("h1", "party", "mum", PIN), "invalid_mode", "not one of"),
        (security.async_arm("h1", "away", "mum", "12"), "invalid_pin", "4 to 8 digits"),
        (security.async_disarm("h1", "mum", "123456789"), "invalid_pin", "4 to 8 digits"),
        (security.async_set_pin("h1", "mum", "12a4"), "invalid_pin", "4 to 8 digits"),
        (security.async_set_pin("h1", "mum", 2468), "invalid_pin", "as text"),
        (security.async_bypass("h1", "h1-nothing", "mum"), "unknown_device", "no device 'h1-nothing'"),
        (security.async_configure("h1", by="mum", entry_delay_s={"away": 9999}), "invalid_setting", "600"),
        (security.async_set_role("h1", "h1-window", "moat", by="mum"), "invalid_role", "not one of"),
    ]
    for call, code, words in cases:
        with pytest.raises(SecurityError, match=words) as error:
            await call
        assert error.value.code == code
    with pytest.raises(SecurityError) as error:
        security.status("nowhere")
    assert error.value.code == "unknown_household"
    assert home.state == "disarmed"  # and nothing changed


def test_a_keypad_lockout_stored_before_the_shared_rule_carries_on_where_it_was() -> None:
    from linli.services.security.pins import keypad_lockout

    # given a keypad stored mid-way: locked once, then two more wrong codes (the old format)
    lockout = keypad_lockout({"failures": 2, "lockouts": 1, "locked_until": None})
    # when three more wrong codes come, the second lockout starts, twice as long as the first
    assert [lockout.fail(100.0) for _ in range(3)] == [0, 0, 60]
    assert lockout.lockouts == 2
    # and what is stored now reads back the same
    assert keypad_lockout(lockout.as_data()) == lockout
