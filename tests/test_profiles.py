"""Firmware profiles: shipped data, validation errors, `linli profile check`, payload mapping."""

from __future__ import annotations

import copy
import json
import math
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from linli.firmware_profiles import PROFILE_DIR, SCHEMA_PATH
from linli.gateway.capabilities import kind_names
from linli.gateway.profiles import FirmwareFit, MappingError, ProfileError, load_profile, load_profiles
from linli.gateway.profiles.loader import MAX_PROFILE_BYTES, profile_files
from linli.gateway.profiles.values import compile_check

REPO = Path(__file__).resolve().parent.parent

DEMO_KINDS = {
    "contact",
    "motion",
    "smoke",
    "gas",
    "water_leak",
    "sos_button",
    "fall",
    "blood_pressure",
    "spo2",
    "weight",
    "body_temperature",
    "glucose",
    "temperature",
    "humidity",
    "switch",
}


def shipped(profile_id: str) -> dict[str, Any]:
    """A copy of a shipped profile's JSON, to break on purpose."""
    vendor, model = profile_id.split("/")
    return json.loads((PROFILE_DIR / vendor / f"{model}.json").read_text(encoding="utf-8"))


def write_profile(folder: Path, name: str, data: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def profile_errors(path: Path) -> list[str]:
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert caught.value.path == str(path)
    return caught.value.errors


def linli_profile_check(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "linli", "profile", "check", *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def profiles():
    return load_profiles()


# -- the shipped profiles --------------------------------------------------------------------


def test_every_shipped_profile_is_valid(profiles) -> None:
    assert profiles.errors == []
    assert len(profiles) >= 15


def test_schema_kind_list_is_the_capability_vocabulary() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$defs"]["capability"]["properties"]["kind"]["enum"] == kind_names()


def test_shipped_profiles_cover_every_kind_the_demo_uses(profiles) -> None:
    kinds = {cap.kind for profile in profiles.profiles.values() for cap in profile.capabilities}
    assert DEMO_KINDS <= kinds
    assert kinds & {"bed_occupancy", "presence"}


def test_shipped_profile_ids_are_vendor_slash_file_name(profiles) -> None:
    for profile in profiles.profiles.values():
        path = Path(profile.path)
        assert profile.id == f"{path.parent.name}/{path.stem}"


# -- broken profiles say what is wrong and where ----------------------------------------------


def test_unknown_kind_names_json_path_and_value(tmp_path: Path) -> None:
    # given a door sensor profile whose third capability has a typo in its kind
    data = shipped("aqara/mccgq11lm")
    data["capabilities"][2]["kind"] = "dor"
    path = write_profile(tmp_path, "door.json", data)
    # when it is loaded, the error points at the value
    errors = profile_errors(path)
    assert len(errors) == 1
    assert errors[0].startswith("$.capabilities[2].kind: 'dor' is not one of [")
    # and the exception text starts with the file, as a user sees it
    with pytest.raises(ProfileError, match=r"door\.json: \$\.capabilities\[2\]\.kind: 'dor'"):
        load_profile(path)


def test_binary_kind_without_value_on_is_refused_with_the_reason(tmp_path: Path) -> None:
    data = shipped("aqara/mccgq11lm")
    del data["capabilities"][0]["value_on"]
    del data["capabilities"][0]["value_off"]
    errors = profile_errors(write_profile(tmp_path, "door.json", data))
    assert len(errors) == 1
    assert errors[0].startswith("$.capabilities[0]: binary kind 'contact' needs explicit value_on and")


def test_value_on_without_value_off_is_refused(tmp_path: Path) -> None:
    data = shipped("aqara/mccgq11lm")
    del data["capabilities"][0]["value_off"]
    errors = profile_errors(write_profile(tmp_path, "door.json", data))
    assert any(e.startswith("$.capabilities[0]:") and "'value_off'" in e for e in errors)


def test_value_on_for_a_numeric_kind_is_refused(tmp_path: Path) -> None:
    data = shipped("aqara/mccgq11lm")
    data["capabilities"][1].update(value_on=100, value_off=0)
    errors = profile_errors(write_profile(tmp_path, "door.json", data))
    assert errors == ["$.capabilities[1].value_on: kind 'battery' is not binary; remove value_on/off"]


def test_duplicate_capability_key_is_refused(tmp_path: Path) -> None:
    data = shipped("aqara/mccgq11lm")
    data["capabilities"][2]["key"] = "battery"
    errors = profile_errors(write_profile(tmp_path, "door.json", data))
    assert errors == ["$.capabilities[2].key: duplicate capability key 'battery'"]


def test_composite_kind_needs_a_source_per_part(tmp_path: Path) -> None:
    data = shipped("yuwell/ye680a")
    data["capabilities"][0]["source"] = "bp"
    errors = profile_errors(write_profile(tmp_path, "bp.json", data))
    assert len(errors) == 1
    assert errors[0].startswith("$.capabilities[0].source: kind 'blood_pressure' is composite")


def test_firmware_range_upside_down_is_refused(tmp_path: Path) -> None:
    data = shipped("aqara/mccgq11lm")
    data["firmware"] = {"min": "3.10", "max": "3.9"}
    errors = profile_errors(write_profile(tmp_path, "door.json", data))
    assert errors == ["$.firmware: min '3.10' is above max '3.9'"]


def test_invalid_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"id": "acme/door",', encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert str(caught.value).startswith(f"{path}: $: not valid JSON")


def test_profile_file_over_256_kib_is_refused_unread(tmp_path: Path) -> None:
    # given an otherwise valid profile padded past the size limit
    data = shipped("aqara/mccgq11lm")
    data["description"] = "x" * MAX_PROFILE_BYTES
    path = write_profile(tmp_path, "huge.json", data)
    # then it is refused, saying how big it is and what the limit is
    errors = profile_errors(path)
    assert errors == [f"$: file is {path.stat().st_size} bytes, over {MAX_PROFILE_BYTES}"]


def test_profile_just_under_the_size_limit_loads(tmp_path: Path) -> None:
    data = shipped("aqara/mccgq11lm")
    data["description"] = ""
    room = MAX_PROFILE_BYTES - len(json.dumps(data, indent=2).encode())
    data["description"] = "x" * room
    path = write_profile(tmp_path, "big.json", data)
    assert path.stat().st_size == MAX_PROFILE_BYTES
    assert load_profile(path).id == "aqara/mccgq11lm"


def test_duplicate_profile_id_in_an_extra_folder_keeps_the_first(tmp_path: Path) -> None:
    # given two files in an extra folder that both claim the id acme/door
    first = shipped("aqara/mccgq11lm")
    first.update(id="acme/door", name="first door")
    second = copy.deepcopy(first)
    second["name"] = "second door"
    write_profile(tmp_path / "extra", "a.json", first)
    second_path = write_profile(tmp_path / "extra", "b.json", second)
    # when the profiles are loaded
    result = load_profiles([tmp_path / "extra"])
    # then the first one is used, the second reported, and the shipped ones are all still there
    assert result.get("acme/door").name == "first door"
    assert len(result.errors) == 1
    assert result.errors[0].startswith(f"{second_path}: $.id: 'acme/door' already defined in ")
    assert result.errors[0].endswith("a.json")
    assert len(result) == len(load_profiles()) + 1


def test_broken_profile_in_an_extra_folder_is_reported_not_fatal(tmp_path: Path) -> None:
    data = shipped("aqara/mccgq11lm")
    data.update(id="acme/door")
    data["capabilities"][2]["kind"] = "dor"
    path = write_profile(tmp_path, "door.json", data)
    result = load_profiles([tmp_path])
    assert result.get("acme/door") is None
    assert [e.split(": ")[:2] for e in result.errors] == [[str(path), "$.capabilities[2].kind"]]
    assert result.get("aqara/mccgq11lm") is not None


def test_value_on_equal_to_value_off_as_json_numbers_is_refused(tmp_path: Path) -> None:
    # given a presence capability whose "off" value is the same JSON number as its "on" value
    data = shipped("linli/fall-radar")
    data["capabilities"][1].update(value_on=1, value_off=1.0)
    path = write_profile(tmp_path, "radar.json", data)
    # then the profile is refused rather than mapping every reading to "absent"
    with pytest.raises(ProfileError, match=r"value_off: equals value_on"):
        load_profile(path)


# -- linli profile check -----------------------------------------------------------------------


@pytest.mark.slow
def test_profile_check_prints_each_error_with_its_path_and_exits_1(tmp_path: Path) -> None:
    # given a folder with one good profile and two broken ones
    good = write_profile(tmp_path, "good.json", shipped("aqara/mccgq11lm"))
    typo = shipped("aqara/mccgq11lm")
    typo["capabilities"][2]["kind"] = "dor"
    typo["capabilities"][0]["key"] = "Door"
    bad = write_profile(tmp_path, "typo.json", typo)
    not_json = tmp_path / "zz.json"
    not_json.write_text("{", encoding="utf-8")
    # when the folder is checked
    result = linli_profile_check(tmp_path)
    # then every error is printed with its file and JSON path, and the exit code is 1
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert f"{good}: ok" in lines
    assert any(line.startswith(f"{bad}: $.capabilities[0].key: 'Door' does not match") for line in lines)
    assert any(line.startswith(f"{bad}: $.capabilities[2].kind: 'dor' is not one of") for line in lines)
    assert any(line.startswith(f"{not_json}: $: not valid JSON") for line in lines)
    assert lines[-1] == "1 of 3 profiles valid"


@pytest.mark.slow
def test_profile_check_accepts_good_files_and_folders(tmp_path: Path) -> None:
    door = write_profile(tmp_path / "files", "door.json", shipped("aqara/mccgq11lm"))
    result = linli_profile_check(door, PROFILE_DIR / "yuwell")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{door}: ok"
    assert sum(line.endswith(": ok") for line in lines) == 5
    assert lines[-1] == "5 of 5 profiles valid"


@pytest.mark.slow
def test_profile_check_of_the_shipped_folder_skips_the_schema() -> None:
    result = linli_profile_check(PROFILE_DIR)
    assert result.returncode == 0, result.stdout
    assert "schema.json" not in result.stdout
    shipped = len(profile_files([PROFILE_DIR]))
    assert shipped >= 15
    assert result.stdout.splitlines()[-1] == f"{shipped} of {shipped} profiles valid"


@pytest.mark.slow
def test_profile_check_of_an_empty_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = linli_profile_check(tmp_path)
    assert result.returncode == 2
    assert "no profile files found" in result.stderr


# -- payload mapping -----------------------------------------------------------------------------


def test_door_contact_false_means_door_open(profiles) -> None:
    door = profiles.get("aqara/mccgq11lm")
    assert door.map_payload({"contact": False}) == {"door": True}
    assert door.map_payload({"contact": True, "battery": 91, "linkquality": 120}) == {
        "door": False,
        "battery": 91,
        "linkquality": 120,
    }


def test_null_field_is_not_reported_and_the_rest_of_the_payload_counts(profiles) -> None:
    # Zigbee2MQTT publishes "battery": null until the first battery report.
    door = profiles.get("aqara/mccgq11lm")
    assert door.map_payload({"contact": False, "battery": None}) == {"door": True}


@pytest.mark.parametrize("raw", ["x", 0, 1, [False]])
def test_door_contact_that_is_not_a_boolean_is_refused(profiles, raw: Any) -> None:
    with pytest.raises(MappingError, match=r"door: .* is neither value_on False nor value_off True"):
        profiles.get("aqara/mccgq11lm").map_payload({"contact": raw})


def test_value_outside_schema_range_is_refused(profiles) -> None:
    with pytest.raises(MappingError, match="linkquality: 256 does not match its schema"):
        profiles.get("aqara/mccgq11lm").map_payload({"contact": True, "linkquality": 256})


def test_glucose_in_mmol_per_litre_is_stored_in_mg_per_decilitre(profiles) -> None:
    meter = profiles.get("yuwell/580")
    values = meter.map_payload({"glucose_mmol": 5.5})
    assert values["glucose"] == pytest.approx(99.088)
    assert meter.capability("glucose").unit == "mg/dL"
    with pytest.raises(MappingError, match="not a number"):
        meter.map_payload({"glucose_mmol": "5.5"})
    with pytest.raises(MappingError, match="does not match its schema"):
        meter.map_payload({"glucose_mmol": 50})  # 900 mg/dL is not a reading


def test_blood_pressure_parts_become_one_composite_value(profiles) -> None:
    cuff = profiles.get("yuwell/ye680a")
    assert cuff.map_payload({"sys": 128, "dia": 84, "pul": 71, "battery": 80}) == {
        "blood_pressure": {"systolic": 128, "diastolic": 84, "pulse": 71},
        "battery": 80,
    }
    assert cuff.map_payload({"sys": 128, "dia": 84}) == {"blood_pressure": {"systolic": 128, "diastolic": 84}}
    with pytest.raises(MappingError, match="blood_pressure"):
        cuff.map_payload({"sys": 128})  # diastolic is required
    with pytest.raises(MappingError, match="blood_pressure"):
        cuff.map_payload({"sys": 400, "dia": 84})


def test_string_and_numeric_binary_values_map_to_canonical_booleans(profiles) -> None:
    radar = profiles.get("linli/fall-radar")
    assert radar.map_payload({"fall": "detected", "presence": 1}) == {"fall": True, "presence": True}
    assert radar.map_payload({"fall": "none", "presence": 0}) == {"fall": False, "presence": False}
    with pytest.raises(MappingError):
        radar.map_payload({"presence": True})  # JSON true is not the number 1
    plug = profiles.get("tuya/ts011f")
    assert plug.map_payload({"state": "ON"}) == {"relay": True}
    assert plug.capability("relay").to_device(False) == "OFF"


def test_scale_maps_back_for_commands(profiles) -> None:
    meter = profiles.get("yuwell/580")  # mmol/L on the device, mg/dL in Linli
    assert meter.capability("glucose").to_device(99.088) == pytest.approx(5.5)


def test_real_scale_payloads_in_kilograms_are_read(profiles) -> None:
    # given a body scale's reading as Theengs / OpenMQTTGateway decode a Mi body composition scale
    theengs = {
        "brand": "Xiaomi",
        "model": "Mi Body Composition Scale",
        "model_id": "XMTZC02HM/XMTZC05HM",
        "type": "SCALE",
        "weighing_mode": "person",
        "unit": "kg",
        "weight": 61.2,
        "impedance": 503,
    }
    # then the shipped scale profiles read the weight in kilograms and the impedance
    for profile_id in ("linli/scale", "xiaomi/xmtzc05hm"):
        values = profiles.get(profile_id).map_payload(theengs)
        assert values["weight"] == pytest.approx(61.2) and values["impedance"] == 503
    # and the grams field the Linli scale profile read before still counts
    assert profiles.get("linli/scale").map_payload({"weight_g": 72500}) == {
        "weight_grams": pytest.approx(72.5)
    }
    # and the Theengs model id finds the profile
    assert profiles.match("mqtt", {"model": "XMTZC02HM/XMTZC05HM", "manufacturer": "Xiaomi"}).id == (
        "xiaomi/xmtzc05hm"
    )


# -- a library of profiles for the devices common in Chinese homes ------------------------------

#: Field names as current Zigbee2MQTT publishes them (zigbee-herdsman-converters' exposes).
CURRENT_Z2M_FIELDS = {
    "contact",
    "occupancy",
    "presence",
    "water_leak",
    "smoke",
    "gas",
    "carbon_monoxide",
    "tamper",
    "battery",
    "voltage",
    "linkquality",
    "action",
    "power",
    "energy",
    "current",
    "state",
    "brightness",
    "color_temp",
    "illuminance",
    "temperature",
    "humidity",
}


def test_at_least_sixty_shipped_profiles_all_named_in_chinese(profiles) -> None:
    assert profiles.errors == []
    assert len(profiles) >= 60
    for profile in profiles.profiles.values():
        assert profile.names.get("zh-CN"), f"{profile.id} has no zh-CN name"
        assert any("\u4e00" <= ch <= "\u9fff" for ch in profile.names["zh-CN"]), profile.id
        assert profile.names.get("en"), f"{profile.id} has no en name"
        for cap in profile.capabilities:
            assert cap.names.get("zh-CN") and cap.names.get("en"), f"{profile.id} {cap.key} is not named"


def test_the_makers_and_kinds_common_in_chinese_homes_are_covered(profiles) -> None:
    vendors = {p.vendor.casefold() for p in profiles.profiles.values()}
    assert {"aqara", "xiaomi", "tuya", "sonoff", "heiman", "yuwell"} <= vendors
    kinds = {cap.kind for profile in profiles.profiles.values() for cap in profile.capabilities}
    assert {"smoke", "gas", "water_leak", "contact", "motion", "sos_button", "switch", "light"} <= kinds
    assert {"temperature", "humidity", "blood_pressure", "weight", "power_usage", "energy"} <= kinds


def test_profiles_read_the_field_names_current_zigbee2mqtt_publishes(profiles) -> None:
    read = set()
    for profile in profiles.profiles.values():
        if "zigbee2mqtt/+" != profile.match.get("mqtt", {}).get("topic"):
            continue
        for cap in profile.capabilities:
            if isinstance(cap.source, str):
                read |= {cap.source, *cap.aliases}
    assert CURRENT_Z2M_FIELDS <= read, CURRENT_Z2M_FIELDS - read
    assert "illuminance_lux" in read  # the older name, kept as an alias


def test_motion_illuminance_is_read_under_its_current_and_its_older_name(profiles) -> None:
    motion = profiles.get("aqara/rtcgq11lm")
    # current Zigbee2MQTT
    assert motion.map_payload({"occupancy": True, "illuminance": 120}) == {"motion": True, "illuminance": 120}
    # releases before the rename
    assert motion.map_payload({"occupancy": False, "illuminance_lux": 80}) == {
        "motion": False,
        "illuminance": 80,
    }
    # both sent (a transition release): the current name wins
    assert motion.map_payload({"illuminance": 7, "illuminance_lux": 9})["illuminance"] == 7


def test_an_emergency_button_calls_for_help_on_every_kind_of_press(profiles) -> None:
    button = profiles.get("heiman/hs1eb")
    for press in ("single", "double", "hold"):
        assert button.map_payload({"action": press}) == {"sos": True}
    assert button.map_payload({"action": "off"}) == {"sos": False}
    tuya = profiles.get("tuya/ts0215a_sos")
    assert tuya.map_payload({"action": "emergency", "battery": 100}) == {"sos": True, "battery": 100}


def test_smoke_detector_common_in_chinese_homes_has_a_profile(profiles) -> None:
    # given the Mijia Honeywell smoke detector as Zigbee2MQTT announces and reports it
    facts = {"model": "JTYJ-GD-01LM/BW", "manufacturer": "Xiaomi"}
    detector = profiles.match("mqtt", facts, "3000-0001")
    # then it has a profile, and smoke raises the smoke capability
    assert detector is not None and detector.id == "xiaomi/jtyj-gd-01lm_bw"
    assert detector.map_payload({"smoke": True, "battery": 95, "voltage": 3080}) == {
        "smoke": True,
        "battery": 95,
        "voltage": 3080,
    }


def test_makers_are_matched_as_announced_whatever_the_case_or_the_brand(profiles) -> None:
    # Zigbee2MQTT 1.x said "HEIMAN", later "Heiman"; Aqara devices were "Xiaomi" before
    assert profiles.match("mqtt", {"model": "HS1SA", "manufacturer": "Heiman"}).id == "heiman/hs1sa"
    assert profiles.match("mqtt", {"model": "HS1SA", "manufacturer": "HEIMAN"}).id == "heiman/hs1sa"
    assert profiles.match("mqtt", {"model": "RTCGQ11LM", "manufacturer": "Xiaomi"}).id == "aqara/rtcgq11lm"
    # another maker's device with the same model string is not this profile
    assert profiles.match("mqtt", {"model": "HS1SA", "manufacturer": "Acme"}) is None


def test_firmware_outside_the_range_still_matches_ranked_below_one_written_for_it(tmp_path: Path) -> None:
    # given the shipped door sensor profile (firmware 1.0-3.99) and, in an extra folder, one for
    # the build ids Zigbee2MQTT reports (3000-0001 onwards)
    newer = shipped("aqara/mccgq11lm")
    newer["id"] = "acme/mccgq11lm-3000"
    newer["firmware"] = {"min": "3000", "max": "3999"}
    write_profile(tmp_path / "acme", "mccgq11lm-3000.json", newer)
    loaded = load_profiles([tmp_path])
    assert loaded.errors == []
    facts = {"model": "MCCGQ11LM", "manufacturer": "Aqara"}
    # then a device on 3000-0001 gets the profile written for it first, the other one still listed
    ranked = loaded.candidates("mqtt", facts, "3000-0001")
    assert [(c.profile.id, c.fit) for c in ranked] == [
        ("acme/mccgq11lm-3000", FirmwareFit.IN_RANGE),
        ("aqara/mccgq11lm", FirmwareFit.OUTSIDE),
    ]
    # and a device on 1.2 the other way round
    assert loaded.match("mqtt", facts, "1.2").id == "aqara/mccgq11lm"
    # and with the shipped profiles alone, a firmware outside every range still matches
    alone = load_profiles()
    for firmware in ("3000-0001", "20200505", "0.0.1", "build-abc", None):
        assert alone.match("mqtt", facts, firmware).id == "aqara/mccgq11lm", firmware


def test_values_on_containing_value_off_and_aliases_on_a_composite_are_refused(tmp_path: Path) -> None:
    button = shipped("heiman/hs1eb")
    button["capabilities"][0]["values_on"] = ["double", "off"]
    errors = profile_errors(write_profile(tmp_path, "b.json", button))
    assert errors == ["$.capabilities[0].values_on: contains value_off 'off'"]
    cuff = shipped("yuwell/ye680a")
    cuff["capabilities"][0]["aliases"] = ["bp"]
    errors = profile_errors(write_profile(tmp_path, "c.json", cuff))
    assert errors == ["$.capabilities[0].aliases: a composite source names each part's field; remove aliases"]


def test_payload_without_any_profile_field_is_refused(profiles) -> None:
    with pytest.raises(MappingError, match="no field of profile aqara/mccgq11lm"):
        profiles.get("aqara/mccgq11lm").map_payload({"temperature": 21.5, "state": "ON"})


def test_firmware_range_is_inclusive_and_unorderable_firmware_is_unknown(profiles) -> None:
    door = profiles.get("aqara/mccgq11lm")  # 1.0 … 3.99
    assert door.firmware_fit("1.0") is FirmwareFit.IN_RANGE
    assert door.firmware_fit("3.99") is FirmwareFit.IN_RANGE
    assert door.firmware_fit("v2.5.1") is FirmwareFit.IN_RANGE
    assert door.firmware_fit("0.9") is FirmwareFit.OUTSIDE
    assert door.firmware_fit("3.100") is FirmwareFit.OUTSIDE
    # as Zigbee2MQTT reports them: an Aqara build id, a Tuya date build
    assert door.firmware_fit("3000-0001") is FirmwareFit.OUTSIDE
    assert door.firmware_fit("20200505") is FirmwareFit.OUTSIDE
    assert door.firmware_fit("build-abc") is FirmwareFit.UNKNOWN
    assert door.firmware_fit(None) is FirmwareFit.UNKNOWN
    assert profiles.get("aqara/sjcgq11lm").firmware_fit("3000-0001") is FirmwareFit.ANY  # no range


# -- compiled value checks agree with jsonschema -------------------------------------------------

SCHEMAS: list[dict[str, Any]] = [
    {"type": "number", "minimum": 0, "maximum": 100},
    {"type": "integer", "minimum": 0, "maximum": 255},
    {"type": "boolean"},
    {"type": "number", "exclusiveMinimum": 0},
    {"type": "number", "exclusiveMinimum": -1.5, "exclusiveMaximum": 2**53},
    {"enum": [1, "a", True]},
    {"type": ["string", "null"]},
    {"type": "number"},
    {"type": "integer"},
    {"minimum": 0},
    {"type": ["integer", "boolean"], "maximum": 10},
    {"type": "integer", "enum": [0, 1, 2.0]},
    {
        "type": "object",
        "required": ["systolic", "diastolic"],
        "properties": {
            "systolic": {"type": "number", "minimum": 40, "maximum": 300},
            "diastolic": {"type": "number", "minimum": 20, "maximum": 200},
            "pulse": {"type": "integer"},
        },
    },
    {"type": "array", "items": {"type": "number"}, "maxItems": 3},
]

EDGE_VALUES: list[Any] = [
    0,
    1,
    1.0,
    True,
    False,
    0.0,
    -0.0,
    -1,
    -1.5,
    -1.4999999,
    100,
    100.0,
    100.0000001,
    255,
    255.0,
    255.5,
    256,
    2.0,
    2**53,
    2**53 + 1,
    2**63,
    10**30,
    -(10**30),
    1e300,
    -1e300,
    5e-324,
    "",
    "a",
    "1",
    "true",
    None,
    [],
    [1],
    [1, 2.5, True],
    {},
    {"systolic": 120, "diastolic": 80},
    {"systolic": 120, "diastolic": 80, "pulse": 70.0},
    {"systolic": 120, "diastolic": 80, "pulse": 70.5},
    {"systolic": True, "diastolic": 80},
    {"systolic": 120},
]

NON_FINITE: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    [1, math.nan],
    {"systolic": math.inf, "diastolic": 80},
    [[math.inf]],
]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(10 if depth < 2 else 7)
    if pick == 0:
        return rng.randint(-300, 300)
    if pick == 1:
        return rng.choice([rng.randint(-(2**70), 2**70), rng.randint(-3, 3) * 2**52])
    if pick == 2:
        return rng.choice([rng.uniform(-300, 300), float(rng.randint(-300, 300)), rng.random() * 1e-6])
    if pick == 3:
        return rng.choice([True, False])
    if pick == 4:
        return rng.choice(["", "a", "b", "1", "null", "x" * rng.randint(0, 5)])
    if pick == 5:
        return None
    if pick == 6:
        return rng.choice([0, 1, 1.0, True, False, 2, 2.0, -0.0, 255, 256, 100, 100.5])
    if pick == 7:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["systolic", "diastolic", "pulse", "other"]
    return {k: random_json(rng, depth + 1) for k in rng.sample(keys, rng.randint(0, 4))}


def test_compiled_checks_agree_with_jsonschema_on_json_values() -> None:
    # given the usual value schemas of profiles and many JSON values, edge cases included
    rng = random.Random(20240517)
    values = EDGE_VALUES + [random_json(rng) for _ in range(3000)]
    disagreements = []
    for schema in SCHEMAS:
        fast = compile_check(schema)
        reference = Draft202012Validator(schema)
        # when both judge each value
        for value in values:
            if fast(value) is not reference.is_valid(value):
                disagreements.append((schema, value, fast(value)))
    # then they agree on every one
    assert disagreements == []


def test_compiled_checks_accept_and_refuse_both_ways() -> None:
    # the agreement above is only meaningful if each schema sees both outcomes
    rng = random.Random(7)
    values = EDGE_VALUES + [random_json(rng) for _ in range(3000)]
    for schema in SCHEMAS:
        fast = compile_check(schema)
        outcomes = {fast(value) for value in values}
        assert outcomes == {True, False}, schema


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: json.dumps(s)[:40])
def test_compiled_checks_refuse_non_finite_numbers_which_are_not_json(schema: dict[str, Any]) -> None:
    fast = compile_check(schema)
    assert [value for value in NON_FINITE if fast(value)] == []


@pytest.mark.slow
def test_profile_check_of_a_copy_of_the_folder_or_its_files_skips_the_schema(tmp_path: Path) -> None:
    # given a copy of the shipped folder (as in a source checkout next to an installed package)
    copy = tmp_path / "profiles"
    shutil.copytree(PROFILE_DIR, copy)
    shipped = len(profile_files([PROFILE_DIR]))
    result = linli_profile_check(copy)
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1] == f"{shipped} of {shipped} profiles valid"
    # and the schema named by a shell glob is said to be a schema, not counted as a broken profile
    result = linli_profile_check(*sorted(copy.glob("*.json")))
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines() == [
        f"{copy / 'schema.json'}: skipped (a JSON Schema, not a profile)",
        "0 of 0 profiles valid",
    ]


@pytest.mark.slow
def test_two_profiles_with_one_id_are_refused(tmp_path: Path) -> None:
    first = write_profile(tmp_path, "a.json", shipped("aqara/mccgq11lm"))
    second = write_profile(tmp_path, "b.json", shipped("aqara/mccgq11lm"))
    result = linli_profile_check(tmp_path)
    assert result.returncode == 1
    assert f"{second}: $.id: 'aqara/mccgq11lm' is also the id of {first}: ids must be unique" in result.stdout
