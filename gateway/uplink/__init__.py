"""The uplink to the regional tier: transactional outbox, relay, signed downlink.

Anything written in a `Store.async_write` function can go to the region in the
same transaction with `gateway.uplink.outbox.enqueue(db, kind, data)`.
"""

from linli.gateway.component import ComponentKey
from linli.gateway.uplink.component import Uplink
from linli.gateway.uplink.outbox import Retention, enqueue

#: This component, for typed lookup by its peers: `api.peer(UPLINK)` is a Uplink.
UPLINK: ComponentKey[Uplink] = ComponentKey("uplink", Uplink)

__all__ = ["UPLINK", "Retention", "Uplink", "enqueue"]
