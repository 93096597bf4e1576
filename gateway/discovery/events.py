"""Bus events of the discovery inbox (the portal's live views listen to these)."""

from __future__ import annotations

from dataclasses import dataclass

from linli.gateway.events import Event


@dataclass(slots=True, kw_only=True)
class InboxChanged(Event):
    """An inbox item appeared, changed status, or changed what is known about it.

    `change` is one of: new, updated, unavailable, approved, rejected, ignored,
    restored, reopened, invalid. Decisions carry the deciding person in
    `context.user`; approvals carry the household in `context.household`.
    """

    item_id: str
    status: str
    change: str
