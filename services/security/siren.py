"""Driving a household's sirens: every device capability of kind `siren` that takes commands.

Some sirens sound only for a fixed time per command (a Zigbee IAS warning
device driven through Zigbee2MQTT sounds 10 s unless told otherwise), so while
the alarm sounds the service repeats the command every `REPEAT_S`; repeating it
is harmless for sirens that latch.
"""

from __future__ import annotations

import logging
from typing import Final

from gateway.commands import CommandError, Commands
from gateway.context import Context
from gateway.registry import Registry

_LOGGER = logging.getLogger(__name__)
REPEAT_S: Final = 8.0


def sirens(registry: Registry, household_id: str) -> list[tuple[str, str]]:
    """(device id, capability key) of each commandable siren in the household."""
    return [
        (device.id, cap.key)
        for device in registry.household_devices(household_id)
        for cap in device.profile.capabilities
        if cap.kind == "siren" and cap.access != "r"
    ]


async def async_sound(
    commands: Commands, targets: list[tuple[str, str]], on: bool, context: Context
) -> list[str]:
    """Turn the sirens on or off; returns the devices that took the command.

    A siren that cannot be reached is logged and skipped: the alert is raised
    whatever the sirens do.
    """
    reached = []
    for device_id, capability in targets:
        try:
            await commands.async_send(device_id, capability, on, context=context)
        except CommandError as exc:
            _LOGGER.warning(
                "siren %s could not be turned %s: %s", device_id, "on" if on else "off", exc.message
            )
        else:
            reached.append(device_id)
    return reached
