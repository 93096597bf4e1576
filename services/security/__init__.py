"""Security: each household's alarm panel — arming modes, delays, sensor roles, PINs, sirens."""

from linli.services.security.errors import SecurityError
from linli.services.security.panel import AlarmState, ArmMode
from linli.services.security.roles import Role
from linli.services.security.service import Security

__all__ = ["AlarmState", "ArmMode", "Role", "Security", "SecurityError"]
