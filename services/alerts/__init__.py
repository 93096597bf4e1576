"""The alert engine every service raises alerts through (durable, escalating)."""

from services.alerts.engine import AlertEngine
from services.alerts.model import Alert, AlertError, AlertState, Severity

__all__ = ["Alert", "AlertEngine", "AlertError", "AlertState", "Severity"]
