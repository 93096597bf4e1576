"""Adapters: plug-ins that connect device families and set-top boxes to the core.

Adapters reach the core only through the gateway's bus, registry, commands and
MQTT link — never each other.
"""
