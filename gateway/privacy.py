"""Who may see sensitive data beyond the household, asked of whoever holds the consent.

Health data is sensitive personal information: it leaves the household only with
the household's recorded consent. The service that records that consent (health)
registers itself here as the authority for its category; anything that would
carry such data out — an alert to carers, the duty desk or a provider — asks
here first. With no authority registered the answer is no.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum


class Purpose(StrEnum):
    CARER = "carer"
    PROVIDER = "provider"
    EXPORT = "export"


Authority = Callable[[str, str], bool]  # (household id, purpose) → may share


class Privacy:
    def __init__(self) -> None:
        self._authorities: dict[str, Authority] = {}

    def register(self, category: str, authority: Authority) -> None:
        self._authorities[category] = authority

    def unregister(self, category: str) -> None:
        self._authorities.pop(category, None)

    def may_share(self, category: str, household_id: str, purpose: str) -> bool:
        authority = self._authorities.get(category)
        if authority is None:
            return False
        try:
            return bool(authority(household_id, purpose))
        except Exception:  # an authority that fails says no
            return False
