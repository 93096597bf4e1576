"""The regional service's configuration: a TOML file, `LINLI_REGION_DSN` for the database, defaults.

[region]
id = "hubei"                      # the <region> level of linli/v1/<region>/<community>/...
data_dir = "./linli-region"       # the region's signing key lives here

[broker]                          # the regional MQTT 5 broker (cluster)
host = "127.0.0.1"
port = 1883
# url = "mqtts://broker.region:8883"   username = "…"   password = "…"
# tls = { ca_file = "…", cert_file = "…", key_file = "…" }
group = "linli-region"            # the shared-subscription group of the consumers
engine = "mqtt"                   # or "jetstream": consumers pull from a NATS JetStream cluster instead
# servers = ["10.0.0.1:8883", "10.0.0.2:8883", "10.0.0.3:8883"]   # a cluster's MQTT listeners: the
                                  # dashboard's downlink tries them in turn (instead of host/port)

[jetstream]                       # with engine = "jetstream" (`linli region cluster up` starts one)
servers = ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223", "nats://127.0.0.1:4224"]
durable = "linli-region"          # the consumers' shared durable pull consumers on $MQTT_msgs (their
                                  # consumer group): this one for events, this + "-presence" for presence
ack_wait_s = 30                   # a message not acknowledged in this long goes to another consumer
# user = "linli-region"           # when the cluster has per-gateway access rules (`cluster up --tls-ca`):
# password_file = "linli-region-cluster/region-nats.secret"   # the password `cluster up` made (0600)

[database]
dsn = "postgresql://linli@127.0.0.1/linli"   # or LINLI_REGION_DSN (keeps the password off the command line)

[consumer]
batch = 500                       # messages per PostgreSQL transaction, at most…
batch_ms = 50                     # …or this often

[dashboard]
host = "127.0.0.1"
port = 8090
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from linli.common.config import SERVERS_SCHEMA, ConfigError, merge, read_toml, schema_errors
from linli.common.forwarded import parse_networks

_PORT: Final = {"type": "integer", "minimum": 1, "maximum": 65535}
_ID: Final = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}

SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "region": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"id": _ID, "data_dir": {"type": "string", "minLength": 1}},
        },
        "broker": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "url": {"type": "string", "pattern": "^mqtts?://"},
                "host": {"type": "string", "minLength": 1},
                "port": _PORT,
                # A cluster's MQTT listeners ("host:port"), tried in turn by the dashboard's downlink.
                "servers": SERVERS_SCHEMA,
                "username": {"type": "string"},
                "password": {"type": "string"},
                "group": _ID,
                "engine": {"enum": ["mqtt", "jetstream"]},
                "client_prefix": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
                "tls": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        k: {"type": "string", "minLength": 1} for k in ("ca_file", "cert_file", "key_file")
                    },
                },
            },
        },
        "jetstream": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "servers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": "^(nats|tls)://"},
                },
                "durable": _ID,
                "ack_wait_s": {"type": "number", "exclusiveMinimum": 0},
                "user": {"type": "string", "minLength": 1},
                "password_file": {"type": "string", "minLength": 1},
            },
        },
        "database": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"dsn": {"type": "string", "pattern": "^postgres(ql)?://"}},
        },
        # Days each kind of record is kept (linli/region/schema.py KINDS; pg_partman drops older partitions).
        "retention": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "raw_events_days": {"type": "integer", "minimum": 1},
                "alerts_days": {"type": "integer", "minimum": 1},
                "health_summaries_days": {"type": "integer", "minimum": 1},
                "maintenance_interval_s": {"type": "number", "minimum": 60},
            },
        },
        "consumer": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "batch": {"type": "integer", "minimum": 1, "maximum": 20000},
                "batch_ms": {"type": "number", "minimum": 1},
                "receive_maximum": {"type": "integer", "minimum": 1, "maximum": 65535},
                "session_expiry_s": {"type": "integer", "minimum": 0},
            },
        },
        "dashboard": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "host": {"type": "string"},
                "port": _PORT,
                "online_after_s": {"type": "number", "exclusiveMinimum": 0},
                "clock_interval_s": {"type": "number", "exclusiveMinimum": 0},
                # Reverse proxies (addresses or networks) whose X-Forwarded-For/-Proto are believed.
                "trusted_proxies": {"type": "array", "items": {"type": "string", "minLength": 1}},
            },
        },
    },
}

DEFAULTS: Final[dict[str, Any]] = {
    "region": {"id": "region", "data_dir": "./linli-region"},
    "broker": {
        "host": "127.0.0.1",
        "port": 1883,
        "group": "linli-region",
        "client_prefix": "linli-region",
        "engine": "mqtt",
    },
    "jetstream": {
        "servers": ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223", "nats://127.0.0.1:4224"],
        "durable": "linli-region",
        "ack_wait_s": 30,
    },
    "database": {"dsn": "postgresql://linli@127.0.0.1:5432/linli"},
    # Raw events are superseded snapshots (the latest is in `communities`); alerts are the
    # programme's record; consented daily health summaries are kept for ten years.
    "retention": {
        "raw_events_days": 30,
        "alerts_days": 730,
        "health_summaries_days": 3650,
        "maintenance_interval_s": 3600,
    },
    "consumer": {"batch": 500, "batch_ms": 50, "receive_maximum": 2000, "session_expiry_s": 3600},
    # A community is online while its presence says so and it reported within online_after_s.
    "dashboard": {
        "host": "127.0.0.1",
        "port": 8090,
        "online_after_s": 300,
        "clock_interval_s": 30,
        "trusted_proxies": [],  # e.g. ["127.0.0.1"] behind a local nginx; none: the peer is the client
    },
}


class RegionConfigError(ConfigError):
    """The regional configuration is unusable; the message names the key."""


_merge = merge


def _validate(data: dict[str, Any], source: str) -> None:
    lines = schema_errors(SCHEMA, data, source, {"password", "dsn"})
    if not lines:
        try:  # what the schema cannot say: each trusted proxy is an address or a network
            parse_networks(data.get("dashboard", {}).get("trusted_proxies", []), "dashboard.trusted_proxies")
        except ValueError as exc:
            lines.append(f"{source}: {exc}; name only the reverse proxies in front of the dashboard")
    if lines:
        raise RegionConfigError("\n".join(lines))


def load_region_config(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Defaults ← TOML file ← LINLI_REGION_DSN ← explicit overrides."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = read_toml(path)
        except ConfigError as exc:
            raise RegionConfigError(str(exc)) from None
        _validate(data, str(path))
    config = _merge(DEFAULTS, data)
    if environ.get("LINLI_REGION_DSN"):
        config["database"]["dsn"] = environ["LINLI_REGION_DSN"]
    if overrides:
        config = _merge(config, overrides)
    _validate(config, "config")
    return config
