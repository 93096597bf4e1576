"""Firmware profiles: a device model is data (see firmware_profiles/schema.json)."""

from gateway.profiles.loader import (
    ProfileError,
    ProfileSet,
    check_profile_data,
    load_profile,
    load_profiles,
    profile_files,
    read_profile,
)
from gateway.profiles.model import ABSENT, CapabilitySpec, MappingError, Profile

__all__ = [
    "ABSENT",
    "CapabilitySpec",
    "MappingError",
    "Profile",
    "ProfileError",
    "ProfileSet",
    "check_profile_data",
    "load_profile",
    "load_profiles",
    "profile_files",
    "read_profile",
]
