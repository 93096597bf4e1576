"""A Linli profile built from a device's own Home Assistant discovery configs.

Home Assistant adopts a device from its announcement alone; so does Linli. Each
entity config (`binary_sensor`, `sensor`, `switch`, `event`, …) becomes a
capability reader: which state topic, which template, what `payload_on`/`off`
(or `state_on`/`off`) mean, whether it is a number, an on/off state or an event.
A shipped firmware profile for the same model *refines* the result (its
capability keys, Chinese names, value ranges, and semantic kinds such as an
SOS button) but is never needed.

The entity configs are kept in the inbox item (`details["entities"]`), so an
announcement is enough to approve a device even after a restart, and the
profile of an approved device is written to `<data dir>/profiles/announced/`
and rebuilt from that file at start (`load_announced_profiles`).

Message handling (`AnnouncedProfile.read`) runs in the MQTT receive callback:
no I/O; a template compiled once per text (gateway/profiles/templates.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from linli.gateway.capabilities import KINDS
from linli.gateway.discovery.ha_mapping import EMERGENCY_EVENTS, capability_for, template_path
from linli.gateway.discovery.model import InboxItem, Source
from linli.gateway.profiles import Profile, ProfileSet
from linli.gateway.profiles.model import CapabilitySpec
from linli.gateway.profiles.templates import (
    MISSING,
    TemplateFailed,
    TemplateRefused,
    ValueTemplate,
    compile_template,
)

_LOGGER = logging.getLogger(__name__)

PROFILE_PREFIX: Final = "announced/"
FOLDER: Final = Path("profiles") / "announced"  # under the gateway's data directory

#: What a template renders when the field had no value (JSON null) or the device does not know.
_NO_VALUE: Final = frozenset({"", "None", "none", "null", "unknown", "unavailable"})
#: Keys of an entity config that say how to read and drive it (kept in the inbox item).
ENTITY_KEYS: Final = (
    "name",
    "object_id",
    "unique_id",
    "device_class",
    "unit_of_measurement",
    "state_class",
    "entity_category",
    "icon",
    "state_topic",
    "value_template",
    "state_value_template",
    "payload_on",
    "payload_off",
    "state_on",
    "state_off",
    "command_topic",
    "command_template",
    "payload_press",
    "event_types",
    "json_attributes_topic",
    "json_attributes_template",
    "availability",
    "availability_topic",
    "availability_mode",
    "availability_template",
    "payload_available",
    "payload_not_available",
    "state_locked",
    "state_unlocked",
    "payload_lock",
    "payload_unlock",
)
#: Zigbee2MQTT's own event template (regex patterns over `action` with loops and HA-only
#: filters) is more than a value template may do here; its event type *is* the action.
_ACTION_FIELD: Final = re.compile(r"value_json\.(action|click)\b")


class AnnouncedProfileError(ValueError):
    """The announcement does not describe anything Linli can adopt; the message says why."""


def entity_record(component: str, object_id: str, config: dict[str, Any]) -> dict[str, Any]:
    """What the inbox keeps of one entity config (expanded keys, `~` applied)."""
    record: dict[str, Any] = {"component": component, "object_id": object_id}
    for key in ENTITY_KEYS:
        if key in config and config[key] is not None:
            record[key] = config[key]
    return record


def _text(value: Any) -> str:
    """A config value as Home Assistant compares it: `true` → "True" (as Jinja renders it)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


@dataclass(slots=True)
class Availability:
    topic: str
    template: ValueTemplate | None
    online: str
    offline: str


@dataclass(slots=True, kw_only=True)
class EntityReader:
    """How one entity's value is read from its state topic."""

    key: str
    kind: str
    topic: str
    template: ValueTemplate | None = None
    template_problem: str | None = None  # a refused template: every message says so
    action_field: str | None = None  # Zigbee2MQTT event entities: the field holding the event type
    on: tuple[str, ...] = ()
    off: tuple[str, ...] = ()
    numeric: bool = False
    event: bool = False
    event_types: tuple[str, ...] = ()
    emergency: bool = False
    command_topic: str | None = None
    payload_on: Any = None
    payload_off: Any = None


