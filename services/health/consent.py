"""The household's consent to let its health data leave the home.

Health data is sensitive personal information: it reaches carers, service
providers or any outside system only while the household has consented to
that purpose. Consent is per household and purpose, recorded with who gave it
and when; a withdrawal is recorded the same way (the log is append-only) and
takes effect at once — in memory before the write, so nothing is shared after
the call even if the disk is slow. The household's own members may always see
and export their own data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final


class Purpose(StrEnum):
    """Who outside the household the data may go to."""

    CARER = "carer"  # family carers: vitals, trends, vital-sign alerts, their exports
    PROVIDER = "provider"  # service providers and clinics (API, FHIR export)
    # Automated export to systems outside the gateway: the daily summaries the regional
    # platform receives over the uplink (services/health/summaries.py).
    EXPORT = "export"


class Role(StrEnum):
    """Who asks for the data (as vouched for by the portal's authentication)."""

    HOUSEHOLD = "household"  # a member of the household: always allowed their own data
    CARER = "carer"
    PROVIDER = "provider"


_PURPOSE_OF_ROLE: Final = {Role.CARER: Purpose.CARER, Role.PROVIDER: Purpose.PROVIDER}


class ConsentRefused(PermissionError):
    """Health data asked for without the household's consent; `code` is stable for API clients."""

    code = "consent_required"


def parse_purpose(purpose: str) -> Purpose:
    try:
        return Purpose(purpose)
    except ValueError:
        raise ValueError(f"consent purpose {purpose!r} is not one of {[p.value for p in Purpose]}") from None


def parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ValueError(f"requester_role {role!r} is not one of {[r.value for r in Role]}") from None


@dataclass(slots=True, kw_only=True, frozen=True)
class ConsentRecord:
    """One grant or withdrawal, as recorded."""

    household_id: str
    purpose: Purpose
    granted: bool
    by: str
    ts: float
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "household_id": self.household_id,
            "purpose": self.purpose.value,
            "granted": self.granted,
            "by": self.by,
            "ts": self.ts,
            "note": self.note,
        }


class ConsentBook:
    """Each household's current consent per purpose (the latest record wins)."""

    def __init__(self) -> None:
        self._current: dict[tuple[str, Purpose], ConsentRecord] = {}

    def apply(self, record: ConsentRecord) -> None:
        self._current[(record.household_id, record.purpose)] = record

    def may_share(self, household_id: str, purpose: str) -> bool:
        """True while the household consents to `purpose`."""
        record = self._current.get((household_id, parse_purpose(purpose)))
        return record is not None and record.granted

    def status(self, household_id: str) -> dict[str, dict[str, Any] | None]:
        """The latest record for each purpose (None: never asked)."""
        return {
            purpose.value: (
                record.as_dict() if (record := self._current.get((household_id, purpose))) else None
            )
            for purpose in Purpose
        }

    def require(self, household_id: str, role: str, what: str) -> None:
        """ConsentRefused unless `role` may receive the household's health data."""
        parsed = parse_role(role)
        if parsed is Role.HOUSEHOLD:
            return
        purpose = _PURPOSE_OF_ROLE[parsed]
        if not self.may_share(household_id, purpose):
            record = self._current.get((household_id, purpose))
            state = "withdrew its consent" if record is not None else "has not consented"
            raise ConsentRefused(
                f"{what}: household {household_id!r} {state} to share health data with a "
                f"{parsed.value}; a member of the household can record consent for purpose "
                f"{purpose.value!r}"
            )
