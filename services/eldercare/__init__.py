"""Elder care: SOS, falls, inactivity, daily check-ins, reminders."""

from linli.gateway.component import ComponentKey
from linli.services.eldercare.service import CareError, ElderCare

#: This component, for typed lookup by its peers: `api.peer(ELDERCARE)` is an ElderCare.
ELDERCARE: ComponentKey[ElderCare] = ComponentKey("eldercare", ElderCare)

__all__ = ["ELDERCARE", "CareError", "ElderCare"]
