"""The MQTT device adapter: payload → validated capability values → registry; commands back.

The ingest hot path is `_on_state`, called from the MQTT receive callback for
every message on a device's state topic. It parses with orjson, maps with the
profile's compiled extractors and checks, and hands the values to the
registry (state, bus events, batched persistence). Nothing in it awaits.

Bad payloads are refused, kept in the quarantine table (at most one a minute
per device, with a count) and logged once per device per minute; the device
and everything else keep working.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import aiomqtt
import orjson

from linli.gateway.capabilities import STB_KINDS
from linli.gateway.commands import Command, NotSupportedError, UnavailableError
from linli.gateway.component import ComponentApi
from linli.gateway.context import Context
from linli.gateway.discovery.ha_mapping import EMERGENCY_EVENTS
from linli.gateway.discovery.ha_profile import AnnouncedProfile, Availability
from linli.gateway.events import DeviceAdded, DeviceEvent, DeviceRemoved, PayloadRejected, ProfilesChanged
from linli.gateway.mqtt.topics import DEVICE_AVAILABILITY_FILTER, DEVICE_STATE_FILTER, PREFIX
from linli.gateway.profiles import MappingError
from linli.gateway.profiles.templates import MISSING, TemplateFailed, TemplateRefused
from linli.gateway.profiles.values import PlainPayloadError, plain_value
from linli.gateway.registry import Device

_LOGGER = logging.getLogger(__name__)
_REPORT_EVERY_S: Final = 60.0


class MqttDeviceAdapter:
    """Component `mqtt_device`: every registered device with an MQTT state topic."""

    name = "mqtt_device"
    requires = ("registry", "mqtt")

    def __init__(self) -> None:
        self._api: ComponentApi | None = None
        self._max_payload = 65536
        self._last_report: dict[str, float] = {}
        self._subscribed: set[str] = set()
        self._resubscribe_pending = False
        self._routes: dict[str, tuple[str, str | None]] = {}
        self._by_availability: dict[str, Device] = {}
        # Devices adopted from their announcement (gateway/discovery/ha_profile.py): each may
        # read several state topics (wildcards too) and several availability topics, and a
        # bridge's availability topic is shared by all its devices.
        self._announced_topics: dict[str, dict[str, str]] = {}  # actual topic → device id → announced topic
        self._announced_filters: dict[str, dict[str, str]] = {}  # wildcard filter → device id → filter
        self._availability_of: dict[str, set[str]] = {}  # topic → device ids
        self._availability_seen: dict[str, dict[str, bool]] = {}  # device id → topic → online
        self._actual: dict[str, dict[str, str]] = {}  # device id → announced topic → actual topic
        self._bridges: set[str] = set()  # Zigbee2MQTT base topics of adopted devices
        # Which household owns a topic a filter matched (its bridge's, or a registered device's):
        # a device adopted with a filter takes no other household's messages. Cleared whenever
        # the credentials change (a bridge added or revoked).
        self._owners: dict[str, str | None] = {}
        self.accepted = 0
        self.rejected = 0
        self.rejected_by_device: dict[str, int] = {}

    async def async_start(self, api: ComponentApi) -> None:
        self._api = api
        self._max_payload = api.config["mqtt"]["max_payload_bytes"]
        for device in api.registry.iter_devices():
            self._attach(device)
        for topic_filter in (DEVICE_STATE_FILTER, DEVICE_AVAILABILITY_FILTER):
            await api.mqtt.async_subscribe(topic_filter, qos=1)
        await self._subscribe_foreign()
        api.on_stop(api.mqtt_credentials.on_change(self._owners.clear))
        api.bus.listen(DeviceAdded, self._on_device_added)
        api.bus.listen(DeviceRemoved, self._on_device_removed)
        api.bus.listen(ProfilesChanged, self._on_profiles_changed)

    async def async_stop(self) -> None:
        gateway = self._api
        if gateway is not None:
            for device_id in list(self._routes):
                self._detach(device_id)

    # -- routing -----------------------------------------------------------------

    def _attach(self, device: Device) -> None:
        gateway = self._api
        assert gateway is not None
        if all(cap.kind in STB_KINDS for cap in device.profile.capabilities):
            return  # a set-top box: its own adapter drives it over HTTP, not MQTT
        if isinstance(device.profile, AnnouncedProfile):
            self._attach_announced(device, device.profile)
            return
        gateway.mqtt.route_exact(device.topic, self._on_state)
        availability = device.availability_topic
        if availability:
            gateway.mqtt.route_exact(availability, self._on_availability)
            self._by_availability[availability] = device
        self._routes[device.id] = (device.topic, availability)
        gateway.commands.register(device.id, self.async_command)

    def _attach_announced(self, device: Device, profile: AnnouncedProfile) -> None:
        gateway = self._api
        assert gateway is not None
        actual = self._actual.setdefault(device.id, {})
        for topic in profile.state_topics:
            self._route_state(device.id, topic, actual.get(topic, topic))
        for availability in profile.availabilities:
            topic = actual.get(availability.topic, availability.topic)
            actual.setdefault(availability.topic, topic)
            self._availability_of.setdefault(topic, set()).add(device.id)
            gateway.mqtt.route_exact(topic, self._on_availability)
        if profile.bridge and profile.bridge not in self._bridges:
            self._bridges.add(profile.bridge)
            for suffix in ("bridge/response/device/rename", "bridge/devices"):
                gateway.mqtt.route_exact(f"{profile.bridge}/{suffix}", self._on_bridge)
        self._routes[device.id] = (device.topic, None)
        gateway.commands.register(device.id, self.async_command)

    def _route_state(self, device_id: str, announced: str, actual: str) -> None:
        gateway = self._api
        assert gateway is not None
        self._actual.setdefault(device_id, {})[announced] = actual
        if "+" in actual or "#" in actual:  # OpenMQTTGateway's `+/+/BTtoMQTT/<mac>`
            if actual not in self._announced_filters:
                gateway.mqtt.route_filter(actual, self._on_announced_filtered)
            self._announced_filters.setdefault(actual, {})[device_id] = announced
        else:
            self._announced_topics.setdefault(actual, {})[device_id] = announced
            gateway.mqtt.route_exact(actual, self._on_announced)

    def _detach_announced(self, device_id: str) -> None:
        gateway = self._api
        assert gateway is not None
        for table in (self._announced_topics, self._announced_filters):
            for topic in [t for t, devices in table.items() if device_id in devices]:
                del table[topic][device_id]
                if not table[topic]:
                    del table[topic]
                    if table is self._announced_topics:
                        gateway.mqtt.unroute_exact(topic)
        for topic in [t for t, devices in self._availability_of.items() if device_id in devices]:
            self._availability_of[topic].discard(device_id)
            if not self._availability_of[topic]:
                del self._availability_of[topic]
                gateway.mqtt.unroute_exact(topic)
        self._availability_seen.pop(device_id, None)
        self._actual.pop(device_id, None)

    def _detach(self, device_id: str) -> None:
        gateway = self._api
        assert gateway is not None
        self._detach_announced(device_id)
        topic, availability = self._routes.pop(device_id, (None, None))
        if topic:
            gateway.mqtt.unroute_exact(topic)
        if availability:
            gateway.mqtt.unroute_exact(availability)
            self._by_availability.pop(availability, None)
        gateway.commands.unregister(device_id)

    def _foreign_filters(self) -> set[str]:
        """Subscriptions for devices outside linli/v1 (e.g. zigbee2mqtt/<name>)."""
        assert self._api is not None
        filters = set()
        for device in self._api.registry.iter_devices():
            if not device.topic.startswith(PREFIX + "/"):
                filters.add(device.topic)
                if device.availability_topic:
                    filters.add(device.availability_topic)
        for actual in self._actual.values():
            filters.update(actual.values())
        for bridge in self._bridges:
            filters.update((f"{bridge}/bridge/response/device/rename", f"{bridge}/bridge/devices"))
        return filters

    async def _subscribe_foreign(self) -> None:
        assert self._api is not None
        self._resubscribe_pending = False
        topics = sorted(self._foreign_filters() - self._subscribed)
        self._subscribed.update(topics)
        if topics:
            await self._api.mqtt.async_subscribe_many(topics, qos=1)

    def _on_device_added(self, event: DeviceAdded) -> None:
        assert self._api is not None
        self._owners.clear()
        device = self._api.registry.device(event.device_id)
        if device is not None:
            self._attach(device)
            if not device.topic.startswith(PREFIX + "/") and not self._resubscribe_pending:
                # One subscribe for a whole burst of adoptions, not one per device.
                self._resubscribe_pending = True
                self._api.spawn(self._subscribe_foreign(), "mqtt_device-subscribe")

    def _on_profiles_changed(self, event: ProfilesChanged) -> None:
        # A reload of the profile folders replaced the set; devices adopted from their
        # announcement keep their profile, and the set must keep knowing it (the registry
        # looks profiles up by id).
        assert self._api is not None
        removed = set(event.removed)
        for device in self._api.registry.iter_devices():
            if isinstance(device.profile, AnnouncedProfile) and device.profile.id in removed:
                self._api.profiles.profiles[device.profile.id] = device.profile

    def _on_device_removed(self, event: DeviceRemoved) -> None:
        self._owners.clear()
        self._detach(event.device_id)

    # -- ingest (hot path) -------------------------------------------------------

    def _on_state(self, topic: str, payload: bytes, message: aiomqtt.Message | None) -> None:
        gateway = self._api
        assert gateway is not None
        device = gateway.registry.device_by_topic(topic)
        if device is None:
            return
        if self._oversized(device, topic, payload):
            return
        json_error = None
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            data, json_error = None, exc
        if type(data) is not dict:
            # One plain value (`23.5`, `ON`): the reading of a profile with one capability.
            try:
                data = self._plain(device, payload)
            except PlainPayloadError as exc:
                # Said as it is: a payload that is not JSON at all, to a device that sends objects.
                reason = f"not JSON ({json_error}); {exc}" if json_error is not None else str(exc)
                self._reject(device, topic, reason, payload)
                return
        try:
            values = device.profile.map_payload(data)
        except MappingError as exc:
            self._reject(device, topic, str(exc), payload)
            return
        self.accepted += 1
        gateway.registry.report(device, values, time.time(), self.name)

    @staticmethod
    def _plain(device: Device, payload: bytes) -> dict[str, Any]:
        sources = [cap.source for cap in device.profile.capabilities if isinstance(cap.source, str)]
        if len(sources) != 1:
            raise PlainPayloadError(
                f"expected a JSON object: a plain value is read only by a profile with one "
                f"capability, and {device.profile.id} has {len(device.profile.capabilities)}"
            )
        return {sources[0]: plain_value(payload)}

    # -- devices adopted from their announcement ---------------------------------

    def _on_announced(self, topic: str, payload: bytes, message: aiomqtt.Message | None) -> None:
        for device_id, announced in list(self._announced_topics.get(topic, {}).items()):
            self._read_announced(device_id, announced, topic, payload)

    def _on_announced_filtered(self, topic: str, payload: bytes, message: aiomqtt.Message | None) -> None:
        if topic.startswith(PREFIX + "/"):
            return  # Linli's own topics are never a filtered device's (inbox refuses such filters)
        owner = self._owner(topic)
        for topic_filter, devices in list(self._announced_filters.items()):
            if aiomqtt.Topic(topic).matches(topic_filter):
                for device_id, announced in list(devices.items()):
                    if owner is not None and owner != self._household_of(device_id):
                        continue  # another household's gateway heard it: not this device's reading
                    self._read_announced(device_id, announced, topic, payload)

    def _owner(self, topic: str) -> str | None:
        gateway = self._api
        assert gateway is not None
        if topic in self._owners:
            return self._owners[topic]
        owner = gateway.mqtt_credentials.household_for_topic(topic)
        if owner is None and (device := gateway.registry.device_by_topic(topic)) is not None:
            owner = device.household_id
        if len(self._owners) >= 4096:  # topics heard through filters: bounded, whoever publishes
            self._owners.clear()
        self._owners[topic] = owner
        return owner

    def _household_of(self, device_id: str) -> str | None:
        assert self._api is not None
        device = self._api.registry.device(device_id)
        return device.household_id if device is not None else None

    def _oversized(self, device: Device, topic: str, payload: bytes) -> bool:
        """Refuse (and quarantine) a payload over mqtt.max_payload_bytes; True when it was."""
        if len(payload) <= self._max_payload:
            return False
        self._reject(
            device,
            topic,
            f"payload of {len(payload)} bytes is over the "
            f"{self._max_payload}-byte limit (mqtt.max_payload_bytes)",
            payload,
        )
        return True

    def _read_announced(self, device_id: str, announced: str, topic: str, payload: bytes) -> None:
        gateway = self._api
        assert gateway is not None
        device = gateway.registry.device(device_id)
        if device is None or not isinstance(device.profile, AnnouncedProfile):
            return
        if self._oversized(device, topic, payload):
            return
        reading = device.profile.read(announced, payload)
        now = time.time()
        if reading.problems:
            self._reject(device, topic, "; ".join(reading.problems), payload)
        if reading.values:
            self.accepted += 1
            gateway.registry.report(device, reading.values, now, self.name)
        elif reading.events:
            device.last_seen = now
            if not device.available:
                gateway.registry.set_available(device, True, now, "reported")
        for reader, event_type, data in reading.events:
            gateway.bus.fire(
                DeviceEvent(
                    device_id=device.id,
                    capability=reader.key,
                    kind=reader.kind,
                    event_type=event_type,
                    emergency=reader.emergency or event_type in EMERGENCY_EVENTS,
                    ts=now,
                    data=data,
                    context=Context(household=device.household_id, origin=self.name),
                )
            )

    def _announced_availability(self, topic: str, payload: bytes) -> None:
        gateway = self._api
        assert gateway is not None
        for device_id in list(self._availability_of.get(topic, ())):
            device = gateway.registry.device(device_id)
            if device is None or not isinstance(device.profile, AnnouncedProfile):
                continue
            announced = next(
                (a for a in device.profile.availabilities if self._actual[device_id].get(a.topic) == topic),
                None,
            )
            online = _availability_state(announced, payload) if announced is not None else None
            if online is None:
                continue
            seen = self._availability_seen.setdefault(device_id, {})
            seen[topic] = online
            mode = device.profile.availability_mode
            if mode == "all":
                available = all(seen.values())
            elif mode == "any":
                available = any(seen.values())
            else:
                available = online
            reason = f"{topic}: {'online' if online else 'offline'}"
            gateway.registry.set_available(device, available, time.time(), reason)

    def _on_bridge(self, topic: str, payload: bytes, message: aiomqtt.Message | None) -> None:
        """Zigbee2MQTT renamed a device: follow it to its new state topic, keeping its state."""
        bridge, _, what = topic.partition("/bridge/")
        try:
            data = orjson.loads(payload) if payload else None
        except orjson.JSONDecodeError:
            return
        names: dict[str, str] = {}  # old friendly name → new
        if what == "response/device/rename" and type(data) is dict and data.get("status") == "ok":
            body = data.get("data") or {}
            if isinstance(body.get("from"), str) and isinstance(body.get("to"), str):
                names[body["from"]] = body["to"]
        elif what == "devices" and type(data) is list:
            names = self._renamed_in_list(bridge, data)
        for old, new in names.items():
            self._follow_rename(bridge, old, new)

    def _renamed_in_list(self, bridge: str, devices: list[Any]) -> dict[str, str]:
        gateway = self._api
        assert gateway is not None
        by_ieee = {
            str(d.get("ieee_address", "")).lower().removeprefix("0x"): d.get("friendly_name")
            for d in devices
            if type(d) is dict and isinstance(d.get("friendly_name"), str)
        }
        names: dict[str, str] = {}
        for device_id, actual in self._actual.items():
            device = gateway.registry.device(device_id)
            if device is None or not (device.unique_id or "").startswith("ieee:"):
                continue
            name = by_ieee.get((device.unique_id or "")[5:])
            current = actual.get(device.topic, device.topic)
            if name and current.startswith(bridge + "/") and current[len(bridge) + 1 :] != name:
                names[current[len(bridge) + 1 :]] = name
        return names

    def _follow_rename(self, bridge: str, old: str, new: str) -> None:
        gateway = self._api
        assert gateway is not None
        before, after = f"{bridge}/{old}", f"{bridge}/{new}"
        for device_id, actual in list(self._actual.items()):
            moves = {
                announced: after + current[len(before) :]
                for announced, current in actual.items()
                if current == before or current.startswith(before + "/")
            }
            if not moves:
                continue
            device = gateway.registry.device(device_id)
            if device is None:
                continue
            self._detach_announced(device_id)
            self._actual[device_id] = {**actual, **moves}
            assert isinstance(device.profile, AnnouncedProfile)
            self._attach_announced(device, device.profile)
            _LOGGER.info("device %s renamed in Zigbee2MQTT: %s → %s; following it", device_id, before, after)
        if not self._resubscribe_pending:
            self._resubscribe_pending = True
            gateway.spawn(self._subscribe_foreign(), "mqtt_device-subscribe")

    def _on_availability(self, topic: str, payload: bytes, message: aiomqtt.Message) -> None:
        gateway = self._api
        assert gateway is not None
        if topic in self._availability_of:
            self._announced_availability(topic, payload)
        device = self._by_availability.get(topic)
        if device is None:
            return
        text = payload.decode("utf-8", "replace").strip()
        if text.startswith("{"):  # Zigbee2MQTT's JSON form: {"state": "online"}
            try:
                text = str(orjson.loads(payload).get("state", ""))
            except (orjson.JSONDecodeError, AttributeError):
                text = ""
        profile = device.profile
        if text == profile.payload_available:
            gateway.registry.set_available(device, True, time.time(), "availability topic")
        elif text == profile.payload_not_available:
            gateway.registry.set_available(device, False, time.time(), "availability topic")

    def _reject(self, device: Device, topic: str, reason: str, payload: bytes) -> None:
        gateway = self._api
        assert gateway is not None
        self.rejected += 1
        count = self.rejected_by_device.get(device.id, 0) + 1
        self.rejected_by_device[device.id] = count
        now = time.time()
        if now - self._last_report.get(device.id, 0.0) < _REPORT_EVERY_S:
            return
        self._last_report[device.id] = now
        _LOGGER.warning(
            "payload from %s (%s) rejected: %s [%d rejected from this device so far]",
            device.id,
            topic,
            reason,
            count,
        )
        gateway.store.append_quarantine(now, topic, device.id, reason, payload)
        gateway.bus.fire(
            PayloadRejected(
                topic=topic,
                device_id=device.id,
                reason=reason,
                ts=now,
                context=Context(household=device.household_id, origin=self.name),
            )
        )

    # -- commands ----------------------------------------------------------------

    async def async_command(self, command: Command) -> dict[str, Any]:
        gateway = self._api
        assert gateway is not None
        device = gateway.registry.device(command.device_id)
        if device is None:
            raise UnavailableError(f"device {command.device_id!r} was removed")
        if isinstance(device.profile, AnnouncedProfile):
            return await self._command_announced(device, device.profile, command)
        cap = device.profile.capability(command.capability)
        if cap is None or cap.access == "r" or cap.command_topic is None:
            raise NotSupportedError(
                f"{device.profile.id} cannot do {command.capability!r}"
                + (" (read-only)" if cap is not None else "")
            )
        if not cap.check(command.value):
            raise NotSupportedError(
                f"{command.capability}: {command.value!r} is not a valid value ({cap.schema})"
            )
        field = cap.command_field or str(cap.source)
        body: dict[str, Any] = {}
        node = body
        parts = field.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = cap.to_device(command.value)
        topic = device.resolve_topic(cap.command_topic)
        try:
            await gateway.mqtt.async_publish(topic, orjson.dumps(body), qos=1)
        except Exception as exc:
            raise UnavailableError(f"cannot reach {device.id}: {exc}") from exc
        return {"device_id": device.id, "topic": topic, "payload": body}

    async def _command_announced(
        self, device: Device, profile: AnnouncedProfile, command: Command
    ) -> dict[str, Any]:
        """As Home Assistant sends it: `payload_on`/`payload_off` as they are, on `command_topic`."""
        gateway = self._api
        assert gateway is not None
        cap = profile.capability(command.capability)
        if cap is None or cap.access == "r":
            raise NotSupportedError(
                f"{device.name} cannot do {command.capability!r}"
                + (" (read-only)" if cap is not None else "")
            )
        if not cap.check(command.value):
            raise NotSupportedError(
                f"{command.capability}: {command.value!r} is not a valid value ({cap.schema})"
            )
        target = profile.command(command.capability, command.value)
        if target is None:
            raise NotSupportedError(f"{device.name} announced no command topic for {command.capability!r}")
        topic, body = target
        topic = self._actual.get(device.id, {}).get(topic, _renamed(topic, self._actual.get(device.id, {})))
        try:
            await gateway.mqtt.async_publish(topic, body, qos=1)
        except Exception as exc:
            raise UnavailableError(f"cannot reach {device.id}: {exc}") from exc
        return {"device_id": device.id, "topic": topic, "payload": body.decode("utf-8", "replace")}


def _renamed(topic: str, actual: dict[str, str]) -> str:
    """A command topic under a renamed state topic moves with it (`zigbee2mqtt/old/set`)."""
    for announced, current in actual.items():
        if announced != current and topic.startswith(announced + "/"):
            return current + topic[len(announced) :]
    return topic


def _availability_state(availability: Availability, payload: bytes) -> bool | None:
    """True/False for an announced availability message; None for anything else."""
    text = payload.decode("utf-8", "replace").strip()
    if availability.template is not None:
        try:
            value_json: Any = orjson.loads(payload)
        except orjson.JSONDecodeError:
            value_json = MISSING
        try:
            rendered = availability.template.render(text, value_json)
        except (TemplateRefused, TemplateFailed):
            rendered = MISSING
        text = text if rendered is MISSING else rendered
    if text.startswith("{"):  # Zigbee2MQTT's JSON form without a template: {"state": "online"}
        try:
            text = str(orjson.loads(text).get("state", ""))
        except (orjson.JSONDecodeError, AttributeError):
            return None
    if text == availability.online:
        return True
    if text == availability.offline:
        return False
    return None
