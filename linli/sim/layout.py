"""The demo community's shape: buildings, units, households, and 15 devices per home."""

from __future__ import annotations

from typing import Any, Final

from linli.gateway.mqtt.topics import device_topic

# Rooms and device names in both languages: the registry keeps every form and a page shows
# the reader's (Chinese first; a name given as a plain string stays one form for everyone).
ROOMS: Final = {
    "hall": {"zh-CN": "玄关", "en": "Hallway"},
    "living room": {"zh-CN": "客厅", "en": "Living room"},
    "bedroom": {"zh-CN": "卧室", "en": "Bedroom"},
    "kitchen": {"zh-CN": "厨房", "en": "Kitchen"},
    "bathroom": {"zh-CN": "卫生间", "en": "Bathroom"},
}


def _both(zh: str, en: str) -> dict[str, str]:
    return {"zh-CN": zh, "en": en}


# (device suffix, profile, room, name) — 15 devices, as in a well-equipped elder's home.
HOME_DEVICES: Final = [
    ("front-door", "aqara/mccgq11lm", "hall", _both("前门", "Front door")),
    ("motion-living", "aqara/rtcgq11lm", "living room", _both("客厅人体感应", "Living room motion")),
    ("motion-bedroom", "aqara/rtcgq11lm", "bedroom", _both("卧室人体感应", "Bedroom motion")),
    ("smoke-kitchen", "heiman/hs1sa", "kitchen", _both("厨房烟雾报警器", "Kitchen smoke alarm")),
    ("gas-kitchen", "heiman/hs1cg", "kitchen", _both("厨房燃气探测器", "Kitchen gas detector")),
    ("leak-bathroom", "aqara/sjcgq11lm", "bathroom", _both("卫生间水浸传感器", "Bathroom leak sensor")),
    ("sos-pendant", "linli/sos-pendant", None, _both("紧急呼叫挂件", "SOS pendant")),
    ("fall-bathroom", "linli/fall-radar", "bathroom", _both("卫生间跌倒雷达", "Bathroom fall radar")),
    ("bed", "linli/bed-sensor", "bedroom", _both("床垫传感器", "Bed sensor")),
    ("bp-monitor", "yuwell/ye680a", "bedroom", _both("血压计", "Blood pressure monitor")),
    ("oximeter", "yuwell/yx306", "bedroom", _both("血氧仪", "Pulse oximeter")),
    ("scale", "linli/scale", "bathroom", _both("体重秤", "Scale")),
    ("thermometer", "yuwell/yht100", "bedroom", _both("体温计", "Thermometer")),  # glucose meter in odd homes
    ("climate-living", "aqara/wsdcgq11lm", "living room", _both("客厅温湿度计", "Living room climate")),
    ("plug-kettle", "tuya/ts011f", "kitchen", _both("烧水壶插座", "Kettle plug")),
]
GLUCOSE_METER: Final = _both("血糖仪", "Glucose meter")
ZIGBEE_PROFILES: Final = {
    "aqara/mccgq11lm",
    "aqara/rtcgq11lm",
    "heiman/hs1sa",
    "heiman/hs1cg",
    "aqara/sjcgq11lm",
    "aqara/wsdcgq11lm",
    "tuya/ts011f",
}
HOMES_PER_BUILDING: Final = 48
HOMES_PER_FLOOR: Final = 4
SURNAMES: Final = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)


def household_id(index: int) -> str:
    return f"h{index:04d}"


def tv_operator(index: int) -> str:
    """Whose TV box a home has: the carrier's IPTV box in odd homes, the cable box in even ones."""
    return "carrier" if index % 2 else "broadcast"


