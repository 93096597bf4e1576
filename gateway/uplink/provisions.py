"""What the uplink's reports count, offered by the components that own the data.

The uplink reports the community's open alerts and the alerts raised in each
rollup window, but the alerts are the alert engine's (a service above the core,
with its own tables): the engine provides these readers (gateway/component.py
`Provision`), and where no alert engine runs the reports say none.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Final

from linli.gateway.component import Provision

#: severity → how many alerts are open, read on the store's connection.
OpenAlerts = Callable[[sqlite3.Connection], dict[str, int]]
OPEN_ALERTS: Final[Provision[OpenAlerts]] = Provision("uplink.open_alerts")

#: kind → how many alerts were raised in [since, until), read on the store's connection.
AlertsRaised = Callable[[sqlite3.Connection, float, float], dict[str, int]]
ALERTS_RAISED: Final[Provision[AlertsRaised]] = Provision("uplink.alerts_raised")
