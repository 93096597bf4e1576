"""The context every event, command and state change carries.

Like Home Assistant's `Context`, it makes causality and audit free; unlike it,
ours also carries the household, so that every listener can be scoped to one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linli.common.ids import new_id


# Not frozen: a frozen dataclass's __init__ is twice as slow, and one is made per message.
@dataclass(slots=True, kw_only=True)
class Context:
    """Who or what caused something, for which household."""

    id: int = field(default_factory=new_id)
    household: str | None = None
    origin: str = "gateway"
    user: str | None = None
    parent: int | None = None

    def child(self, *, origin: str | None = None) -> Context:
        """A context for something this one caused."""
        return Context(
            household=self.household,
            origin=origin or self.origin,
            user=self.user,
            parent=self.id,
        )
