"""The alert engine every service raises alerts through (durable, escalating)."""

from linli.services.alerts.engine import AlertEngine
from linli.services.alerts.model import Alert, AlertError, AlertState, Severity

__all__ = ["Alert", "AlertEngine", "AlertError", "AlertState", "Severity"]