@dataclass(slots=True, kw_only=True)
class Reading:
    """What one message said: values, events (capability key, event type), problems."""

    values: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[EntityReader, str, dict[str, Any]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class AnnouncedProfile(Profile):
    """A profile whose readers come from the device's announcement (see the module doc)."""

    readers: list[EntityReader] = field(default_factory=list)
    state_topics: tuple[str, ...] = ()
    availabilities: list[Availability] = field(default_factory=list)
    availability_mode: str = "latest"
    bridge: str | None = None  # a Zigbee2MQTT base topic ("zigbee2mqtt"), when bridged by one
    refines: str | None = None
    document: dict[str, Any] = field(default_factory=dict)

    def read(self, topic: str, payload: bytes) -> Reading:
        """Every reader's value in one message on `topic` (the device's own state topic
        when the entity names the device's main topic, so renames keep working)."""
        reading = Reading()
        text = payload.decode("utf-8", "replace")
        try:
            value_json: Any = orjson.loads(payload)
        except orjson.JSONDecodeError:
            value_json = MISSING
        for reader in self.readers:
            if reader.topic != topic:
                continue
            if reader.template_problem is not None:
                reading.problems.append(f"{reader.key}: {reader.template_problem}")
                continue
            try:
                raw = _raw_value(reader, text, value_json)
            except (TemplateRefused, TemplateFailed) as exc:
                reading.problems.append(f"{reader.key}: {exc}")
                continue
            if raw is MISSING:
                continue
            _interpret(reader, raw, reading, self)
        return reading

    def command(self, key: str, value: Any) -> tuple[str, bytes] | None:
        """(topic, payload) that sets capability `key`, as Home Assistant would send it."""
        for reader in self.readers:
            if reader.key == key and reader.command_topic:
                raw = reader.payload_on if value else reader.payload_off
                return reader.command_topic, _text(raw).encode() if not isinstance(raw, bytes) else raw
        return None


def _raw_value(reader: EntityReader, text: str, value_json: Any) -> Any:
    if reader.action_field is not None:
        if type(value_json) is not dict:
            return MISSING
        action = value_json.get(reader.action_field)
        return MISSING if action is None else str(action)
    if reader.template is not None:
        return reader.template.render(text, value_json)
    return text.strip()


def _interpret(reader: EntityReader, raw: str, reading: Reading, profile: AnnouncedProfile) -> None:
    if reader.event:
        event_type, data = raw, {}
        if raw.startswith("{"):  # Home Assistant's event payload: {"event_type": "press", …}
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                parsed = None
            if type(parsed) is dict and isinstance(parsed.get("event_type"), str):
                event_type, data = (
                    parsed["event_type"],
                    {k: v for k, v in parsed.items() if k != "event_type"},
                )
        if event_type in _NO_VALUE:
            return  # Zigbee2MQTT clears `action` to "" after each press: not a press
        if reader.event_types and event_type not in reader.event_types:
            reading.problems.append(
                f"{reader.key}: event type {event_type[:40]!r} is not one the device announced "
                f"({', '.join(reader.event_types[:8])})"
            )
            return
        reading.events.append((reader, event_type, data))
        return
    if raw in _NO_VALUE and not reader.on:
        return
    if reader.on or reader.off:
        if raw in reader.on:
            reading.values[reader.key] = True
        elif raw in reader.off:
            reading.values[reader.key] = False
        elif raw not in _NO_VALUE:
            reading.problems.append(
                f"{reader.key}: {raw[:40]!r} is neither {' / '.join(reader.on)} (on) "
                f"nor {' / '.join(reader.off)} (off)"
            )
        return
    value: Any = raw
    if reader.numeric:
        try:
            number = float(raw)
        except ValueError:
            reading.problems.append(f"{reader.key}: {raw[:40]!r} is not a number")
            return
        if not math.isfinite(number):
            reading.problems.append(f"{reader.key}: {raw[:40]!r} is not a finite number")
            return
        value = int(number) if number.is_integer() and "." not in raw else number
    cap = profile.capability(reader.key)
    if cap is not None and not cap.check(value):
        reading.problems.append(f"{reader.key}: {value!r} does not match its schema {cap.schema}")
        return
    reading.values[reader.key] = value


# -- building --------------------------------------------------------------------------


def _event_kind(record: dict[str, Any]) -> tuple[bool, tuple[str, ...]] | None:
    """(is emergency, event types) when the entity reports presses rather than a state."""
    component = record["component"]
    types = tuple(str(t) for t in record.get("event_types") or () if isinstance(t, str))
    if component == "event":
        return bool(EMERGENCY_EVENTS & set(types)), types
    template = str(record.get("value_template") or "")
    object_id = str(record.get("object_id") or "")
    if component == "sensor" and (object_id.endswith("action") or template_path(template) == "action"):
        return False, types  # Zigbee2MQTT's legacy action sensor
    return None


def _availabilities(records: list[dict[str, Any]]) -> tuple[list[Availability], str]:
    found: dict[str, Availability] = {}
    mode = "latest"
    for record in records:
        listed = record.get("availability")
        items: list[dict[str, Any]] = (
            [a for a in listed if isinstance(a, dict)] if isinstance(listed, list) else []
        )
        if isinstance(record.get("availability_topic"), str):
            items.append(
                {
                    "topic": record["availability_topic"],
                    "value_template": record.get("availability_template"),
                    "payload_available": record.get("payload_available"),
                    "payload_not_available": record.get("payload_not_available"),
                }
            )
        for item in items:
            topic = item.get("topic")
            if not isinstance(topic, str) or topic in found:
                continue
            template = None
            if isinstance(item.get("value_template"), str):
                try:
                    template = compile_template(item["value_template"])
                except TemplateRefused as exc:
                    _LOGGER.warning("availability template on %s refused: %s", topic, exc)
            found[topic] = Availability(
                topic=topic,
                template=template,
                online=_text(item.get("payload_available") or record.get("payload_available") or "online"),
                offline=_text(
                    item.get("payload_not_available") or record.get("payload_not_available") or "offline"
                ),
            )
        if record.get("availability_mode") in ("all", "any", "latest"):
            mode = record["availability_mode"]
    return list(found.values()), mode


def _refining(refine: Profile | None, kind: str, path: str | None, used: set[str]) -> CapabilitySpec | None:
    if refine is None:
        return None
    for cap in refine.capabilities:
        if cap.key not in used and path is not None and cap.source == path:
            return cap
    for cap in refine.capabilities:
        if cap.key not in used and cap.kind == kind:
            return cap
    return None


def _known_field(
    refine: Profile | None, component: str, path: str | None, used: set[str]
) -> CapabilitySpec | None:
    """The shipped capability reading the field an entity without a device class reads
    (OpenMQTTGateway announces a scale's `impedance` with none): the profile knows it."""
    if refine is None or path is None or component not in ("sensor", "binary_sensor"):
        return None
    for cap in refine.capabilities:
        spec = KINDS.get(cap.kind)
        if (
            cap.key not in used
            and cap.source == path
            and spec is not None
            and spec.binary == (component == "binary_sensor")
        ):
            return cap
    return None


def build_profile(
    profile_id: str,
    *,
    device: dict[str, Any],
    entities: list[dict[str, Any]],
    refine: Profile | None = None,
) -> AnnouncedProfile:
    """The profile for a device announced with these entity records (see `entity_record`)."""
    readers: list[EntityReader] = []
    specs: list[CapabilitySpec] = []
    used: set[str] = set()
    for record in entities:
        component, object_id = str(record.get("component")), str(record.get("object_id") or "")
        topic = record.get("state_topic")
        if not isinstance(topic, str) or not topic:
            continue
        template_text = record.get("value_template") or record.get("state_value_template")
        event = _event_kind(record)
        proposed = capability_for(component, object_id, record)
        path = template_path(template_text)
        known = _known_field(refine, component, path, used) if event is None and proposed is None else None
        if event is None and proposed is None and known is None:
            continue
        if event is not None:
            emergency = event[0]
            kind = "sos_button" if emergency else "button"
        elif proposed is not None:
            kind = proposed.kind
        else:
            assert known is not None
            kind = known.kind
        shipped = _refining(refine, kind, path, used)
        if shipped is not None and shipped.kind != kind:
            # The shipped profile knows what the field means (occupancy → motion, action → SOS
            # button); its kind wins when it reads the same sort of value.
            if event is not None and shipped.kind == "sos_button":
                kind = "sos_button"
            elif event is None and _same_sort(shipped.kind, kind):
                kind = shipped.kind
        key = shipped.key if shipped is not None else (proposed.key if proposed else _key(object_id, kind))
        while key in used:
            key = f"{key}_2"
        used.add(key)
        reader = EntityReader(key=key, kind=kind, topic=topic)
        if isinstance(template_text, str) and template_text:
            try:
                reader.template = compile_template(template_text)
            except TemplateRefused as exc:
                action = _ACTION_FIELD.search(template_text) if event is not None else None
                if action is not None:
                    reader.action_field = action.group(1)
                else:
                    reader.template_problem = str(exc)
        spec = KINDS.get(kind)
        if event is not None:
            reader.event = True
            reader.event_types = event[1]
            reader.emergency = kind == "sos_button" or bool(EMERGENCY_EVENTS & set(event[1]))
        elif spec is not None and spec.binary:
            on_default = record.get("payload_on", "ON")
            off_default = record.get("payload_off", "OFF")
            if kind == "lock":
                on_default, off_default = (
                    record.get("state_unlocked", "UNLOCKED"),
                    record.get("state_locked", "LOCKED"),
                )
            on_values = {_text(on_default), _text(record.get("state_on", on_default))}
            off_values = {_text(off_default), _text(record.get("state_off", off_default))}
            reader.on, reader.off = tuple(sorted(on_values)), tuple(sorted(off_values))
            reader.payload_on, reader.payload_off = on_default, off_default
        else:
            reader.numeric = spec is not None and spec.value_schema.get("type") == "number"
        command_topic = record.get("command_topic")
        writable = isinstance(command_topic, str) and spec is not None and spec.binary and event is None
        if writable:
            reader.command_topic = command_topic
        readers.append(reader)
        schema = shipped.schema if shipped is not None else (spec.value_schema if spec else {})
        cap = CapabilitySpec(
            key=key,
            kind=kind,
            name=shipped.name if shipped is not None else str(record.get("name") or key.replace("_", " ")),
            names=dict(shipped.names) if shipped is not None else {},
            source=key,
            unit=(shipped.unit if shipped is not None else None) or (proposed.unit if proposed else None),
            access="rw" if writable else "r",
            value_on=reader.payload_on if reader.on else None,
            value_off=reader.payload_off if reader.on else None,
            schema=dict(schema),
            command_topic=command_topic if writable else None,
            command_field=None,
        )
        cap.compile()
        specs.append(cap)
    if not specs:
        raise AnnouncedProfileError(
            "none of its entities is a kind Linli knows (binary sensors, sensors with a device "
            "class, switches, lights, locks, sirens, events)"
        )
    availabilities, mode = _availabilities(entities)
    bridge = next(
        (a.topic[: -len("/bridge/state")] for a in availabilities if a.topic.endswith("/bridge/state")), None
    )
    topics = tuple(dict.fromkeys(r.topic for r in readers))
    name = str(device.get("name") or (refine.name if refine else "") or device.get("model") or "device")
    return AnnouncedProfile(
        id=profile_id,
        vendor=str(device.get("manufacturer") or (refine.vendor if refine else "") or "unknown"),
        model=str(device.get("model") or (refine.model if refine else "") or "unknown"),
        name=refine.name if refine is not None else name,
        path=f"announcement ({profile_id})",
        firmware_min=None,
        firmware_max=None,
        match={},
        supervision_s=refine.supervision_s if refine is not None else None,
        availability_topic=None,
        payload_available="online",
        payload_not_available="offline",
        capabilities=specs,
        raw={"id": profile_id, "refines": refine.id if refine else None},
        names=dict(refine.names) if refine is not None else {},
        readers=readers,
        state_topics=topics,
        availabilities=availabilities,
        availability_mode=mode,
        bridge=bridge,
        refines=refine.id if refine else None,
        document={
            "id": profile_id,
            "device": device,
            "entities": entities,
            "refines": refine.id if refine else None,
        },
    )


def _same_sort(a: str, b: str) -> bool:
    spec_a, spec_b = KINDS.get(a), KINDS.get(b)
    return (
        spec_a is not None
        and spec_b is not None
        and spec_a.binary == spec_b.binary
        and spec_a.value_schema.get("type") == spec_b.value_schema.get("type")
    )


def _key(object_id: str, kind: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", object_id.lower())[:64] or kind


# -- keeping them -----------------------------------------------------------------------


def profile_file(data_dir: Path, profile_id: str) -> Path:
    return data_dir / FOLDER / (profile_id.removeprefix(PROFILE_PREFIX).replace("/", "_") + ".json")


def write_profile(data_dir: Path, profile: AnnouncedProfile) -> None:
    """Keep the announcement the device was adopted from (blocking: run it in a thread)."""
    path = profile_file(data_dir, profile.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(orjson.dumps(profile.document, option=orjson.OPT_INDENT_2))
    partial.replace(path)


def write_profiles(data_dir: Path, kept: list[AnnouncedProfile]) -> None:
    """Keep many announcements in one file (a bulk approval: one write, not one per device)."""
    digest = hashlib.sha256("\n".join(p.id for p in kept).encode()).hexdigest()[:16]
    path = data_dir / FOLDER / f"batch-{digest}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(orjson.dumps({"profiles": [p.document for p in kept]}))
    partial.replace(path)


def load_announced_profiles(data_dir: Path, shipped: ProfileSet) -> tuple[list[AnnouncedProfile], list[str]]:
    """The profiles of devices adopted from their announcements (blocking: run it in a thread)."""
    folder = data_dir / FOLDER
    profiles: list[AnnouncedProfile] = []
    errors: list[str] = []
    if not folder.is_dir():
        return profiles, errors
    for path in sorted(folder.glob("*.json")):
        try:
            content = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            errors.append(f"{path}: {type(exc).__name__}: {exc}")
            _LOGGER.error("announced profiles skipped: %s: %s", path, exc)
            continue
        # one profile a file, or a bulk approval's many (write_profiles)
        listed = content["profiles"] if isinstance(content, dict) and "profiles" in content else [content]
        documents: list[Any] = listed if isinstance(listed, list) else [listed]  # JSON, checked below
        for document in documents:
            try:
                refine = shipped.get(document["refines"]) if document.get("refines") else None
                profiles.append(
                    build_profile(
                        document["id"],
                        device=document["device"],
                        entities=document["entities"],
                        refine=refine,
                    )
                )
            except (KeyError, TypeError, AttributeError, AnnouncedProfileError) as exc:
                errors.append(f"{path}: {type(exc).__name__}: {exc}")
                _LOGGER.error("announced profile skipped: %s: %s", path, exc)
    return profiles, errors


# -- approval ---------------------------------------------------------------------------


def announced_entities(item: InboxItem) -> list[dict[str, Any]]:
    """The entity configs an inbox item's MQTT announcement carries (empty: none)."""
    state = item.sources.get(Source.MQTT)
    announcement = state.announcement if state is not None else None
    entities = announcement.details.get("entities") if announcement is not None else None
    return [e for e in entities if isinstance(e, dict)] if isinstance(entities, list) else []


def refinement(item: InboxItem, profiles: ProfileSet) -> Profile | None:
    """The shipped profile for the item's model, whatever firmware it reports (a preference)."""
    if item.profile_id and (matched := profiles.get(item.profile_id)) is not None:
        return None if isinstance(matched, AnnouncedProfile) else matched
    for announcement in item.announcements():
        for facts in announcement.facts:
            found = profiles.match(announcement.source.value, facts, None)
            if found is not None and not isinstance(found, AnnouncedProfile):
                return found
    return None


def adoption_profile(item: InboxItem, profiles: ProfileSet) -> AnnouncedProfile | None:
    """The profile to adopt `item` with, built from its announcement (None: it announced none).

    AnnouncedProfileError if none of the announced entities is usable.
    """
    entities = announced_entities(item)
    if not entities:
        return None
    device = {
        k: v
        for k, v in (
            ("manufacturer", item.manufacturer),
            ("model", item.model),
            ("name", item.name),
            ("firmware", item.firmware),
        )
        if v
    }
    refine = refinement(item, profiles)
    return build_profile(f"{PROFILE_PREFIX}{item.id}", device=device, entities=entities, refine=refine)


async def async_keep(profile: AnnouncedProfile, profiles: ProfileSet, data_dir: Path) -> None:
    """Keep the profile on disk, then add it to `profiles`: the device it is given to finds
    it again after a restart (`load_announced_profiles`)."""
    await async_keep_many([profile], profiles, data_dir)


async def async_keep_many(
    kept: list[AnnouncedProfile], profiles: ProfileSet, data_dir: Path, *, known_first: bool = False
) -> None:
    """`async_keep` for many (a bulk approval): all written in one trip to a worker thread.

    `known_first`: add them to `profiles` before writing, so the devices can be registered
    while the files are written (a device whose file is then missing waits for its profile
    at the next start, in the registry, instead of being lost).
    """
    if not kept:
        return
    if known_first:
        profiles.profiles.update((profile.id, profile) for profile in kept)
    if len(kept) == 1:
        await asyncio.to_thread(write_profile, data_dir, kept[0])
    else:
        await asyncio.to_thread(write_profiles, data_dir, kept)
    for profile in kept:
        profiles.profiles[profile.id] = profile
