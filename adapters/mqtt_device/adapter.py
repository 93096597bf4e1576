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

from gateway.capabilities import STB_KINDS
from gateway.commands import Command, NotSupportedError, UnavailableError
from gateway.context import Context
from gateway.events import DeviceAdded, DeviceRemoved, PayloadRejected
from gateway.mqtt.topics import DEVICE_AVAILABILITY_FILTER, DEVICE_STATE_FILTER, PREFIX
from gateway.profiles import MappingError
from gateway.registry import Device
from gateway.runtime import Gateway

_LOGGER = logging.getLogger(__name__)
_REPORT_EVERY_S: Final = 60.0


class MqttDeviceAdapter:
    """Component `mqtt_device`: every registered device with an MQTT state topic."""

    name = "mqtt_device"
    requires = ("registry", "mqtt")

    def __init__(self) -> None:
        self._gateway: Gateway | None = None
        self._max_payload = 65536
        self._last_report: dict[str, float] = {}
        self._unlisten: list[Any] = []
        self._subscribed: set[str] = set()
        self._resubscribe_pending = False
        self._routes: dict[str, tuple[str, str | None]] = {}
        self._by_availability: dict[str, Device] = {}
        self.accepted = 0
        self.rejected = 0
        self.rejected_by_device: dict[str, int] = {}

    async def async_start(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._max_payload = gateway.config["mqtt"]["max_payload_bytes"]
        for device in gateway.registry.iter_devices():
            self._attach(device)
        for topic_filter in (DEVICE_STATE_FILTER, DEVICE_AVAILABILITY_FILTER):
            await gateway.mqtt.async_subscribe(topic_filter, qos=1)
        await self._subscribe_foreign()
        self._unlisten = [
            gateway.bus.listen(DeviceAdded, self._on_device_added),
            gateway.bus.listen(DeviceRemoved, self._on_device_removed),
        ]

    async def async_stop(self) -> None:
        for unlisten in self._unlisten:
            unlisten()
        self._unlisten = []
        gateway = self._gateway
        if gateway is not None:
            for device_id in list(self._routes):
                self._detach(device_id)

    # -- routing -----------------------------------------------------------------

    def _attach(self, device: Device) -> None:
        gateway = self._gateway
        assert gateway is not None
        if all(cap.kind in STB_KINDS for cap in device.profile.capabilities):
            return  # a set-top box: its own adapter drives it over HTTP, not MQTT
        gateway.mqtt.route_exact(device.topic, self._on_state)
        availability = device.availability_topic
        if availability:
            gateway.mqtt.route_exact(availability, self._on_availability)
            self._by_availability[availability] = device
        self._routes[device.id] = (device.topic, availability)
        gateway.commands.register(device.id, self.async_command)

    def _detach(self, device_id: str) -> None:
        gateway = self._gateway
        assert gateway is not None
        topic, availability = self._routes.pop(device_id, (None, None))
        if topic:
            gateway.mqtt.unroute_exact(topic)
        if availability:
            gateway.mqtt.unroute_exact(availability)
            self._by_availability.pop(availability, None)
        gateway.commands.unregister(device_id)

    def _foreign_filters(self) -> set[str]:
        """Subscriptions for devices outside linli/v1 (e.g. zigbee2mqtt/<name>)."""
        assert self._gateway is not None
        filters = set()
        for device in self._gateway.registry.iter_devices():
            if not device.topic.startswith(PREFIX + "/"):
                filters.add(device.topic)
                if device.availability_topic:
                    filters.add(device.availability_topic)
        return filters

    async def _subscribe_foreign(self) -> None:
        assert self._gateway is not None
        self._resubscribe_pending = False
        topics = sorted(self._foreign_filters() - self._subscribed)
        self._subscribed.update(topics)
        if topics:
            await self._gateway.mqtt.async_subscribe_many(topics, qos=1)

    def _on_device_added(self, event: DeviceAdded) -> None:
        assert self._gateway is not None
        device = self._gateway.registry.device(event.device_id)
        if device is not None:
            self._attach(device)
            if not device.topic.startswith(PREFIX + "/") and not self._resubscribe_pending:
                # One subscribe for a whole burst of adoptions, not one per device.
                self._resubscribe_pending = True
                self._gateway.spawn(self._subscribe_foreign(), "mqtt_device-subscribe")

    def _on_device_removed(self, event: DeviceRemoved) -> None:
        self._detach(event.device_id)

    # -- ingest (hot path) -------------------------------------------------------

    def _on_state(self, topic: str, payload: bytes, message: aiomqtt.Message | None) -> None:
        gateway = self._gateway
        assert gateway is not None
        device = gateway.registry.device_by_topic(topic)
        if device is None:
            return
        if len(payload) > self._max_payload:
            self._reject(
                device,
                topic,
                f"payload of {len(payload)} bytes is over the "
                f"{self._max_payload}-byte limit (mqtt.max_payload_bytes)",
                payload,
            )
            return
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            self._reject(device, topic, f"not JSON: {exc}", payload)
            return
        if type(data) is not dict:
            self._reject(device, topic, f"expected a JSON object, got {type(data).__name__}", payload)
            return
        try:
            values = device.profile.map_payload(data)
        except MappingError as exc:
            self._reject(device, topic, str(exc), payload)
            return
        self.accepted += 1
        gateway.registry.report(device, values, time.time(), self.name)

    def _on_availability(self, topic: str, payload: bytes, message: aiomqtt.Message) -> None:
        gateway = self._gateway
        assert gateway is not None
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
        gateway = self._gateway
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
        gateway = self._gateway
        assert gateway is not None
        device = gateway.registry.device(command.device_id)
        if device is None:
            raise UnavailableError(f"device {command.device_id!r} was removed")
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
