"""Linli gateway core: runtime, event bus, registry, store, MQTT link and profiles.

The core depends on no other Linli layer; adapters, services and the portal plug
into it as components (see `gateway.runtime`).
"""

from __future__ import annotations

__version__ = "0.1.0"
