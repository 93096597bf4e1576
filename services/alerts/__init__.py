"""The alert engine every service raises alerts through (durable, escalating)."""

from linli.gateway.component import ComponentKey
from linli.services.alerts.engine import AlertEngine
from linli.services.alerts.model import Alert, AlertError, AlertState, Severity

#: This component, for typed lookup by its peers: `api.peer(ALERTS)` is an AlertEngine.
ALERTS: ComponentKey[AlertEngine] = ComponentKey("alerts", AlertEngine)

__all__ = ["ALERTS", "Alert", "AlertEngine", "AlertError", "AlertState", "Severity"]
