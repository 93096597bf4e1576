"""Firmware profiles shipped with Linli: JSON data plus the JSON Schema they follow.

A package (not just a folder) so that an installed, non-editable copy finds the
files through `importlib.resources`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

PROFILE_DIR: Final = Path(__file__).resolve().parent
SCHEMA_PATH: Final = PROFILE_DIR / "schema.json"
