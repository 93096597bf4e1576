"""A throwaway gateway for certification: temp database, embedded broker on a free loopback port,
only the adapter under test (and the kit's test doubles), one household to put boxes in."""

from __future__ import annotations

import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Final

from linli.components import BUILTIN_ADAPTERS
from linli.gateway.config import load_config
from linli.gateway.plugins import AdapterEntry, AdapterHost, Manifest
from linli.gateway.runtime import Gateway

HOUSEHOLD: Final = "certify-home"
#: Settings the kit prefers (shorter timeouts, no background polling), where the adapter takes them.
KIT_SETTINGS: Final[dict[str, Any]] = {
    "timeout_s": 2,
    "confirm_timeout_s": 2,
    "wake_timeout_s": 10,
    "poll_s": 3600,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Harness:
    def __init__(self, manifest: Manifest, extra: list[AdapterEntry] | None = None) -> None:
        self.manifest = manifest
        self.extra = extra or []
        self.folder = Path(tempfile.mkdtemp(prefix="linli-certify-"))
        self.gateway: Gateway | None = None

    @property
    def host(self) -> AdapterHost:
        assert self.gateway is not None
        host = self.gateway.components["adapters"]
        assert isinstance(host, AdapterHost)
        return host

    async def async_start(self) -> Gateway:
        properties = self.manifest.config_schema.get("properties", {})
        settings = {k: v for k, v in KIT_SETTINGS.items() if k in properties}
        config = load_config(
            None,
            environ={},
            overrides={
                "data_dir": str(self.folder / "data"),
                "gateway_id": "gw-certify",
                "log_level": "WARNING",
                "community": {"id": "certify", "name": "Linli conformance kit"},
                "mqtt": {"broker": "embedded", "host": "127.0.0.1", "port": free_port()},
                "portal": {"enabled": False, "port": free_port()},
                "components": ["linli.gateway.plugins.host:AdapterHost"],
                "adapters": {
                    "builtin_package": BUILTIN_ADAPTERS,
                    # certifying an adapter is the review that allows it, for this run only
                    "allowed": [self.manifest.id, *(e.id for e in self.extra)],
                    "only": [self.manifest.id, *(e.id for e in self.extra)],
                    "settings": {self.manifest.id: settings},
                },
            },
        )
        host = AdapterHost()
        for entry in self.extra:
            host.add_entry(entry)
        config["components"] = []
        gateway = Gateway(config)
        gateway.extra_components.append(host)
        await gateway.async_start()
        self.gateway = gateway
        registry = gateway.registry
        await registry.async_add_building("certify-b", "Certification")
        await registry.async_add_unit("certify-u", "certify-b", "101")
        await registry.async_add_household(HOUSEHOLD, "certify-u", "Certification home")
        return gateway

    async def async_stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.async_stop()
            self.gateway = None
        shutil.rmtree(self.folder, ignore_errors=True)
