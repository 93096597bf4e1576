"""What personal data a value is, and who may see sensitive data beyond the household.

Every field the API and the WebSocket send is of one class (`FieldClass`): a person's
identity, their health, their presence at home, the household's alarm, their care —
or none, such as a device's model or battery. The portal decides per role and
consent, in one place (`portal/auth/principal.py` `sees`), which classes a caller may
read; this module only says what a value is, so the core and the services name the
same classes as the portal.

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

from linli.gateway.capabilities import KINDS, Category


class Purpose(StrEnum):
    CARER = "carer"
    PROVIDER = "provider"
    EXPORT = "export"


class FieldClass(StrEnum):
    """The personal data a field carries (DESIGN.md "Tenancy, roles and privacy")."""

    #: names of people, display and user names, IP addresses, free text naming people, SOS texts
    IDENTITY = "identity"
    #: vital-sign values, health readings, medication names, health alert details
    HEALTH = "health"
    #: motion, occupancy, bed, doors and locks, presence, inactivity: who is home, and when
    PRESENCE = "presence"
    #: the household alarm panel's state and mode
    ALARM = "alarm"
    #: care settings, check-ins, reminders
    CARE = "care"


Authority = Callable[[str, str], bool]  # (household id, purpose) → may share

#: The categories whose values are sensitive personal information (consent-gated).
SENSITIVE_CATEGORIES: Final = frozenset({Category.HEALTH})

#: The class of each capability kind's value that is personal; every other kind's value
#: (temperature, battery, a switch, the set-top box's power or volume) is device data.
#: A door contact or a lock says when someone comes and goes; what the TV plays says
#: someone is watching.
KIND_CLASSES: Final[dict[str, FieldClass]] = {
    **{k: FieldClass.HEALTH for k, spec in KINDS.items() if spec.category is Category.HEALTH},
    **dict.fromkeys(
        (
            "motion",
            "occupancy",
            "contact",
            "lock",
            "presence",
            "bed_occupancy",
            "activity",
            "sos_button",
            "fall",
            "media",
            "now_playing",
            "channel",
            "app",
            "portal",
        ),
        FieldClass.PRESENCE,
    ),
    # The TV's overlay shows the household whatever concerns it: an SOS naming the resident,
    # a reading's alert. It is withheld as the most sensitive thing it may quote (health).
    "notify": FieldClass.HEALTH,
}

#: Alert kinds whose title and detail carry health data (a reading, a medicine's name);
#: every other alert's texts name a person or a home (identity).
HEALTH_ALERT_KINDS: Final = frozenset({"vital_sign", "missed_medication"})
#: Alert kinds about a device, not a person: an installer's work.
DEVICE_ALERT_KINDS: Final = frozenset({"device_offline", "tamper"})


def class_of(kind: str) -> FieldClass | None:
    """The personal-data class of a capability kind's value, or None for device data."""
    return KIND_CLASSES.get(kind)


def alert_text_class(kind: str, data: dict[str, object] | None = None) -> FieldClass | None:
    """The class of an alert's title, detail and data: health for a reading or a medicine,
    none for a device's own trouble (offline, tampered with), identity for the rest."""
    if kind in DEVICE_ALERT_KINDS:
        return None
    if kind in HEALTH_ALERT_KINDS or (data or {}).get("sensitive") == "health":
        return FieldClass.HEALTH
    return FieldClass.IDENTITY


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