def layout(households: int) -> dict[str, list[dict[str, Any]]]:
    """Registry import data for `households` homes (ids are stable across runs)."""
    buildings: dict[str, dict[str, str]] = {}
    units, homes, devices = [], [], []
    for i in range(1, households + 1):
        b = (i - 1) // HOMES_PER_BUILDING + 1
        within = (i - 1) % HOMES_PER_BUILDING
        floor, door = within // HOMES_PER_FLOOR + 1, within % HOMES_PER_FLOOR + 1
        bid, uid, hid = f"b{b:02d}", f"b{b:02d}-{floor:02d}{door:02d}", household_id(i)
        buildings[bid] = {"id": bid, "name": f"{b}号楼"}
        units.append({"id": uid, "building_id": bid, "name": f"{floor}{door:02d}室"})
        homes.append(
            {"id": hid, "unit_id": uid, "name": f"{SURNAMES[i % len(SURNAMES)]}家 ({b}-{floor}{door:02d})"}
        )
        # Every fourth home has a stock Zigbee2MQTT bridge with its own base topic.
        z2m_base = f"zigbee2mqtt/{hid}" if i % 4 == 0 else None
        for suffix, profile, room, name in HOME_DEVICES:
            if suffix == "thermometer" and i % 2:
                suffix, profile, name = "glucose", "yuwell/580", GLUCOSE_METER
            did = f"{hid}-{suffix}"
            topic = (
                f"{z2m_base}/{suffix}" if z2m_base and profile in ZIGBEE_PROFILES else device_topic(hid, did)
            )
            devices.append(
                {
                    "id": did,
                    "household_id": hid,
                    "name": name,
                    "room": ROOMS[room] if room else None,
                    "profile_id": profile,
                    "topic": topic,
                    "firmware": "1.2.0",
                    "unique_id": f"sim-{did}",
                }
            )
    return {"buildings": list(buildings.values()), "units": units, "households": homes, "devices": devices}


# Given names of the generation now in their seventies and eighties.
GIVEN_NAMES: Final = {
    "female": ("秀英", "桂兰", "玉兰", "淑珍", "凤英", "秀兰", "桂英", "淑华", "玉珍", "素芬"),
    "male": ("建国", "国华", "志强", "德明", "文华", "振华", "永福", "国庆", "树林", "长青"),
}
# The devices one person wears or uses. In a couple's home the scale and the
# thermometer stay shared, so some readings are the household's, unattributed.
PERSONAL_DEVICES: Final = ("sos-pendant", "bp-monitor", "oximeter", "scale")


def residents(households: int) -> list[dict[str, Any]]:
    """One resident per home, two in every third (a couple); each with the devices that are theirs.

    Each dict: `id`, `household_id`, `name`, `data` (gender, birth year) and `devices`.
    """
    people: list[dict[str, Any]] = []
    for i in range(1, households + 1):
        hid = household_id(i)
        meter = "glucose" if i % 2 else "thermometer"  # as in layout()
        gender = "female" if i % 2 else "male"
        first = {
            "id": f"{hid}-r1",
            "household_id": hid,
            "name": SURNAMES[i % len(SURNAMES)] + GIVEN_NAMES[gender][i % 10],
            "data": {"gender": gender, "birth_year": 1938 + (i * 7) % 18},
            "devices": [f"{hid}-{suffix}" for suffix in (*PERSONAL_DEVICES, meter)],
        }
        people.append(first)
        if i % 3 == 0:
            other = "male" if gender == "female" else "female"
            mine = (
                ("sos-pendant", "bp-monitor", "glucose")
                if meter == "glucose"
                else ("sos-pendant", "bp-monitor")
            )
            first["devices"] = [f"{hid}-{suffix}" for suffix in mine]
            people.append(
                {
                    "id": f"{hid}-r2",
                    "household_id": hid,
                    "name": SURNAMES[(i * 7 + 3) % len(SURNAMES)] + GIVEN_NAMES[other][(i * 3) % 10],
                    "data": {"gender": other, "birth_year": 1938 + (i * 5) % 18},
                    "devices": [f"{hid}-oximeter"],
                }
            )
    return people
