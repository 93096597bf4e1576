"""The package list for setuptools: each top-level folder installs under `linli.` (see package-dir)."""

from setuptools import find_packages, setup

FOLDERS = ("gateway", "adapters", "services", "portal", "firmware_profiles")
packages = find_packages(include=["linli", "linli.*"])
for folder in FOLDERS:
    packages += [f"linli.{name}" for name in find_packages(include=[folder, f"{folder}.*"])]

setup(packages=packages)
