"""Health: vital-sign readings per resident, thresholds, trends, FHIR R4 export, consent."""

from linli.services.health.consent import ConsentRefused, Purpose
from linli.services.health.readings import Attribution, Reading, Rejection
from linli.services.health.service import Health, HealthError
from linli.services.health.thresholds import NOT_A_DIAGNOSIS, ThresholdError, Thresholds

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
