"""Adapter plug-ins: manifests, discovery, the adapter API, and the host that runs them.

manifest.py   manifest.json, its JSON Schema, the adapter's settings
catalog.py    finding adapters (entry points `linli.adapters`, the adapters/ folder)
api.py        AdapterApi: what an adapter may touch, by permission
storage.py    each adapter's own storage namespace
host.py       the `adapters` component: start in isolation, states with reasons
"""

from linli.gateway.component import ComponentKey
from linli.gateway.plugins.api import AdapterApi
from linli.gateway.plugins.catalog import ENTRY_POINT_GROUP, AdapterEntry, discover
from linli.gateway.plugins.host import AdapterHost, AdapterState, load_adapter_class
from linli.gateway.plugins.manifest import Manifest, ManifestError, load_manifest, settings_for

#: This component, for typed lookup by its peers: `api.peer(ADAPTERS)` is a AdapterHost.
ADAPTERS: ComponentKey[AdapterHost] = ComponentKey("adapters", AdapterHost)

__all__ = [
    "ADAPTERS",
    "ENTRY_POINT_GROUP",
    "AdapterApi",
    "AdapterEntry",
    "AdapterHost",
    "AdapterState",
    "Manifest",
    "ManifestError",
    "discover",
    "load_adapter_class",
    "load_manifest",
    "settings_for",
]
