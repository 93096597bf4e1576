"""Health: vital-sign readings per resident, thresholds, trends, FHIR R4 export, consent."""

from services.health.consent import ConsentRefused, Purpose
from services.health.readings import Attribution, Reading, Rejection
from services.health.service import Health, HealthError
from services.health.thresholds import NOT_A_DIAGNOSIS, ThresholdError, Thresholds

__all__ = [
    "NOT_A_DIAGNOSIS",
    "Attribution",
    "ConsentRefused",
    "Health",
    "HealthError",
    "Purpose",
    "Reading",
    "Rejection",
    "ThresholdError",
    "Thresholds",
]
