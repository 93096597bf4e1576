"""Health: readings per resident, vital-sign alerts, refusals, trends, FHIR export, consent.

Driven by real MQTT messages to devices with the shipped health profiles. Where
time matters, a test clock stands in for the gateway's: it stamps what the MQTT
adapter receives and is what the health service calls "now".
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import linli.adapters.mqtt_device.adapter as mqtt_adapter
from linli.gateway.context import Context
from linli.gateway.events import AlertRequested, TelemetryReceived
from linli.services.health import ConsentRefused, Health, ThresholdError
from tests.alerting import RecordingChannel
from tests.brokers import settle
from tests.homes import add_home, publish

SERVICES = [
    "linli.adapters.mqtt_device:MqttDeviceAdapter",
    "linli.services.alerts:AlertEngine",
    "linli.services.health:Health",
]
HEALTH_DEVICES = {
    "bp": "yuwell/ye680a",
    "oximeter": "yuwell/yx306",
    "thermometer": "yuwell/yht100",
    "scale": "linli/scale",
    "glucose": "yuwell/580",
}
BEIJING = timezone(timedelta(hours=8))


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


async def start(make_gateway, tmp_path, *, residents: int = 1, clock: Clock | None = None, **kw):  # type: ignore[no-untyped-def]
    """A gateway with the alert engine and health, one home of health devices, and its residents.

    With one resident every device is theirs; with two, the blood-pressure cuff and the
    glucose meter are the first one's, the oximeter the second's, and the rest shared.
    """
    gateway = await make_gateway(data_dir=tmp_path / "data", components=SERVICES, **kw)
    health: Health = gateway.components["health"]
    health.tz = BEIJING
    if clock is not None:
        health.clock = clock
    screen = RecordingChannel(db=gateway.store.path)
    gateway.notifier.register(screen)
    topics = await add_home(gateway, "h1", devices=HEALTH_DEVICES)
    registry = gateway.registry
    await registry.async_add_resident("r-wang", "h1", "王秀英", data={"gender": "female", "birth_year": 1946})
    if residents == 1:
        for name in HEALTH_DEVICES:
            await registry.async_assign_device(f"h1-{name}", "r-wang")
    else:
        await registry.async_add_resident("r-li", "h1", "李建国", data={"gender": "male"})
        await registry.async_assign_device("h1-bp", "r-wang")
        await registry.async_assign_device("h1-glucose", "r-wang")
        await registry.async_assign_device("h1-oximeter", "r-li")
    return gateway, health, screen, topics


async def take(broker, health: Health, messages: list[tuple[str, Any]], taken: int) -> None:  # type: ignore[no-untyped-def]
    """Publish and wait until the health service has taken (or refused) `taken` more readings."""
    before = health.accepted + health.rejected
    await publish(broker.port, messages)
    await settle(lambda: health.accepted + health.rejected >= before + taken)


def vital_alerts(gateway) -> list[Any]:  # type: ignore[no-untyped-def]
    return [a for a in gateway.components["alerts"].open_alerts("h1") if a.kind == "vital_sign"]


def stored_rows(gateway, sql: str) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    with sqlite3.connect(gateway.store.path) as conn:
        return conn.execute(sql).fetchall()


# -- readings ----------------------------------------------------------------------


async def test_blood_pressure_reading_is_stored_for_its_resident_with_loinc_and_ucum(
    make_gateway, broker, tmp_path
) -> None:
    # given 王秀英's own blood-pressure cuff
    gateway, health, _, topics = await start(make_gateway, tmp_path)
    # when she measures twice with the same result
    reading = {"sys": 128, "dia": 82, "pul": 71, "battery": 90}
    await take(broker, health, [(topics["h1-bp"], reading), (topics["h1-bp"], reading)], 4)
    # then both measurements are hers, each a blood-pressure panel and a heart rate
    readings = await health.async_readings("r-wang")
    assert [(r.kind, r.value) for r in readings] == [
        ("blood_pressure", {"systolic": 128, "diastolic": 82}),
        ("heart_rate", 71),
    ] * 2
    assert {(r.loinc, r.unit, r.device_id, r.attribution.value) for r in readings} == {
        ("85354-9", "mm[Hg]", "h1-bp", "assigned"),
        ("8867-4", "/min", "h1-bp", "assigned"),
    }
    # and the table holds the codes and the source device, durably
    rows = stored_rows(
        gateway, "SELECT resident_id, kind, loinc, unit, device_id FROM health_readings ORDER BY ts, id"
    )
    assert rows[:2] == [
        ("r-wang", "blood_pressure", "85354-9", "mm[Hg]", "h1-bp"),
        ("r-wang", "heart_rate", "8867-4", "/min", "h1-bp"),
    ]
    # and the battery level is not a health reading
    assert len(rows) == 4


async def test_shared_device_in_a_home_of_two_is_stored_for_the_household_unattributed(
    make_gateway, broker, tmp_path
) -> None:
    # given a couple sharing the bathroom scale, with their own cuff and oximeter
    gateway, health, _, topics = await start(make_gateway, tmp_path, residents=2)
    # when someone steps on the scale and 李建国 uses his oximeter
    await take(
        broker, health, [(topics["h1-scale"], {"weight_g": 61200}), (topics["h1-oximeter"], {"spo2": 97})], 2
    )
    # then the weight is the household's, flagged unattributed; the SpO2 is his
    shared = await health.async_unattributed_readings("h1")
    assert [(r.kind, r.value, r.resident_id, r.unattributed) for r in shared] == [
        ("weight", pytest.approx(61.2), None, True)
    ]
    assert [r.kind for r in await health.async_readings("r-li")] == ["spo2"]
    assert await health.async_readings("r-wang") == []
    assert stored_rows(gateway, "SELECT household_id, resident_id, attribution FROM health_readings")[0] == (
        "h1",
        None,
        "unattributed",
    )


# -- vital-sign alerts ----------------------------------------------------------------


async def test_hypertensive_crisis_raises_a_vital_sign_alert_that_names_the_reading(
    make_gateway, broker, tmp_path
) -> None:
    gateway, health, screen, topics = await start(make_gateway, tmp_path)
    # when 王秀英's cuff reads 186/95
    await take(broker, health, [(topics["h1-bp"], {"sys": 186, "dia": 95, "pul": 88})], 2)
    # then her household's screen shows a vital-sign alert naming the reading
    await settle(lambda: screen.received)
    [alert] = vital_alerts(gateway)
    assert (alert.kind, alert.severity, alert.resident) == ("vital_sign", "high", "r-wang")
    assert "hypertensive crisis" in alert.title and "王秀英" in alert.title and "186/95" in alert.title
    assert "systolic 186 mm[Hg] > 180 mm[Hg]" in alert.detail
    assert "not a diagnosis" in alert.detail
    assert {
        "parameter": "systolic",
        "value": 186,
        "unit": "mm[Hg]",
        "threshold": 180,
        "rule": "hypertensive_crisis",
        "note": "not a diagnosis",
    }.items() <= alert.data.items()
    assert alert.data["reading"]["value"] == {"systolic": 186, "diastolic": 95}


async def test_diastolic_above_120_alone_is_a_hypertensive_crisis(make_gateway, broker, tmp_path) -> None:
    gateway, health, screen, topics = await start(make_gateway, tmp_path)
    await take(broker, health, [(topics["h1-bp"], {"sys": 170, "dia": 121})], 1)
    await settle(lambda: screen.received)
    [alert] = vital_alerts(gateway)
    assert alert.data["parameter"] == "diastolic" and alert.data["rule"] == "hypertensive_crisis"


async def test_fever_on_a_shared_thermometer_alerts_the_household_without_naming_a_resident(
    make_gateway, broker, tmp_path
) -> None:
    # given a couple sharing the thermometer
    gateway, health, screen, topics = await start(make_gateway, tmp_path, residents=2)
    # when it reads 39.6 °C: someone in the home has a high fever, nobody knows who
    await take(broker, health, [(topics["h1-thermometer"], {"temp_c": 39.6})], 1)
    await settle(lambda: screen.received)
    [alert] = vital_alerts(gateway)
    assert alert.resident is None and "unattributed" in alert.title
    assert alert.data["reading"]["unattributed"] is True and alert.data["threshold"] == 39.1


@pytest.mark.parametrize(
    ("device", "payload", "rule", "parameter", "value"),
    [
        ("oximeter", {"spo2": 91}, "spo2_extreme_low", "spo2", 91),
        ("oximeter", {"pr": 40}, "heart_rate_extreme_low", "heart_rate", 40),
        ("oximeter", {"pr": 131}, "heart_rate_extreme_high", "heart_rate", 131),
        ("bp", {"sys": 90, "dia": 60}, "systolic_extreme_low", "systolic", 90),
        ("bp", {"sys": 220, "dia": 110}, "systolic_extreme_high", "systolic", 220),
        ("thermometer", {"temp_c": 35.0}, "temperature_extreme_low", "body_temperature", 35.0),
        ("thermometer", {"temp_c": 39.1}, "temperature_extreme_high", "body_temperature", 39.1),
    ],
)
async def test_each_news2_extreme_raises_a_high_vital_sign_alert(
    make_gateway, broker, tmp_path, device, payload, rule, parameter, value
) -> None:
    gateway, health, screen, topics = await start(make_gateway, tmp_path)
    await take(broker, health, [(topics[f"h1-{device}"], payload)], 1)
    await settle(lambda: screen.received)
    [alert] = vital_alerts(gateway)
    assert alert.severity == "high"
    assert (alert.data["rule"], alert.data["parameter"], alert.data["value"]) == (rule, parameter, value)
    assert "NEWS2" in alert.title and "not a diagnosis" in alert.detail


async def test_hypoglycaemia_is_high_at_70_and_critical_below_54(make_gateway, broker, tmp_path) -> None:
    # given 王秀英's glucose meter, which reports mmol/L (stored as mg/dL)
    gateway, health, screen, topics = await start(make_gateway, tmp_path)
    # when it reads 3.8 mmol/L (68.5 mg/dL)
    await take(broker, health, [(topics["h1-glucose"], {"glucose_mmol": 3.8})], 1)
    await settle(lambda: vital_alerts(gateway))
    [low] = vital_alerts(gateway)
    assert (low.severity, low.data["rule"], low.data["unit"]) == ("high", "hypoglycaemia", "mg/dL")
    assert low.data["value"] == pytest.approx(68.46, abs=0.01) and low.data["threshold"] == 70
    # then 2.9 mmol/L (52.2 mg/dL) is urgent: a critical alert of its own, not a repeat of the first
    await take(broker, health, [(topics["h1-glucose"], {"glucose_mmol": 2.9})], 1)
    await settle(lambda: len(vital_alerts(gateway)) == 2)
    urgent = next(a for a in vital_alerts(gateway) if a.id != low.id)
    assert (urgent.severity, urgent.data["rule"], urgent.data["threshold"]) == (
        "critical",
        "hypoglycaemia_urgent",
        54,
    )
    assert "严重低血糖" in urgent.title


async def test_normal_and_borderline_readings_raise_nothing(make_gateway, broker, tmp_path) -> None:
    gateway, health, screen, topics = await start(make_gateway, tmp_path)
    requested = gateway.bus.subscribe(AlertRequested)
    # readings just inside every threshold
    messages = [
        (topics["h1-bp"], {"sys": 180, "dia": 120, "pul": 41}),
        (topics["h1-bp"], {"sys": 91, "dia": 60, "pul": 130}),
        (topics["h1-oximeter"], {"spo2": 92, "pr": 72}),
        (topics["h1-thermometer"], {"temp_c": 35.1}),
        (topics["h1-thermometer"], {"temp_c": 39.0}),
        (topics["h1-glucose"], {"glucose_mmol": 4.0}),  # 72.1 mg/dL
        (topics["h1-scale"], {"weight_g": 58300}),
    ]
    await take(broker, health, messages, 10)
    assert health.rejected == 0
    assert len(requested) == 0 and health.alerts_requested == 0
    assert vital_alerts(gateway) == [] and screen.received == []


@pytest.mark.slow
async def test_a_residents_own_thresholds_apply_to_their_readings_only(
    make_gateway, broker, tmp_path
) -> None:
    # given 李建国, whose doctor set his SpO2 alert at 87 % (target 88–92 %)
    gateway, health, _, topics = await start(make_gateway, tmp_path, residents=2)
    await health.async_set_thresholds("r-li", by="doctor:zhang", spo2_low=87)
    with pytest.raises(ThresholdError, match="spo2_low: 50 is outside the safe range"):
        await health.async_set_thresholds("r-li", by="doctor:zhang", spo2_low=50)
    # when his oximeter reads 89
    await take(broker, health, [(topics["h1-oximeter"], {"spo2": 89})], 1)
    # then nothing is raised for him
    assert health.alerts_requested == 0
    # and the thresholds are still his after a restart
    await gateway.async_stop()
    again = await make_gateway(data_dir=tmp_path / "data", components=SERVICES)
    assert again.components["health"].thresholds("r-li").spo2_low == 87
    assert again.components["health"].thresholds("r-wang").spo2_low == 91


async def test_a_resident_who_moves_out_takes_their_thresholds_with_them(make_gateway, tmp_path) -> None:
    # given 李建国 with his own SpO2 threshold
    gateway, health, _, _ = await start(make_gateway, tmp_path, residents=2)
    await health.async_set_thresholds("r-li", by="doctor:zhang", spo2_low=87)
    # when he is removed from the household (the registry knows nothing of health's tables)
    assert await gateway.store.async_read(_threshold_rows) == [("r-li",)]
    await gateway.registry.async_remove_resident("r-li")
    # then health forgot them, on disk too, and 王秀英's defaults are untouched
    assert "r-li" not in health._thresholds
    for _ in range(100):
        if not await gateway.store.async_read(_threshold_rows):
            break
        await asyncio.sleep(0.02)
    assert await gateway.store.async_read(_threshold_rows) == []
    assert health.thresholds("r-wang").spo2_low == 91


def _threshold_rows(conn: Any) -> list[Any]:
    return conn.execute("SELECT resident_id FROM health_thresholds").fetchall()


# -- bad readings ---------------------------------------------------------------------


def _profile(folder: Path, profile_id: str, capability: dict[str, Any]) -> None:
    vendor, model = profile_id.split("/")
    (folder / f"{model}.json").write_text(
        json.dumps(
            {"id": profile_id, "vendor": vendor, "model": model, "name": model, "capabilities": [capability]}
        )
    )


async def test_impossible_and_wrongly_unitted_readings_are_refused_with_a_reason_and_no_alert(
    make_gateway, broker, tmp_path, caplog
) -> None:
    # given, besides the shipped profiles, two third-party profiles with the wrong units
    folder = tmp_path / "profiles"
    folder.mkdir()
    _profile(
        folder,
        "acme/glucose-mmol",
        {"key": "glucose", "kind": "glucose", "source": "glu", "unit": "mmol/L"},
    )
    _profile(
        folder,
        "acme/thermo-f",
        {"key": "temperature", "kind": "body_temperature", "source": "t", "unit": "[degF]"},
    )
    gateway, health, screen, topics = await start(make_gateway, tmp_path, profiles={"paths": [str(folder)]})
    extra = await add_home(gateway, "h2", devices={"glu": "acme/glucose-mmol", "thermo": "acme/thermo-f"})
    await gateway.registry.async_add_resident("r-zhao", "h2", "赵桂兰")
    requested = gateway.bus.subscribe(AlertRequested)
    # when a cuff reports systolic below diastolic (which would be a "low systolic" alert if believed),
    # and the third-party devices report in mmol/L and °F
    await take(
        broker,
        health,
        [
            (topics["h1-bp"], {"sys": 80, "dia": 120, "pul": 70}),
            (extra["h2-glu"], {"glu": 2.5}),
            (extra["h2-thermo"], {"t": 98.6}),
        ],
        3,
    )
    # then nothing is stored, nothing raised, and each refusal says why
    assert len(requested) == 0 and vital_alerts(gateway) == []
    assert await health.async_readings("r-wang") == [] and await health.async_readings("r-zhao") == []
    [impossible] = await health.async_rejections("h1")
    assert impossible.code == "implausible" and "systolic 80 is not above diastolic 120" in impossible.reason
    units = {r.kind: r for r in await health.async_rejections("h2")}
    assert units["glucose"].code == "wrong_unit" and "'mmol/L'" in units["glucose"].reason
    assert "fix the device's firmware profile" in units["glucose"].reason
    assert units["body_temperature"].code == "wrong_unit" and "'Cel'" in units["body_temperature"].reason
    # and the log names the device and the problem, never the value
    refusals = [r.getMessage() for r in caplog.records if r.name.startswith("linli.services.health")]
    assert any("h1-bp" in m and "implausible" in m for m in refusals)
    assert not any("120" in m or "98.6" in m for m in refusals)


async def test_not_a_number_and_future_dated_readings_are_refused_with_no_alert(
    make_gateway, broker, tmp_path
) -> None:
    # NaN is not JSON, so it cannot come over MQTT from a profile-driven device; what an
    # adapter might still hand over is a TelemetryReceived, which is what reaches the service.
    clock = Clock()
    gateway, health, _, _ = await start(make_gateway, tmp_path, clock=clock)
    requested = gateway.bus.subscribe(AlertRequested)
    context = Context(household="h1", origin="test")
    for values, ts in (
        ({"spo2": math.nan}, clock.now),
        ({"pulse": math.inf}, clock.now),
        ({"spo2": True}, clock.now),
        ({"spo2": 85}, clock.now + 3600),  # an alarming value, dated an hour ahead
    ):
        gateway.bus.fire(TelemetryReceived(device_id="h1-oximeter", values=values, ts=ts, context=context))
    assert health.rejected == 4 and health.accepted == 0
    assert len(requested) == 0
    rejections = await health.async_rejections("h1")
    assert [r.code for r in rejections] == ["not_a_number", "not_a_number", "not_a_number", "future"]
    assert rejections[0].value == "nan" and "is not a finite number" in rejections[0].reason
    assert "3600 s in the future" in rejections[3].reason


# -- trends ---------------------------------------------------------------------------


async def test_daily_and_weekly_trends_have_min_mean_max_and_count(
    make_gateway, broker, tmp_path, monkeypatch
) -> None:
    # given a test clock stamping what the gateway receives: Monday 2027-01-11, 08:00 in Beijing
    midnight = datetime(2027, 1, 11, 0, 0, tzinfo=BEIJING).timestamp()
    monday = midnight + 8 * 3600
    clock = Clock(monday)
    monkeypatch.setattr(mqtt_adapter, "time", SimpleNamespace(time=clock))
    gateway, health, _, topics = await start(make_gateway, tmp_path, clock=clock)
    day = 86400.0
    # when 王秀英 measures on Monday (twice), not on Tuesday, on Wednesday once at 07:30
    # (still Tuesday in UTC),
    # and weighs herself on Monday and the next Monday
    plan = [
        (0.0, "h1-bp", {"sys": 130, "dia": 80}),
        (0.5 * day, "h1-bp", {"sys": 150, "dia": 90}),
        (2 * day - 0.5 * 3600, "h1-bp", {"sys": 141, "dia": 85}),
        (0.0, "h1-scale", {"weight_g": 60000}),
        (7 * day, "h1-scale", {"weight_g": 59000}),
    ]
    for offset, device, payload in plan:
        clock.now = monday + offset
        await take(broker, health, [(topics[device], payload)], 1)
    clock.now = monday + 8 * day
    # then each local day has its count and min/mean/max, and the empty day shows as a gap
    days = await health.async_trends(
        "r-wang", "blood_pressure", "day", since=midnight, until=midnight + 3 * day
    )
    assert [(p.start.isoformat(), p.count) for p in days] == [
        ("2027-01-11", 2),
        ("2027-01-12", 0),
        ("2027-01-13", 1),
    ]
    assert days[0].values["systolic"].as_dict() == {"min": 130, "mean": 140.0, "max": 150}
    assert days[0].values["diastolic"].as_dict() == {"min": 80, "mean": 85.0, "max": 90}
    assert days[1].values == {} and days[2].values["systolic"].mean == 141
    # and weeks run Monday to Monday
    weeks = await health.async_trends("r-wang", "weight", "week")
    assert [(p.start.isoformat(), p.count) for p in weeks[-2:]] == [("2027-01-11", 1), ("2027-01-18", 1)]
    assert weeks[-2].values["weight"].as_dict() == {"min": 60.0, "mean": 60.0, "max": 60.0}
    assert len(weeks) == 12 and all(p.count == 0 for p in weeks[:-2])
    bp_week = await health.async_trends(
        "r-wang", "blood_pressure", "week", since=midnight, until=midnight + 7 * day
    )
    assert [(p.count, p.values["systolic"].as_dict()) for p in bp_week] == [
        (3, {"min": 130, "mean": 140.3, "max": 150})
    ]


# -- FHIR export ----------------------------------------------------------------------

ISO_WITH_ZONE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
EXPECTED_CODES = {
    "85354-9": ["mm[Hg]"],
    "8867-4": ["/min"],
    "59408-5": ["%"],
    "8310-5": ["Cel"],
    "29463-7": ["kg"],
    "2339-0": ["mg/dL"],
}


async def test_fhir_bundle_holds_an_observation_per_reading_with_patient_and_device(
    make_gateway, broker, tmp_path
) -> None:
    gateway, health, _, topics = await start(make_gateway, tmp_path)
    t0 = datetime.now(UTC).timestamp() - 1
    await take(
        broker,
        health,
        [
            (topics["h1-bp"], {"sys": 132, "dia": 84, "pul": 70}),
            (topics["h1-oximeter"], {"spo2": 97}),
            (topics["h1-thermometer"], {"temp_c": 36.7}),
            (topics["h1-scale"], {"weight_g": 61250}),
            (topics["h1-glucose"], {"glucose_mmol": 6.1}),
        ],
        6,
    )
    bundle = await health.async_fhir_bundle("r-wang", t0, t0 + 3600)
    json.loads(json.dumps(bundle))  # plain JSON
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
    assert ISO_WITH_ZONE.match(bundle["timestamp"])
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    assert len(by_url) == len(bundle["entry"])
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Patient") == 1 and kinds.count("Device") == 5 and kinds.count("Observation") == 6
    [patient] = [r for r in by_url.values() if r["resourceType"] == "Patient"]
    assert patient["name"] == [{"text": "王秀英"}] and patient["gender"] == "female"
    assert patient["identifier"][0]["value"] == "r-wang"
    observations = [r for r in by_url.values() if r["resourceType"] == "Observation"]
    codes = {}
    for obs in observations:
        assert obs["status"] == "final"
        assert {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
        }.items() <= obs["category"][0]["coding"][0].items()
        assert ISO_WITH_ZONE.match(obs["effectiveDateTime"]) and obs["effectiveDateTime"].endswith("+08:00")
        assert by_url[obs["subject"]["reference"]]["resourceType"] == "Patient"
        device = by_url[obs["device"]["reference"]]
        assert (
            device["resourceType"] == "Device"
            and device["patient"]["reference"] == obs["subject"]["reference"]
        )
        loinc = [c["code"] for c in obs["code"]["coding"] if c["system"] == "http://loinc.org"]
        codes[loinc[0]] = obs
        quantities = (
            [obs["valueQuantity"]]
            if "valueQuantity" in obs
            else [c["valueQuantity"] for c in obs["component"]]
        )
        for quantity in quantities:
            assert set(quantity) == {"value", "unit", "system", "code"}
            assert quantity["system"] == "http://unitsofmeasure.org"
            assert isinstance(quantity["value"], int | float)
        assert [q["code"] for q in quantities][:1] == EXPECTED_CODES[loinc[0]]
    assert set(codes) == set(EXPECTED_CODES)
    bp = codes["85354-9"]
    assert "valueQuantity" not in bp
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]["value"]) for c in bp["component"]] == [
        ("8480-6", 132),
        ("8462-4", 84),
    ]
    assert [c["code"] for c in codes["59408-5"]["code"]["coding"]] == ["59408-5", "2708-6"]
    assert codes["29463-7"]["valueQuantity"]["value"] == 61.25
    assert codes["8310-5"]["valueQuantity"]["value"] == 36.7


@pytest.mark.slow
async def test_fhir_bundle_validates_against_fhir_r4_models(make_gateway, broker, tmp_path) -> None:
    # fhir.resources ships R4B (4.3), which for Observation, Patient, Device and Bundle
    # is R4 (4.0.1) with no change to these elements.
    from fhir.resources.R4B import bundle as bundle_model  # in the test extra: never skipped

    gateway, health, _, topics = await start(make_gateway, tmp_path)
    t0 = datetime.now(UTC).timestamp() - 1
    await take(
        broker,
        health,
        [
            (topics["h1-bp"], {"sys": 190, "dia": 100, "pul": 90}),
            (topics["h1-oximeter"], {"spo2": 95, "pr": 80}),
            (topics["h1-glucose"], {"glucose_mmol": 5.0}),
            (topics["h1-thermometer"], {"temp_c": 37.2}),
            (topics["h1-scale"], {"weight_g": 60500}),
        ],
        7,
    )
    exported = await health.async_fhir_bundle("r-wang", t0, t0 + 3600)
    parsed = bundle_model.Bundle.model_validate(exported)
    assert len(parsed.entry) == 1 + 5 + 7
    assert {type(e.resource).__name__ for e in parsed.entry} == {"Patient", "Device", "Observation"}


# -- consent --------------------------------------------------------------------------


async def test_export_needs_the_households_consent_for_carers_and_stops_at_withdrawal(
    make_gateway, broker, tmp_path
) -> None:
    gateway, health, _, topics = await start(make_gateway, tmp_path)
    t0 = datetime.now(UTC).timestamp() - 1
    await take(broker, health, [(topics["h1-oximeter"], {"spo2": 96})], 1)
    # the household may always export its own data; a carer may not, yet
    assert (
        len((await health.async_fhir_bundle("r-wang", t0, t0 + 3600, requester_role="household"))["entry"])
        == 3
    )
    assert not health.may_share("h1", "carer")
    with pytest.raises(ConsentRefused, match="has not consented"):
        await health.async_fhir_bundle("r-wang", t0, t0 + 3600, requester_role="carer")
    with pytest.raises(ConsentRefused):
        await health.async_trends("r-wang", "spo2", requester_role="provider")
    # when the household consents, the carer can export
    await health.async_grant_consent("h1", by="r-wang", purposes=["carer"])
    assert health.may_share("h1", "carer") and not health.may_share("h1", "provider")
    bundle = await health.async_fhir_bundle("r-wang", t0, t0 + 3600, requester_role="carer")
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Patient", "Device", "Observation"]
    # and right after the household withdraws, the carer is refused again
    await health.async_withdraw_consent("h1", by="r-wang", purposes=["carer"], note="changed my mind")
    assert not health.may_share("h1", "carer")
    with pytest.raises(ConsentRefused, match="withdrew its consent"):
        await health.async_fhir_bundle("r-wang", t0, t0 + 3600, requester_role="carer")
    with pytest.raises(ConsentRefused):
        await health.async_readings("r-wang", requester_role="carer")
    # the record says who did what, and it survives a restart
    history = await health.async_consent_history("h1")
    assert [(r.purpose.value, r.granted, r.by) for r in history] == [
        ("carer", True, "r-wang"),
        ("carer", False, "r-wang"),
    ]
    assert health.consent("h1")["carer"]["note"] == "changed my mind"
    await gateway.async_stop()
    again = await make_gateway(data_dir=tmp_path / "data", components=SERVICES)
    assert not again.components["health"].may_share("h1", "carer")


async def test_withdrawal_takes_effect_before_it_is_written(make_gateway, broker, tmp_path) -> None:
    gateway, health, _, _ = await start(make_gateway, tmp_path)
    await health.async_grant_consent("h1", by="r-wang")
    assert all(health.may_share("h1", p) for p in ("carer", "provider", "export"))
    withdrawing = asyncio.create_task(health.async_withdraw_consent("h1", by="r-wang"))
    await asyncio.sleep(0)  # the withdrawal has started; its write has not returned
    assert not withdrawing.done()
    assert not any(health.may_share("h1", p) for p in ("carer", "provider", "export"))
    await withdrawing
