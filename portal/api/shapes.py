"""Public JSON shapes of core objects, as API clients and pages receive them — per reader.

Alert ids are 64-bit integers (`linli/common/ids.py`); JavaScript numbers hold 53
bits, so a page would round them and acknowledge the wrong alert. The API and
the WebSocket therefore send every alert id as a decimal string; paths accept it.

What a reader may see is decided by `portal.auth.principal.sees` (per role and the
household's consent); this module only applies it to each shape, the same way for
the REST answers and the live messages:

* a capability whose value the reader may not see is listed with `value`,
  `last_changed` and `last_reported` null and `redacted` saying why
  (`consent_required` where the household's consent would show it);
* an alert whose texts the reader may not see (a reading, a medicine, an SOS that
  names a person) keeps its kind, severity, state and times, with a title that says
  only what happened, an empty detail and `redacted`; who raised, answered or was
  named in it goes too when the reader may not see people's identities;
* a timeline of such an alert keeps its steps, channels and outcomes without details.
"""

from __future__ import annotations

from typing import Any, Final

from linli.gateway.component import ComponentApi
from linli.gateway.privacy import FieldClass, alert_text_class
from linli.portal.auth.principal import Principal, redaction_reason, sees


def public_alert(alert: dict[str, Any]) -> dict[str, Any]:
    return {**alert, "id": str(alert["id"])}


#: The marker a capability carries when its value is withheld for want of the household's consent.
REDACTED: Final = "consent_required"
#: …and when the reader's role never sees it (an installer, a provider key beyond its grant).
NOT_PERMITTED: Final = "not_permitted"
#: What a withheld alert's title says instead: what happened, in zh-CN and en, nobody named.
WITHHELD_TITLES: Final = {
    "vital_sign": "健康提醒 Health alert",
    "missed_medication": "提醒未确认 Reminder not confirmed",
    "sos": "求助 SOS",
    "fall": "跌倒 Fall detected",
    "inactivity": "长时间无活动 No activity",
    "missed_check_in": "未报平安 Missed check-in",
}
_WITHHELD_NOTE: Final = " — 详情已隐藏 details withheld"
#: An alert's fields that name or quote a person (identity).
_PEOPLE_FIELDS: Final = ("resident", "acknowledged_by", "resolved_by", "resolution_note")


def redact_capability(capability: dict[str, Any], reason: str = REDACTED) -> dict[str, Any]:
    """A capability as shown to someone who may not see its value: listed, but without value or times.

    The times go too: when a cuff last reported says when someone measured their blood pressure.
    """
    return {
        **capability,
        "value": None,
        "last_changed": None,
        "last_reported": None,
        "redacted": reason,
    }


def alert_for(alert: dict[str, Any], principal: Principal | None, gateway: ComponentApi) -> dict[str, Any]:
    """The alert as this reader may see it (`public_alert`'s shape, ids as strings)."""
    shaped = public_alert(alert)
    household = str(alert.get("household_id") or "")
    data = alert.get("data") if isinstance(alert.get("data"), dict) else {}
    field = alert_text_class(str(alert.get("kind") or ""), data)
    texts = field is not None and not sees(principal, gateway, household, field)
    people = not sees(principal, gateway, household, FieldClass.IDENTITY)
    if people:
        for key in _PEOPLE_FIELDS:
            if key in shaped:
                shaped[key] = None
        if isinstance(shaped.get("assigned_to"), dict):
            shaped["assigned_to"] = {**shaped["assigned_to"], "by": None}
    if texts:
        assert field is not None
        kind = str(alert.get("kind") or "")
        shaped["title"] = WITHHELD_TITLES.get(kind, "提醒 Alert") + _WITHHELD_NOTE
        shaped["detail"] = ""
        shaped["resolution_note"] = None
        shaped["data"] = {"withheld": field.value}
        shaped["redacted"] = redaction_reason(principal, field)
    elif people and isinstance(data, dict) and "by" in data:
        shaped["data"] = {k: v for k, v in data.items() if k != "by"}
    return shaped


def timeline_for(
    events: list[dict[str, Any]], alert: dict[str, Any], principal: Principal | None, gateway: ComponentApi
) -> list[dict[str, Any]]:
    """An alert's timeline as this reader may see it: steps, channels, outcomes; details only
    where the alert's texts are theirs to read (the raise's detail is the alert's title)."""
    texts = "redacted" in alert_for(alert, principal, gateway)
    people = not sees(principal, gateway, str(alert.get("household_id") or ""), FieldClass.IDENTITY)
    result = []
    for event in events:
        item = dict(event)
        if texts:
            item["detail"] = None
        if people:
            item["actor"] = None
        result.append(item)
    return result


#: What a reminder's title says to a reader who may not know the medicine (zh-CN and en).
WITHHELD_REMINDERS: Final = {"medication": "服药提醒 Medication", "appointment": "预约提醒 Appointment"}


def reminder_for(
    reminder: dict[str, Any], principal: Principal | None, gateway: ComponentApi
) -> dict[str, Any]:
    """A care reminder as this reader may see it: its title names a medicine or a clinic (health),
    so without the household's consent the duty desk sees that one is due, not what."""
    household = str(reminder.get("household_id") or "")
    if sees(principal, gateway, household, FieldClass.HEALTH):
        return reminder
    title = WITHHELD_REMINDERS.get(str(reminder.get("kind")), "提醒 Reminder") + _WITHHELD_NOTE
    return {**reminder, "title": title, "redacted": redaction_reason(principal, FieldClass.HEALTH)}
