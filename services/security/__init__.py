"""Security: each household's alarm panel — arming modes, delays, sensor roles, PINs, sirens."""

from linli.gateway.component import ComponentKey
from linli.services.security.errors import SecurityError
from linli.services.security.panel import AlarmState, ArmMode
from linli.services.security.roles import Role
from linli.services.security.service import Security

#: This component, for typed lookup by its peers: `api.peer(SECURITY)` is a Security.
SECURITY: ComponentKey[Security] = ComponentKey("security", Security)

__all__ = ["SECURITY", "AlarmState", "ArmMode", "Role", "Security", "SecurityError"]
