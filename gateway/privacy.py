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
from typing import Final

from gateway.capabilities import KINDS, Category


class Purpose(StrEnum):
    CARER = "carer"
    PROVIDER = "provider"
    EXPORT = "export"


Authority = Callable[[str, str], bool]  # (household id, purpose) → may share

#: The categories whose values are sensitive personal information (consent-gated).
SENSITIVE_CATEGORIES: Final = frozenset({Category.HEALTH})


def category_of(kind: str) -> str | None:
    """The sensitive category of a capability kind's values (DESIGN.md's vocabulary), or None.

    A blood-pressure cuff's current state is the same reading the health service
    stores, so whoever may not read health data may not read it as device state either.
    """
    spec = KINDS.get(kind)
    return spec.category.value if spec is not None and spec.category in SENSITIVE_CATEGORIES else None


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
