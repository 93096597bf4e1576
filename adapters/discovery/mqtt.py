"""MQTT discovery: the Home Assistant convention, and Linli's native announcements.

Home Assistant's convention is what Zigbee2MQTT, Tasmota, ESPHome and
OpenMQTTGateway already publish, retained:

    <prefix>/<component>/[<node_id>/]<object_id>/config   one entity
    <prefix>/device/<object_id>/config                    a whole device (`cmps`: its entities)

with abbreviated keys and a `~` topic base (ha_abbreviations.py), a `dev`
block naming the device, an `o` block naming the software that published it,
and an empty payload meaning "removed". Entities that share a device
(`dev.ids` / `dev.cns`) become one inbox item, with one proposed capability per
entity Linli has a kind for (ha_mapping.py).

Linli's own devices announce themselves once, retained, on

    linli/v1/discovery/<id>/config   {"model": "SOS-P1", "firmware": "1.4.0", ...}

(schemas.NATIVE_SCHEMA), and publish telemetry on `linli/v1/discovery/<id>`
until they are adopted.

Everything here runs in the MQTT receive callback: parse, check, hand to the
inbox; no I/O, no task per message. Unusable input is rejected with a reason.
"""

from __future__ import annotations

import collections
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Final

import aiomqtt
import orjson

from linli.adapters.discovery.ha_abbreviations import apply_topic_base, expand
from linli.adapters.discovery.schemas import (
    config_problem,
    native_problem,
    tasmota_problem,
    tasmota_sensors_problem,
)
from linli.adapters.discovery.tasmota import (
    TASMOTA_PREFIX,
    TasmotaConfigError,
    device_block,
    relay_entities,
    sensor_entities,
)
from linli.gateway.discovery.ha_mapping import HA_COMPONENTS, capability_for
from linli.gateway.discovery.ha_profile import entity_record
from linli.gateway.discovery.identity import identifier_keys, ieee_key, mac_key, ordered
from linli.gateway.discovery.inbox import Inbox
from linli.gateway.discovery.model import Announcement, ProposedCapability, Rejection, Source
from linli.gateway.mqtt.link import MqttLink

_LOGGER = logging.getLogger(__name__)

NATIVE_PREFIX: Final = "linli/v1/discovery"
DEVICE_COMPONENT: Final = "device"
_ID: Final = re.compile(r"^[a-zA-Z0-9_-]+$")
_EXCERPT_CHARS: Final = 80
_REQUIRES_STATE: Final = frozenset({"binary_sensor", "sensor"})
_REQUIRES_COMMAND: Final = frozenset({"switch", "light", "lock", "siren", "button"})
_SHARED_KEYS: Final = (
    "state_topic",
    "command_topic",
    "availability",
    "availability_topic",
    "availability_mode",
    "payload_available",
    "payload_not_available",
    "qos",
    "encoding",
)


class ConfigError(ValueError):
    """A discovery config that cannot be used; the message says why."""


def excerpt(payload: bytes) -> str:
    """The start of a payload, printable (for the rejected view)."""
    text = payload[:_EXCERPT_CHARS].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in text)
    return text + ("…" if len(payload) > _EXCERPT_CHARS else "")


@dataclass(slots=True)
class _Entity:
    """One entity config, with what Linli makes of it (worked out once, when it arrives)."""

    component: str
    object_id: str
    config: dict[str, Any]
    capability: ProposedCapability | None = field(init=False)
    availability: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.capability = capability_for(self.component, self.object_id, self.config)
        topics = [a["topic"] for a in self.config.get("availability") or ()]
        if self.config.get("availability_topic"):
            topics.append(self.config["availability_topic"])
        self.availability = topics


@dataclass(slots=True)
class _Device:
    """The entities one device announced (over any number of config topics)."""

    keys: tuple[str, ...]
    device: dict[str, Any]
    origin: dict[str, Any] | None
    entities: dict[tuple[str, str], _Entity] = field(default_factory=dict)  # (config topic, cmps key)


