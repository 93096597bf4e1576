"""Drives any MQTT device that has a firmware profile."""

from linli.adapters.mqtt_device.adapter import MqttDeviceAdapter
from linli.gateway.component import ComponentKey

#: This component, for typed lookup by its peers: `api.peer(MQTT_DEVICES)` is a MqttDeviceAdapter.
MQTT_DEVICES: ComponentKey[MqttDeviceAdapter] = ComponentKey("mqtt_device", MqttDeviceAdapter)

__all__ = ["MQTT_DEVICES", "MqttDeviceAdapter"]
