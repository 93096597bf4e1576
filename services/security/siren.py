"""Driving a household's sirens: every device capability of kind `siren` that takes commands.

Siren commands go out in their own tasks, in order per household, so that a
slow or unreachable siren never holds up the alarm panel (or a disarm). Some
sirens sound only for a fixed time per command (a Zigbee IAS warning device
driven through Zigbee2MQTT sounds 10 s unless told otherwise), so while the
alarm sounds the service repeats the command every `REPEAT_S`; repeating it is
harmless for sirens that latch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from linli.gateway.commands import CommandError, Commands
from linli.gateway.context import Context
from linli.gateway.registry import Registry

_LOGGER = logging.getLogger(__name__)
REPEAT_S: Final = 8.0
COMMAND_TIMEOUT_S: Final = 5.0


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
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                await commands.async_send(device_id, capability, on, context=context)
        except (CommandError, TimeoutError) as exc:
            reason = exc.message if isinstance(exc, CommandError) else f"no answer in {COMMAND_TIMEOUT_S:g} s"
            _LOGGER.warning("siren %s could not be turned %s: %s", device_id, "on" if on else "off", reason)
        else:
            reached.append(device_id)
    return reached


class SirenDriver:
    """Sends siren commands in the background, one household's commands in the order given."""

    def __init__(self, registry: Registry, commands: Commands) -> None:
        self._registry = registry
        self._commands = commands
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def sound(self, household_id: str, on: bool) -> None:
        """Turn the household's sirens on or off (returns at once)."""
        targets = sirens(self._registry, household_id)
        if not targets:
            return
        lock = self._locks.setdefault(household_id, asyncio.Lock())
        context = Context(household=household_id, origin="security")

        async def send() -> None:
            async with lock:  # asyncio.Lock is FIFO: an "off" never overtakes an earlier "on"
                await async_sound(self._commands, targets, on, context)

        task = asyncio.create_task(send(), name="linli-security-siren")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def async_close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