def _device_keys(device: dict[str, Any]) -> list[str]:
    keys: list[str] = []
    identifiers = device.get("identifiers")
    if isinstance(identifiers, str):
        identifiers = [identifiers]
    for identifier in identifiers or ():
        keys += identifier_keys(identifier)
    for kind, value in device.get("connections") or ():
        if kind == "mac":
            key = mac_key(value)
        elif kind == "zigbee":
            key = ieee_key(value)
        else:
            key = None
        keys.append(key or f"mqtt:{kind}:{value}")
    return keys


def _model_candidates(device: dict[str, Any]) -> list[str]:
    """Model names a profile may be keyed by: Zigbee2MQTT puts the model id in `model_id`,
    older versions in brackets after the description ("Door sensor (MCCGQ11LM)")."""
    candidates = []
    for text in (device.get("model_id"), device.get("model")):
        if isinstance(text, str) and text:
            if match := re.search(r"\(([^()]+)\)\s*$", text):
                candidates.append(match.group(1))
            candidates.append(text)
    return list(dict.fromkeys(candidates))


def _category(device: dict[str, Any], origin: dict[str, Any] | None) -> str:
    name = (origin or {}).get("name")
    if isinstance(name, str) and name:
        return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "mqtt"
    identifiers = device.get("identifiers")
    first = identifiers if isinstance(identifiers, str) else (identifiers or [""])[0]
    if isinstance(first, str) and first.startswith("zigbee2mqtt_"):
        return "zigbee2mqtt"
    software = f"{device.get('sw_version') or ''} {device.get('manufacturer') or ''}".lower()
    for family in ("tasmota", "esphome", "openmqttgateway"):
        if family in software:
            return family
    return "mqtt"


