"""Firmware profiles: a device model is data (see firmware_profiles/schema.json)."""

from linli.gateway.profiles.loader import (
    Candidate,
    ProfileError,
    ProfilesDelta,
    ProfileSet,
    check_profile_data,
    load_profile,
    load_profiles,
    profile_files,
    read_profile,
)
from linli.gateway.profiles.model import ABSENT, CapabilitySpec, FirmwareFit, MappingError, Profile

__all__ = [
    "ABSENT",
    "Candidate",
    "CapabilitySpec",
    "FirmwareFit",
    "MappingError",
    "Profile",
    "ProfileError",
    "ProfileSet",
    "ProfilesDelta",
    "check_profile_data",
    "load_profile",
    "load_profiles",
    "profile_files",
    "read_profile",
]
