"""What can go wrong between the gateway and a set-top box, as command errors with stable codes.

`NotSupportedError` and `UnavailableError` come from `gateway.commands` so that
a service sees the same error whether the device is an MQTT plug or a box.
"""

from __future__ import annotations

from linli.gateway.commands import CommandError, UnavailableError


class InvalidCommandError(CommandError):
    """A verb the box can do, with parameters that do not match the contract's schema."""

    code = "invalid_command"


class BoxUnreachableError(UnavailableError):
    """The box did not answer: off, unplugged, or off the network.

    `last_seen` (epoch seconds) is when the gateway last heard from it, if ever.
    """

    def __init__(self, message: str, *, last_seen: float | None = None) -> None:
        super().__init__(message)
        self.last_seen = last_seen


class BoxAnswerError(CommandError):
    """The box answered, but with something unusable (malformed, too big, a fault)."""

    code = "box_error"
