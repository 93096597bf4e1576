"""Elder care: SOS, falls, inactivity, daily check-ins, reminders."""

from services.eldercare.service import ElderCare

__all__ = ["ElderCare"]
