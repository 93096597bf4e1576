"""Security: each household's alarm panel — arming modes, delays, sensor roles, PINs, sirens."""

from services.security.errors import SecurityError
from services.security.panel import AlarmState, ArmMode
from services.security.roles import Role
from services.security.service import Security

__all__ = ["AlarmState", "ArmMode", "Role", "Security", "SecurityError"]
