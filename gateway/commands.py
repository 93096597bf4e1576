"""Commands to devices, routed to whichever adapter drives the device.

Services and the portal call `Commands.async_send(...)`; they never know which
adapter is behind a device. A verb a device cannot do gets the one uniform
`NotSupportedError` (code `not_supported`), from every adapter alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from linli.gateway.context import Context
from linli.gateway.errors import LinliError


class CommandError(LinliError):
    """A command that failed; the class's `code` is stable for API clients."""

    code = "command_failed"

    def __init__(self, message: str) -> None:
        super().__init__(type(self).code, message)


class NotSupportedError(CommandError):
    code = "not_supported"


class UnavailableError(CommandError):
    code = "unavailable"


class UnknownDeviceError(CommandError):
    code = "unknown_device"


@dataclass(slots=True, kw_only=True)
class Command:
    device_id: str
    capability: str
    value: Any
    context: Context


CommandHandler = Callable[[Command], Awaitable[Any]]


class Commands:
    """Maps a device id to the adapter handler that can command it."""

    def __init__(self) -> None:
        self._handlers: dict[str, CommandHandler] = {}

    def register(self, device_id: str, handler: CommandHandler) -> None:
        self._handlers[device_id] = handler

    def unregister(self, device_id: str) -> None:
        self._handlers.pop(device_id, None)

    async def async_send(
        self, device_id: str, capability: str, value: Any, *, context: Context | None = None
    ) -> Any:
        handler = self._handlers.get(device_id)
        if handler is None:
            raise UnknownDeviceError(f"no device {device_id!r} takes commands here")
        command = Command(
            device_id=device_id,
            capability=capability,
            value=value,
            context=context or Context(origin="command"),
        )
        return await handler(command)
