"""Health: vital-sign readings per resident, thresholds, trends, FHIR R4 export, consent."""

from linli.gateway.component import ComponentKey
from linli.services.health.consent import ConsentRefused, Purpose
from linli.services.health.readings import Attribution, Reading, Rejection
from linli.services.health.service import Health, HealthError
from linli.services.health.thresholds import NOT_A_DIAGNOSIS, ThresholdError, Thresholds

#: This component, for typed lookup by its peers: `api.peer(HEALTH)` is a Health.
HEALTH: ComponentKey[Health] = ComponentKey("health", Health)

__all__ = [
    "HEALTH",
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