class MqttDiscovery:
    """Turns retained discovery configs into inbox announcements."""

    def __init__(self, inbox: Inbox, link: MqttLink, *, prefix: str, max_config_bytes: int) -> None:
        self._inbox = inbox
        self._link = link
        self.prefix = prefix.rstrip("/")
        self.max_config_bytes = max_config_bytes
        self._devices: dict[str, _Device] = {}
        self._topic_device: dict[str, str] = {}
        self._stopped = True
        self.received = 0
        # Tasmota's own discovery: the last config and sensors message of each MAC (tasmota.py)
        self._tasmota: dict[str, dict[str, dict[str, Any]]] = {}

    @property
    def filters(self) -> list[str]:
        return [f"{self.prefix}/#", f"{NATIVE_PREFIX}/+/config", f"{TASMOTA_PREFIX}/+/+"]

    async def async_start(self) -> None:
        self._stopped = False
        self._link.route_filter(f"{self.prefix}/#", self._on_ha_message)
        self._link.route_filter(f"{NATIVE_PREFIX}/+/config", self._on_native_message)
        self._link.route_filter(f"{TASMOTA_PREFIX}/+/+", self._on_tasmota_message)
        await self._link.async_subscribe_many(self.filters, qos=1)
        # Home Assistant's birth message: Zigbee2MQTT, Tasmota, ESPHome… re-send their configs
        self._link.add_birth_message(f"{self.prefix}/status", b"online")

    async def async_stop(self) -> None:
        # The link keeps its routes until it stops (it stops first when the gateway does).
        self._stopped = True

    # -- Home Assistant convention ------------------------------------------------------

    def _on_ha_message(self, topic: str, payload: bytes, message: aiomqtt.Message | None) -> None:
        if self._stopped:
            return
        self.received += 1
        levels = topic[len(self.prefix) + 1 :].split("/")
        if levels[-1] != "config":
            return  # e.g. homeassistant/status, Home Assistant's own birth message
        try:
            component, node_id, object_id = self._parse_topic(topic, levels[:-1])
            if not payload:
                self._remove(topic)
                return
            config = self._parse_config(payload)
            if component == DEVICE_COMPONENT:
                self._on_device_config(topic, object_id, config)
            else:
                self._on_entity_config(topic, component, node_id, object_id, config)
        except ConfigError as exc:
            self._reject(topic, str(exc), payload)

    def _parse_topic(self, topic: str, levels: list[str]) -> tuple[str, str | None, str]:
        if len(levels) == 2:
            component, node_id, object_id = levels[0], None, levels[1]
        elif len(levels) == 3:
            component, node_id, object_id = levels
        else:
            raise ConfigError(
                f"topic is not {self.prefix}/<component>/[<node_id>/]<object_id>/config "
                f"({len(levels) + 2} levels)"
            )
        if component != DEVICE_COMPONENT and component not in HA_COMPONENTS:
            raise ConfigError(
                f"unknown component {component[:64]!r}: not one of Home Assistant's MQTT platforms "
                f"({', '.join(sorted(HA_COMPONENTS)[:8])}, …)"
            )
        for what, value in (("node_id", node_id), ("object_id", object_id)):
            if value is not None and not _ID.match(value):
                raise ConfigError(
                    f"{what} {value[:64]!r} has characters other than A-Z a-z 0-9 _ - "
                    "(Home Assistant ignores such topics too)"
                )
        return component, node_id, object_id

    def _load(self, payload: bytes, what: str) -> Any:
        """An announcement's JSON, within discovery.mqtt.max_config_bytes; ConfigError otherwise."""
        if len(payload) > self.max_config_bytes:
            raise ConfigError(
                f"{what} of {len(payload)} bytes is over the {self.max_config_bytes}-byte limit "
                "(discovery.mqtt.max_config_bytes)"
            )
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{what} is not JSON: {exc}") from None

    def _parse_config(self, payload: bytes) -> dict[str, Any]:
        data = self._load(payload, "config")
        if type(data) is not dict:
            raise ConfigError(f"config must be a JSON object, not {type(data).__name__}")
        config = apply_topic_base(expand(data))
        problem = config_problem(config)
        if problem:
            raise ConfigError(f"config: {problem}")
        return config

    def _check_entity(self, component: str, config: dict[str, Any], where: str) -> None:
        if component in _REQUIRES_STATE and not config.get("state_topic"):
            raise ConfigError(f"{where}{component} config has no state_topic (stat_t)")
        if component in _REQUIRES_COMMAND and not config.get("command_topic"):
            raise ConfigError(f"{where}{component} config has no command_topic (cmd_t)")

    def _on_entity_config(
        self, topic: str, component: str, node_id: str | None, object_id: str, config: dict[str, Any]
    ) -> None:
        self._check_entity(component, config, "")
        device = config.get("device") or {}
        keys = _device_keys(device)
        if not keys:
            unique_id = config.get("unique_id")
            keys = [f"mqtt:{unique_id}"] if unique_id else []
        self._store(topic, keys, device, config.get("origin"), {("", component): (object_id, config)})

    def _on_device_config(self, topic: str, object_id: str, config: dict[str, Any]) -> None:
        device = config.get("device")
        if not isinstance(device, dict):
            raise ConfigError("device config has no device (dev) block")
        keys = _device_keys(device)
        if not keys:
            raise ConfigError("device config's device block has no identifiers (ids) or connections (cns)")
        components = config.get("components")
        if not isinstance(components, dict) or not components:
            raise ConfigError("device config has no components (cmps)")
        shared = {k: config[k] for k in _SHARED_KEYS if k in config}
        entities: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        for key, component_config in components.items():
            platform = component_config.get("platform")
            if not isinstance(platform, str) or platform not in HA_COMPONENTS:
                raise ConfigError(f"components.{key[:64]}.platform {platform!r} is not a known component")
            if set(component_config) <= {"platform"}:
                continue  # a component with only its platform is being removed
            merged = {**shared, **component_config}
            self._check_entity(platform, merged, f"components.{key[:64]}: ")
            entities[(key, platform)] = (str(merged.get("object_id") or key), merged)
        self._store(topic, keys, device, config.get("origin"), entities)

    def _store(
        self,
        topic: str,
        keys: list[str],
        device: dict[str, Any],
        origin: dict[str, Any] | None,
        entities: dict[tuple[str, str], tuple[str, dict[str, Any]]],
    ) -> None:
        keys = list(ordered([*keys, f"topic:{topic}"]))
        primary = keys[0]
        owner = self._topic_device.get(topic)
        if owner is not None and owner != primary:
            self._remove(topic)  # the config on this topic now belongs to another device
        record = self._devices.get(primary)
        if record is None:
            record = self._devices[primary] = _Device(keys=tuple(keys), device=device, origin=origin)
        else:
            record.keys = ordered([*record.keys, *keys])
            if device:
                record.device = {**record.device, **{k: v for k, v in device.items() if v is not None}}
            record.origin = origin or record.origin
        for entity_key in [k for k in record.entities if k[0] == topic]:
            del record.entities[entity_key]
        for (component_key, component), (object_id, config) in entities.items():
            record.entities[(topic, component_key or component)] = _Entity(component, object_id, config)
        self._topic_device[topic] = primary
        self._inbox.announce(self._announcement(record))

    def _remove(self, topic: str) -> None:
        primary = self._topic_device.pop(topic, None)
        record = self._devices.get(primary) if primary else None
        if record is None:
            self._inbox.withdraw((f"topic:{topic}",), Source.MQTT, "discovery config removed")
            return
        for entity_key in [k for k in record.entities if k[0] == topic]:
            del record.entities[entity_key]
        if record.entities:
            self._inbox.announce(self._announcement(record))
            return
        del self._devices[primary]  # type: ignore[arg-type]
        self._inbox.withdraw(record.keys, Source.MQTT, "discovery config removed (empty retained payload)")

    def _announcement(self, record: _Device) -> Announcement:
        device = record.device
        entities = list(record.entities.values())
        state_topics = collections.Counter(
            e.config["state_topic"] for e in entities if isinstance(e.config.get("state_topic"), str)
        )
        topic = state_topics.most_common(1)[0][0] if state_topics else None
        capabilities: list[ProposedCapability] = []
        unmapped: list[str] = []
        seen: set[str] = set()
        availability: list[str] = []
        for entity in entities:
            capability = entity.capability
            if capability is None:
                unmapped.append(f"{entity.component}/{entity.object_id}")
            elif capability.key not in seen:
                seen.add(capability.key)
                capabilities.append(capability)
            availability += entity.availability
        # The announcement is the model: what approval builds the device's profile from.
        records = [entity_record(e.component, e.object_id, e.config) for e in entities]
        manufacturer = device.get("manufacturer")
        first_name = next((e.config["name"] for e in entities if isinstance(e.config.get("name"), str)), None)
        config_topics = sorted({k[0] for k in record.entities})
        return Announcement(
            source=Source.MQTT,
            keys=record.keys,
            address=topic or config_topics[0],
            name=device.get("name") or first_name,
            manufacturer=manufacturer,
            model=device.get("model_id") or device.get("model"),
            firmware=device.get("sw_version"),
            category=_category(device, record.origin),
            topic=topic,
            facts=[
                {k: v for k, v in (("model", m), ("manufacturer", manufacturer)) if v}
                for m in _model_candidates(device)
            ],
            capabilities=capabilities,
            details={
                k: v
                for k, v in (
                    ("model_description", device.get("model") if device.get("model_id") else None),
                    ("hw_version", device.get("hw_version")),
                    ("serial_number", device.get("serial_number")),
                    ("suggested_area", device.get("suggested_area")),
                    ("via_device", device.get("via_device")),
                    ("origin", record.origin),
                    ("config_topics", config_topics),
                    ("availability_topics", sorted(set(availability)) or None),
                    ("unmapped", sorted(unmapped) or None),
                    ("entities", records or None),
                )
                if v
            },
        )

    # -- Tasmota's own discovery ---------------------------------------------------

    def _on_tasmota_message(self, topic: str, payload: bytes, message: aiomqtt.Message | None) -> None:
        if self._stopped:
            return
        self.received += 1
        mac, _, what = topic[len(TASMOTA_PREFIX) + 1 :].partition("/")
        if what not in ("config", "sensors"):
            return  # e.g. tasmota/discovery/<MAC>/status: not an announcement
        config_topic, sensors_topic = (f"{TASMOTA_PREFIX}/{mac}/{w}" for w in ("config", "sensors"))
        if not payload:
            known = self._tasmota.get(mac, {})
            for gone in ("config", "sensors") if what == "config" else ("sensors",):
                known.pop(gone, None)
                self._remove(config_topic if gone == "config" else sensors_topic)
            if not known:
                self._tasmota.pop(mac, None)
            return
        try:
            if not re.fullmatch(r"[0-9A-Fa-f]{12}", mac):
                raise ConfigError(f"{mac[:64]!r} in the topic is not a MAC address (12 hex digits)")
            data = self._load(payload, f"Tasmota {what} message")
            problem = tasmota_problem(data) if what == "config" else tasmota_sensors_problem(data)
            if problem:
                raise ConfigError(f"Tasmota {what}: {problem}")
            if what == "config" and str(data["mac"]).upper() != mac.upper():
                raise ConfigError(f"Tasmota config's mac {data['mac']!r} differs from the topic's {mac!r}")
            known = self._tasmota.setdefault(mac, {})
            previous = known.get(what)
            known[what] = data
            try:
                self._announce_tasmota(known, config_topic, sensors_topic)
            except ConfigError:
                if previous is None:
                    known.pop(what)
                else:
                    known[what] = previous
                raise
        except ConfigError as exc:
            self._reject(topic, str(exc), payload)

    def _announce_tasmota(
        self, known: dict[str, dict[str, Any]], config_topic: str, sensors_topic: str
    ) -> None:
        config = known.get("config")
        if config is None:
            return  # the sensors message waits for its device's config (topics are in it)
        try:
            parts = [(config_topic, relay_entities(config))]
            if "sensors" in known:
                parts.append((sensors_topic, sensor_entities(config, known["sensors"])))
        except TasmotaConfigError as exc:
            raise ConfigError(f"Tasmota config: {exc}") from None
        origin = {"name": "Tasmota", "sw_version": config.get("sw")}
        device = device_block(config)
        for topic, found in parts:
            entities: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
            for component, unique_id, entity in found:
                problem = config_problem(entity)
                if problem:
                    raise ConfigError(f"Tasmota {unique_id}: {problem}")
                entities[(unique_id, component)] = (str(entity["object_id"]), entity)
            self._store(topic, _device_keys(device), device, origin, entities)

    # -- Linli native --------------------------------------------------------------

    def _on_native_message(self, topic: str, payload: bytes, message: aiomqtt.Message | None) -> None:
        if self._stopped:
            return
        self.received += 1
        device_id = topic[len(NATIVE_PREFIX) + 1 : -len("/config")]
        if not payload:
            self._inbox.withdraw(
                (f"linli:{device_id}", f"topic:{topic}"), Source.MQTT, "announcement withdrawn"
            )
            return
        try:
            if not _ID.match(device_id) or len(device_id) > 64:
                raise ConfigError(f"device id {device_id[:64]!r} has characters other than A-Z a-z 0-9 _ -")
            data = self._load(payload, "announcement")
            problem = native_problem(data)
            if problem:
                raise ConfigError(f"announcement: {problem}")
            if data.get("id", device_id) != device_id:
                raise ConfigError(f"announcement id {data['id']!r} differs from the topic's {device_id!r}")
        except ConfigError as exc:
            self._reject(topic, str(exc), payload)
            return
        state_topic = data.get("state_topic") or f"{NATIVE_PREFIX}/{device_id}"
        model, manufacturer = data["model"], data.get("manufacturer")
        self._inbox.announce(
            Announcement(
                source=Source.MQTT,
                keys=(f"linli:{device_id}", f"topic:{topic}"),
                address=state_topic,
                name=data.get("name"),
                manufacturer=manufacturer,
                model=model,
                firmware=data.get("firmware"),
                category="linli",
                topic=state_topic,
                facts=[{k: v for k, v in (("model", model), ("manufacturer", manufacturer)) if v}],
                profile_hint=data.get("profile"),
                details={
                    k: v
                    for k, v in (
                        ("config_topics", [topic]),
                        (
                            "availability_topics",
                            [data["availability_topic"]] if "availability_topic" in data else None,
                        ),
                    )
                    if v
                },
            )
        )

    def _reject(self, topic: str, reason: str, payload: bytes) -> None:
        self._inbox.reject_invalid(
            Rejection(
                source=Source.MQTT,
                keys=(f"topic:{topic[:1024]}",),
                address=topic[:1024],
                reason=reason,
                excerpt=excerpt(payload) if payload else None,
            )
        )
