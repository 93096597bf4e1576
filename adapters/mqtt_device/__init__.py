"""Drives any MQTT device that has a firmware profile."""

from linli.adapters.mqtt_device.adapter import MqttDeviceAdapter

__all__ = ["MqttDeviceAdapter"]
