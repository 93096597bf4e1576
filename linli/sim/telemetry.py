"""Payloads the simulated devices publish, in each real device family's own shape.

Zigbee devices publish as Zigbee2MQTT does (`contact: true` means CLOSED),
the health devices as their hubs forward them. Values follow the clock of a
day: motion and doors in the morning and evening, vitals in the morning and
evening, the bed occupied at night.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Payload = dict[str, Any]


@dataclass(slots=True)
class DeviceSim:
    """One simulated device's own state between reports."""

    profile_id: str
    rng: random.Random
    state: dict[str, Any] = field(default_factory=dict)
    battery: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.battery = self.rng.uniform(60, 100)

    def drain(self) -> int:
        self.battery = max(5.0, self.battery - self.rng.uniform(0, 0.02))
        return round(self.battery)


def _active_hour(hour: float) -> float:
    """How lively a home is at this hour (0..1): mornings and evenings."""
    if 6.5 <= hour < 9 or 17.5 <= hour < 22:
        return 1.0
    if 9 <= hour < 17.5:
        return 0.5
    return 0.1


def _door(sim: DeviceSim, hour: float) -> Payload:
    opened = sim.rng.random() < 0.3 * _active_hour(hour)
    return {"contact": not opened, "battery": sim.drain(), "linkquality": sim.rng.randint(60, 200)}


def _motion(sim: DeviceSim, hour: float) -> Payload:
    seen = sim.rng.random() < 0.8 * _active_hour(hour)
    return {
        "occupancy": seen,
        "illuminance_lux": round(
            sim.rng.uniform(5, 40) if hour < 7 or hour > 19 else sim.rng.uniform(100, 800)
        ),
        "battery": sim.drain(),
        "linkquality": sim.rng.randint(60, 200),
    }


def _smoke(sim: DeviceSim, hour: float) -> Payload:
    return {"smoke": sim.rng.random() < 0.0005, "tamper": False, "battery": sim.drain()}


def _gas(sim: DeviceSim, hour: float) -> Payload:
    return {"gas": sim.rng.random() < 0.0005, "tamper": False}


def _leak(sim: DeviceSim, hour: float) -> Payload:
    return {"water_leak": sim.rng.random() < 0.001, "battery": sim.drain()}


def _sos(sim: DeviceSim, hour: float) -> Payload:
    # The pendant's heartbeat is "idle"; a press is rare and comes from `press()`.
    return {"sos": "idle", "battery": sim.drain()}


def _fall(sim: DeviceSim, hour: float) -> Payload:
    return {"fall": "none", "presence": 1 if sim.rng.random() < 0.7 else 0}


def _bed(sim: DeviceSim, hour: float) -> Payload:
    night = hour >= 22 or hour < 6.5
    return {"in_bed": night or sim.rng.random() < 0.05, "battery": sim.drain()}


def _blood_pressure(sim: DeviceSim, hour: float) -> Payload:
    base = sim.state.setdefault("base", (sim.rng.gauss(132, 12), sim.rng.gauss(82, 8)))
    return {
        "sys": round(base[0] + sim.rng.gauss(0, 6)),
        "dia": round(base[1] + sim.rng.gauss(0, 4)),
        "pul": round(sim.rng.gauss(74, 8)),
        "battery": sim.drain(),
    }


def _oximeter(sim: DeviceSim, hour: float) -> Payload:
    return {"spo2": min(100, round(sim.rng.gauss(97, 1.2))), "pr": round(sim.rng.gauss(74, 8))}


def _scale(sim: DeviceSim, hour: float) -> Payload:
    base = sim.state.setdefault("kg", sim.rng.uniform(48, 85))
    return {"weight_g": round((base + sim.rng.gauss(0, 0.3)) * 1000), "battery": sim.drain()}


def _thermometer(sim: DeviceSim, hour: float) -> Payload:
    return {"temp_c": round(sim.rng.gauss(36.6, 0.25), 1)}


def _glucose(sim: DeviceSim, hour: float) -> Payload:
    return {"glucose_mmol": round(sim.rng.gauss(6.2, 1.0), 1)}


def _climate(sim: DeviceSim, hour: float) -> Payload:
    t = sim.state.get("t", sim.rng.uniform(18, 26)) + sim.rng.gauss(0, 0.1)
    sim.state["t"] = t
    return {
        "temperature": round(t, 2),
        "humidity": round(min(95, max(20, sim.rng.gauss(55, 5))), 1),
        "battery": sim.drain(),
        "linkquality": sim.rng.randint(60, 200),
    }


def _plug(sim: DeviceSim, hour: float) -> Payload:
    on = sim.state.get("on", True)
    if sim.rng.random() < 0.05:
        on = not on
    sim.state["on"] = on
    energy = sim.state.get("energy", sim.rng.uniform(0, 50)) + (0.002 if on else 0)
    sim.state["energy"] = energy
    return {
        "state": "ON" if on else "OFF",
        "power": round(sim.rng.uniform(40, 120), 1) if on else 0.0,
        "energy": round(energy, 3),
    }


GENERATORS: dict[str, Callable[[DeviceSim, float], Payload]] = {
    "aqara/mccgq11lm": _door,
    "aqara/rtcgq11lm": _motion,
    "heiman/hs1sa": _smoke,
    "heiman/hs1cg": _gas,
    "aqara/sjcgq11lm": _leak,
    "linli/sos-pendant": _sos,
    "linli/fall-radar": _fall,
    "linli/bed-sensor": _bed,
    "yuwell/ye680a": _blood_pressure,
    "yuwell/yx306": _oximeter,
    "linli/scale": _scale,
    "yuwell/yht100": _thermometer,
    "yuwell/580": _glucose,
    "aqara/wsdcgq11lm": _climate,
    "tuya/ts011f": _plug,
}

#: Vital-sign devices report rarely (twice a day in life); the others often.
WEIGHTS: dict[str, float] = {
    "yuwell/ye680a": 0.05,
    "yuwell/yx306": 0.05,
    "linli/scale": 0.03,
    "yuwell/yht100": 0.03,
    "yuwell/580": 0.03,
    "linli/sos-pendant": 0.2,
    "heiman/hs1sa": 0.2,
    "heiman/hs1cg": 0.2,
    "aqara/sjcgq11lm": 0.2,
    "linli/bed-sensor": 0.5,
}


def payload_for(sim: DeviceSim, hour: float) -> Payload:
    return GENERATORS[sim.profile_id](sim, hour)
