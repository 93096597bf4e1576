"""FHIR R4 export: each reading as an Observation, in a Bundle with its Patient and Devices.

Shapes follow FHIR R4 (4.0.1) and its vital-signs profiles: category
`vital-signs`, LOINC codes, UCUM quantities, the blood-pressure panel 85354-9
with systolic 8480-6 and diastolic 8462-4 components, SpO2 coded 59408-5 and
2708-6. Glucose (2339-0) is not in the vital-signs value set; it carries the
`vital-signs` category with the others (the home monitoring dashboards group
it there) and `laboratory`, and claims no vital-signs profile.

The Bundle is a `collection` that stands alone: every resource has a
`urn:uuid:` fullUrl, and references point at those, so an importer resolves
Patient and Device inside the Bundle. Ids are name-based UUIDs of the gateway
and the Linli id, so exporting the same period twice yields the same ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from typing import Any, Final

from linli.gateway.registry import Device, Resident
from linli.services.health.readings import VITALS, Quantity, Reading

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
_NAMESPACE: Final = uuid.UUID("5b0c8f0e-3c52-4f5e-9a51-6c696e6c6921")  # Linli's, fixed forever
_PROFILES: Final = {
    "blood_pressure": "http://hl7.org/fhir/StructureDefinition/bp",
    "heart_rate": "http://hl7.org/fhir/StructureDefinition/heartrate",
    "spo2": "http://hl7.org/fhir/StructureDefinition/oxygensat",
    "body_temperature": "http://hl7.org/fhir/StructureDefinition/bodytemp",
    "weight": "http://hl7.org/fhir/StructureDefinition/bodyweight",
}
_VITAL_SIGNS: Final = {
    "coding": [{"system": CATEGORY_SYSTEM, "code": "vital-signs", "display": "Vital Signs"}],
    "text": "Vital Signs",
}
_LABORATORY: Final = {
    "coding": [{"system": CATEGORY_SYSTEM, "code": "laboratory", "display": "Laboratory"}],
    "text": "Laboratory",
}


def resource_id(gateway_id: str, kind: str, linli_id: str | int) -> str:
    """A stable FHIR id (a UUID, which fits FHIR's id rules) for a Linli object."""
    return str(uuid.uuid5(_NAMESPACE, f"{gateway_id}/{kind}/{linli_id}"))


def full_url(resource: dict[str, Any]) -> str:
    return f"urn:uuid:{resource['id']}"


def date_time(ts: float, tz: tzinfo) -> str:
    """FHIR dateTime: ISO 8601 to the second, with the time zone offset."""
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


def _identifier_system(gateway_id: str, what: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-." else "-" for c in gateway_id)
    return f"urn:linli:{safe}:{what}"


def _quantity(value: float, quantity: Quantity) -> dict[str, Any]:
    rounded = round(value, quantity.decimals)
    return {
        "value": int(rounded) if quantity.decimals == 0 else rounded,
        "unit": quantity.unit_display,
        "system": UCUM,
        "code": quantity.unit,
    }


def _code(quantity: Quantity, text: str, extra: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    coding = [{"system": LOINC, "code": quantity.loinc, "display": quantity.display}]
    coding += [{"system": LOINC, "code": code, "display": display} for code, display in extra]
    return {"coding": coding, "text": text}


def patient(gateway_id: str, resident: Resident) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": resource_id(gateway_id, "resident", resident.id),
        "identifier": [{"system": _identifier_system(gateway_id, "resident"), "value": resident.id}],
        "active": True,
        "name": [{"text": resident.name}],
    }
    gender = resident.data.get("gender")
    if gender in ("male", "female", "other", "unknown"):
        resource["gender"] = gender
    birth_year = resident.data.get("birth_year")
    if isinstance(birth_year, int) and 1880 <= birth_year <= 2100:
        resource["birthDate"] = f"{birth_year:04d}"
    return resource


def device(gateway_id: str, device_id: str, known: Device | None, patient_ref: str | None) -> dict[str, Any]:
    """The measuring device (a bare identifier when it has been removed since)."""
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": resource_id(gateway_id, "device", device_id),
        "identifier": [{"system": _identifier_system(gateway_id, "device"), "value": device_id}],
    }
    if known is None:
        resource["status"] = "inactive"
        return resource
    profile = known.profile
    resource["status"] = "active"
    resource["manufacturer"] = profile.vendor
    resource["deviceName"] = [
        {"name": known.name, "type": "user-friendly-name"},
        {"name": profile.model, "type": "model-name"},
    ]
    resource["modelNumber"] = profile.model
    if known.firmware:
        resource["version"] = [{"value": known.firmware}]
    if patient_ref is not None and known.resident_id is not None:
        resource["patient"] = {"reference": patient_ref}
    return resource


def observation(
    gateway_id: str, reading: Reading, patient_ref: str, device_ref: str, tz: tzinfo
) -> dict[str, Any]:
    """One reading as an R4 Observation."""
    spec = VITALS[reading.kind]
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": resource_id(gateway_id, "reading", reading.id),
        "identifier": [{"system": _identifier_system(gateway_id, "reading"), "value": str(reading.id)}],
        "status": "final",
        "category": [_VITAL_SIGNS] if reading.kind != "glucose" else [_VITAL_SIGNS, _LABORATORY],
        "code": _code(spec.quantity, spec.label, spec.extra_codes),
        "subject": {"reference": patient_ref},
        "effectiveDateTime": date_time(reading.ts, tz),
        "device": {"reference": device_ref},
    }
    profile = _PROFILES.get(reading.kind)
    if profile is not None:
        resource["meta"] = {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns", profile]}
    value = reading.value
    if isinstance(value, dict):
        assert spec.components is not None
        resource["component"] = [
            {"code": _code(quantity, quantity.display), "valueQuantity": _quantity(value[name], quantity)}
            for name, quantity in spec.components.items()
        ]
    else:
        resource["valueQuantity"] = _quantity(value, spec.quantity)
    return resource


def bundle(
    *,
    gateway_id: str,
    resident: Resident,
    readings: list[Reading],
    devices: dict[str, Device | None],
    now: float,
    tz: tzinfo,
) -> dict[str, Any]:
    """A `collection` Bundle: the Patient, each Device used, and one Observation per reading."""
    person = patient(gateway_id, resident)
    person_ref = full_url(person)
    entries = [{"fullUrl": person_ref, "resource": person}]
    device_refs: dict[str, str] = {}
    for device_id in dict.fromkeys(r.device_id for r in readings):
        resource = device(gateway_id, device_id, devices.get(device_id), person_ref)
        device_refs[device_id] = full_url(resource)
        entries.append({"fullUrl": device_refs[device_id], "resource": resource})
    for reading in readings:
        resource = observation(gateway_id, reading, person_ref, device_refs[reading.device_id], tz)
        entries.append({"fullUrl": full_url(resource), "resource": resource})
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")},
        "type": "collection",
        "timestamp": date_time(now, tz),
        "entry": entries,
    }
