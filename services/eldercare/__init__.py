"""Elder care: SOS, falls, inactivity, daily check-ins, reminders."""

from linli.services.eldercare.service import CareError, ElderCare

__all__ = ["CareError", "ElderCare"]
