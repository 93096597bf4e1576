"""Who is asking, and which households they may see — decided on the server for every call.

A member (resident, household admin) reaches their own household; a carer
reaches it only while the household consents to share with carers; a manager
or an installer reaches the whole community; a provider's key reaches the
households it names *and* that consent to providers, and only the capability
kinds it was granted. Nothing relies on a page hiding something.

Within what a principal reaches, `sees` decides which classes of personal data
(`gateway.privacy.FieldClass`) it may read — the one place for that decision:

| role             | identity | health                         | presence      | alarm | care |
|------------------|----------|--------------------------------|---------------|-------|------|
| resident, admin  | yes      | yes                            | yes           | yes   | yes  |
| carer            | yes      | with consent to carers         | yes           | yes   | yes  |
| manager          | yes      | with consent to providers      | yes           | yes   | yes  |
| installer        | no       | no                             | no            | no    | no   |
| provider key     | yes      | with consent, granted kinds    | granted kinds | no    | no   |
| nobody (demo's open local views) | no | no                    | yes           | no    | no   |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from linli.gateway.component import ComponentApi
from linli.gateway.privacy import FieldClass, class_of
from linli.gateway.users import HOUSEHOLD_ROLES, Role

COMMUNITY_ROLES: Final = frozenset({Role.MANAGER, Role.INSTALLER})
MEMBERS: Final = frozenset({Role.RESIDENT, Role.HOUSEHOLD_ADMIN})
EVERYONE: Final = frozenset(Role)


@dataclass(slots=True, frozen=True, kw_only=True)
class Principal:
    user_id: str
    name: str
    role: Role
    household_id: str | None
    display_name: str
    locale: str
    via: str  # session | bearer | provider
    token_id: str
    csrf: str | None = None
    scope_households: frozenset[str] = field(default_factory=frozenset)
    scope_kinds: frozenset[str] = field(default_factory=frozenset)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "name": self.name,
            "role": self.role.value,
            "household_id": self.household_id,
            "display_name": self.display_name,
            "locale": self.locale,
            "via": self.via,
            **(
                {"scope": {"households": sorted(self.scope_households), "kinds": sorted(self.scope_kinds)}}
                if self.role is Role.PROVIDER
                else {}
            ),
        }


def _consents(gateway: ComponentApi, household_id: str, purpose: str) -> bool:
    # Asked of the consent authority's interface (the health service registers there);
    # with no authority the answer is no.
    return gateway.privacy.may_share("health", household_id, purpose)


def reaches(principal: Principal, gateway: ComponentApi, household_id: str) -> bool:
    """True when the principal may see anything of this household."""
    if household_id not in gateway.registry.households:
        return False
    role = principal.role
    if role in COMMUNITY_ROLES:
        return True
    if role in MEMBERS:
        return principal.household_id == household_id
    if role is Role.CARER:
        return principal.household_id == household_id and _consents(gateway, household_id, "carer")
    if role is Role.PROVIDER:
        return household_id in principal.scope_households and _consents(gateway, household_id, "provider")
    return False


def reachable(principal: Principal, gateway: ComponentApi) -> list[str]:
    """Every household id the principal may see, sorted."""
    households = gateway.registry.households
    if principal.role in COMMUNITY_ROLES:
        return sorted(households)
    if principal.role is Role.PROVIDER:
        candidates: Any = principal.scope_households
    else:
        candidates = [principal.household_id] if principal.household_id else []
    return sorted(h for h in candidates if reaches(principal, gateway, h))


def health_role(principal: Principal, gateway: ComponentApi, household_id: str) -> str | None:
    """The `requester_role` to ask the health service with, or None when health data is out of reach.

    Members ask as the household. Carers and providers ask as themselves (the health
    service checks consent again at read time). A manager sees health values only where
    the household consents to share with providers (the community's care desk is one).
    An installer never sees health values.
    """
    role = principal.role
    if role in MEMBERS and principal.household_id == household_id:
        return "household"
    if role is Role.CARER and principal.household_id == household_id:
        return "carer"
    if role is Role.PROVIDER and household_id in principal.scope_households:
        return "provider"
    if role is Role.MANAGER and _consents(gateway, household_id, "provider"):
        return "provider"
    return None


def kind_allowed(principal: Principal, kind: str) -> bool:
    """A provider sees only the capability kinds it was granted; everyone else, every kind."""
    return principal.role is not Role.PROVIDER or kind in principal.scope_kinds


def sees(
    principal: Principal | None,
    gateway: ComponentApi,
    household_id: str,
    field: FieldClass,
    kind: str | None = None,
) -> bool:
    """Whether the principal may read personal data of this class in this household.

    `kind`, when the value is a capability's state, also applies a provider key's
    granted kinds. The caller has already checked that the household is within reach.
    """
    if principal is None:
        # The demo's read-only views on this machine show the homes' sensors, no person's data.
        return field is FieldClass.PRESENCE
    role = principal.role
    if role is Role.INSTALLER:
        return False  # installers set up hardware: device data only
    if kind is not None and not kind_allowed(principal, kind):
        return False
    if field is FieldClass.HEALTH:
        return health_role(principal, gateway, household_id) is not None
    if role is Role.PROVIDER:
        # a provider reaches consenting households for the kinds it was granted: the people
        # it serves and those kinds' values, not the alarm or the household's care plan
        return field is FieldClass.IDENTITY or (field is FieldClass.PRESENCE and kind is not None)
    return True


def redaction_reason(principal: Principal | None, field: FieldClass) -> str:
    """Why a value is withheld: `consent_required` where the household's consent would show it."""
    if field is FieldClass.HEALTH and principal is not None and principal.role is not Role.INSTALLER:
        return "consent_required"
    return "not_permitted"


def may_see_value(principal: Principal | None, gateway: ComponentApi, household_id: str, kind: str) -> bool:
    """Whether the principal may see a value of this capability kind in this household.

    The one rule for device state, wherever it is shown (device lists, the inventory,
    the TV's screens, the legacy views, live events): the kind's class decides (`sees`);
    a value of no personal class is device data, for whoever reaches the device.
    """
    field = class_of(kind)
    if field is None:
        return principal is None or kind_allowed(principal, kind)
    return sees(principal, gateway, household_id, field, kind)


__all__ = [
    "COMMUNITY_ROLES",
    "EVERYONE",
    "HOUSEHOLD_ROLES",
    "MEMBERS",
    "Principal",
    "health_role",
    "kind_allowed",
    "may_see_value",
    "reachable",
    "reaches",
    "redaction_reason",
    "sees",
]
