"""The uplink's settings, read once from the gateway configuration (`[uplink]`)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from linli.common.config import host_port
from linli.gateway.uplink.outbox import Bounds
from linli.wire.client import tls_context


class UplinkConfigError(ValueError):
    """The `[uplink]` section cannot work; the message names the key."""


@dataclass(slots=True, kw_only=True)
class UplinkSettings:
    region: str
    community: str
    gateway_id: str
    # Where the region is: one broker, or the nodes of a cluster tried in turn (the first is `host:port`).
    servers: tuple[tuple[str, int], ...]
    client_id: str
    username: str | None
    password: str | None
    tls: ssl.SSLContext | None
    keepalive_s: int
    session_expiry_s: int
    mqtt_version: str
    connect_timeout_s: float
    reconnect_min_s: float
    reconnect_max_s: float
    inflight: int
    batch_rows: int
    max_rate: float
    poll_s: float
    bounds: Bounds
    prune_interval_s: float
    status_interval_s: float
    summary_interval_s: float
    rollup_interval_s: float
    region_public_keys: list[str]
    max_ttl_s: float
    tv_timeout_s: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> UplinkSettings:
        up = config["uplink"]
        host, port = up["host"], up["port"]
        use_tls = bool(up.get("tls"))
        if "url" in up:
            from yarl import URL

            url = URL(up["url"])
            use_tls = use_tls or url.scheme == "mqtts"
            host, port = url.host or host, url.port or (8883 if url.scheme == "mqtts" else 1883)
        servers = tuple(_server(text) for text in up["servers"]) if up.get("servers") else ((host, port),)
        tls = up.get("tls", {})
        try:
            context = (
                tls_context(tls.get("ca_file"), tls.get("cert_file"), tls.get("key_file"))
                if use_tls
                else None
            )
        except ValueError as exc:
            raise UplinkConfigError(str(exc)) from None
        box = up["outbox"]
        return cls(
            region=up["region"],
            community=config["community"]["id"],
            gateway_id=config["gateway_id"],
            servers=servers,
            client_id=up.get("client_id") or f"linli-up-{config['community']['id']}"[:64],
            username=up.get("username"),
            password=up.get("password"),
            tls=context,
            keepalive_s=up["keepalive_s"],
            session_expiry_s=up["session_expiry_s"],
            mqtt_version=up.get("mqtt_version", "5"),
            connect_timeout_s=up["connect_timeout_s"],
            reconnect_min_s=up["reconnect_min_s"],
            reconnect_max_s=up["reconnect_max_s"],
            inflight=up["inflight"],
            batch_rows=up["batch_rows"],
            max_rate=up["max_rate"],
            poll_s=up["poll_s"],
            bounds=Bounds(
                max_rows=box["max_rows"],
                max_bytes=int(box["max_mb"] * 1024 * 1024),
                max_age_s=box["max_age_s"],
            ),
            prune_interval_s=box["check_s"],
            status_interval_s=up["status_interval_s"],
            summary_interval_s=up["summary_interval_s"],
            rollup_interval_s=up["rollup_interval_s"],
            region_public_keys=list(up["region_public_keys"]),
            max_ttl_s=up["announcement_max_ttl_s"],
            tv_timeout_s=up["tv_timeout_s"],
        )

    @property
    def where(self) -> str:
        """The region's address(es) for logs: `host:port`, or the cluster's nodes joined by commas."""
        return ", ".join(address(server) for server in self.servers)

    def __repr__(self) -> str:  # never print the password
        return (
            f"UplinkSettings(region {self.region}, {self.username or 'anonymous'}@{self.where}"
            f"{' TLS' if self.tls else ''})"
        )


def address(server: tuple[str, int]) -> str:
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _server(text: str) -> tuple[str, int]:
    try:
        return host_port(text)
    except ValueError as exc:
        raise UplinkConfigError(f"uplink.servers: {exc}") from None
