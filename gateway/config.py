"""Gateway configuration: TOML file + `LINLI_…` environment overrides + defaults.

An empty file (or none) runs. Every key is checked against `CONFIG_SCHEMA`, and
an error names the key and the problem: `mqtt.port: 70000 is greater than the
maximum of 65535`.

Environment overrides use `__` between levels: `LINLI_MQTT__PORT=1884`,
`LINLI_STORE__BATCH_MS=100`, `LINLI_GATEWAY_ID=gw-7`. Values are read as TOML
literals when they parse as one (numbers, booleans, arrays), else as strings.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from linli.common.config import ConfigError, merge, read_toml, schema_errors
from linli.gateway.mqtt.broker_process import is_loopback
from linli.gateway.plugins.allowlist import SHIPPED as SHIPPED_ADAPTERS
from linli.gateway.plugins.allowlist import parse_allowed

ENV_PREFIX: Final = "LINLI_"

_PORT: Final = {"type": "integer", "minimum": 1, "maximum": 65535}
_IPV4: Final = "^((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])$"

CONFIG_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Linli gateway configuration",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "gateway_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{0,64}$"},
        "data_dir": {"type": "string", "minLength": 1},
        "log_level": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"]},
        "community": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                "name": {"type": "string", "minLength": 1},
            },
        },
        "mqtt": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "broker": {"enum": ["auto", "embedded", "mosquitto", "external"]},
                "mqtt5_port": {"type": "integer", "minimum": 0, "maximum": 65535},
                "url": {"type": "string", "pattern": "^mqtts?://"},
                "host": {"type": "string", "minLength": 1},
                "port": _PORT,
                "username": {"type": "string"},
                "password": {"type": "string"},
                "client_id": {"type": "string", "minLength": 1, "maxLength": 23},
                "keepalive_s": {"type": "integer", "minimum": 5, "maximum": 3600},
                "max_payload_bytes": {"type": "integer", "minimum": 256, "maximum": 16777216},
                "reconnect_min_s": {"type": "number", "exclusiveMinimum": 0},
                "reconnect_max_s": {"type": "number", "exclusiveMinimum": 0},
                "connect_timeout_s": {"type": "number", "exclusiveMinimum": 0},
                "mosquitto_binary": {"type": "string", "minLength": 1},
                "tls": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "enabled": {"type": "boolean"},
                        "host": {"type": "string", "minLength": 1},
                        "port": _PORT,
                        "names": {"type": "array", "items": {"type": "string", "minLength": 1}},
                        "ca_file": {"type": "string", "minLength": 1},
                        "cert_file": {"type": "string", "minLength": 1},
                        "key_file": {"type": "string", "minLength": 1},
                    },
                },
            },
        },
        "portal": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "host": {"type": "string"},
                "port": _PORT,
                "enabled": {"type": "boolean"},
                "public_url": {"type": "string", "pattern": "^https?://"},
                # The read-only community views (/, /api/v1/status, households, devices)
                # without signing in, for this machine's own browser only. `linli demo`
                # turns it on for its simulated community; never for a real one.
                "open_local_views": {"type": "boolean"},
                "session_hours": {"type": "number", "minimum": 0.1, "maximum": 720},
                # Forced on; otherwise cookies are Secure whenever the client used TLS.
                "secure_cookies": {"type": "boolean"},
                # Reverse proxies (addresses or networks) whose X-Forwarded-For/-Proto are believed.
                "trusted_proxies": {"type": "array", "items": {"type": "string", "minLength": 1}},
            },
        },
        "store": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "batch_ms": {"type": "integer", "minimum": 1, "maximum": 60000},
                "batch_rows": {"type": "integer", "minimum": 1, "maximum": 1000000},
                "max_pending_rows": {"type": "integer", "minimum": 1000},
            },
        },
        "retention": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "raw_days": {"type": "number", "exclusiveMinimum": 0},
                "hourly_days": {"type": "number", "exclusiveMinimum": 0},
                "interval_s": {"type": "number", "minimum": 1},
            },
        },
        "bus": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"queue_size": {"type": "integer", "minimum": 1}},
        },
        "profiles": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"paths": {"type": "array", "items": {"type": "string"}}},
        },
        "devices": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "supervision_default_s": {"type": "number", "exclusiveMinimum": 0},
                "supervision_check_s": {"type": "number", "exclusiveMinimum": 0},
            },
        },
        "alerts": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "webhooks": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["id", "url", "secret"],
                        "properties": {
                            "id": {"type": "string", "pattern": "^[a-z0-9_-]{1,40}$"},
                            "url": {"type": "string", "pattern": "^https?://"},
                            "secret": {"type": "string", "minLength": 16},
                            "audiences": {
                                "type": "array",
                                "items": {"enum": ["household", "carers", "duty_desk", "emergency"]},
                            },
                            "households": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                }
            },
        },
        "adapters": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                # The adapters whose manifests may be loaded at all ("id" or "id@sha256:<hex>");
                # anything else installed is listed as not_allowed and never imported.
                "allowed": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "disabled": {"type": "array", "items": {"type": "string"}},
                "only": {"type": "array", "items": {"type": "string"}},
                "settings": {"type": "object", "additionalProperties": {"type": "object"}},
            },
        },
        "cast": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "host": {"type": "string"},
                "port": {"type": "integer", "minimum": 0, "maximum": 65535},
                "public_url": {"type": "string", "pattern": "^https?://"},
                # The gateway's addresses on the households' segments: renderers are announced
                # (SSDP) there, each only where its household's allowed_networks include the address.
                "interfaces": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "ssdp": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "group": {"type": "string"},
                        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                        "announce_s": {"type": "number", "minimum": 1},
                    },
                },
                # household id (or "*" for every other household) → the networks its renderer
                # answers (e.g. its VLAN, "192.168.12.0/24"); default: loopback only.
                "allowed_networks": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string", "minLength": 1}},
                },
                "pairing_s": {"type": "number", "minimum": 1},
            },
        },
        "demo": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "households": {"type": "integer", "minimum": 1, "maximum": 5000},
                "rate": {"type": "number", "minimum": 0},
                "sos_per_hour": {"type": "number", "minimum": 0},
                "tv_remote_per_hour": {"type": "number", "minimum": 0},
            },
        },
        "discovery": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "enabled": {"type": "boolean"},
                "sources": {
                    "type": "array",
                    "items": {"enum": ["zeroconf", "ssdp", "mqtt"]},
                    "uniqueItems": True,
                },
                "interfaces": {
                    "oneOf": [
                        {"const": "all"},
                        {"type": "array", "items": {"type": "string", "pattern": _IPV4}, "minItems": 1},
                    ]
                },
                "max_items": {"type": "integer", "minimum": 10},
                "zeroconf": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "types": {
                            "type": "array",
                            "items": {"type": "string", "pattern": "^_[a-z0-9-]+\\._(tcp|udp)\\.local\\.$"},
                        },
                        "resolve_timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
                    },
                },
                "ssdp": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "group": {"type": "string", "pattern": _IPV4},
                        "port": _PORT,
                        "mx": {"type": "integer", "minimum": 1, "maximum": 5},
                        "search_interval_s": {"type": "number", "minimum": 5},
                        "description_timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
                        "max_description_bytes": {"type": "integer", "minimum": 4096, "maximum": 16777216},
                    },
                },
                "mqtt": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "prefix": {"type": "string", "pattern": "^[^#+/\\u0000][^#+\\u0000]*$"},
                        "max_config_bytes": {"type": "integer", "minimum": 1024, "maximum": 16777216},
                    },
                },
            },
        },
        "uplink": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "enabled": {"type": "boolean"},
                "region": {"type": "string", "pattern": "^[A-Za-z0-9_-]{0,64}$"},
                "url": {"type": "string", "pattern": "^mqtts?://"},
                "host": {"type": "string", "minLength": 1},
                "port": _PORT,
                "client_id": {"type": "string", "minLength": 1, "maxLength": 64},
                "username": {"type": "string"},
                "password": {"type": "string"},
                "tls": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "ca_file": {"type": "string", "minLength": 1},
                        "cert_file": {"type": "string", "minLength": 1},
                        "key_file": {"type": "string", "minLength": 1},
                    },
                },
                "keepalive_s": {"type": "integer", "minimum": 5, "maximum": 3600},
                "session_expiry_s": {"type": "integer", "minimum": 0, "maximum": 4294967295},
                "connect_timeout_s": {"type": "number", "exclusiveMinimum": 0},
                "reconnect_min_s": {"type": "number", "exclusiveMinimum": 0},
                "reconnect_max_s": {"type": "number", "exclusiveMinimum": 0},
                "inflight": {"type": "integer", "minimum": 1, "maximum": 65535},
                "batch_rows": {"type": "integer", "minimum": 1, "maximum": 10000},
                "max_rate": {"type": "number", "minimum": 0},
                "poll_s": {"type": "number", "exclusiveMinimum": 0},
                "status_interval_s": {"type": "number", "minimum": 1},
                "summary_interval_s": {"type": "number", "minimum": 1},
                "rollup_interval_s": {"type": "number", "minimum": 1},
                "region_public_keys": {"type": "array", "items": {"type": "string", "minLength": 40}},
                "announcement_max_ttl_s": {"type": "number", "exclusiveMinimum": 0},
                "tv_timeout_s": {"type": "number", "exclusiveMinimum": 0},
                "outbox": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "max_rows": {"type": "integer", "minimum": 100},
                        "max_mb": {"type": "number", "exclusiveMinimum": 0},
                        "max_age_s": {"type": "number", "exclusiveMinimum": 0},
                        "check_s": {"type": "number", "exclusiveMinimum": 0},
                    },
                },
            },
        },
        "components": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[A-Za-z_][\\w.]*:[A-Za-z_]\\w*$"},
        },
    },
}

DEFAULTS: Final[dict[str, Any]] = {
    "gateway_id": "",  # filled from the host name
    "data_dir": "./linli-data",
    "log_level": "INFO",
    "community": {"id": "community", "name": "Linli community"},
    "mqtt": {
        # Mosquitto (per-device credentials and ACL) when installed, else the embedded
        # rumqttd on loopback: docs/broker.md says why.
        "broker": "auto",
        "mqtt5_port": 0,
        "host": "127.0.0.1",
        "port": 1883,
        "keepalive_s": 30,
        "max_payload_bytes": 65536,
        "reconnect_min_s": 0.5,
        "reconnect_max_s": 60.0,
        "connect_timeout_s": 10.0,
        "mosquitto_binary": "mosquitto",
        # The TLS listener for devices on the community network (Mosquitto mode): a certificate
        # from a CA the gateway makes (names: the host names/addresses devices dial), or given files.
        "tls": {"enabled": False, "host": "0.0.0.0", "port": 8883, "names": []},
    },
    "portal": {
        "host": "127.0.0.1",
        "port": 8080,
        "enabled": True,
        "open_local_views": False,
        "session_hours": 12,
        "secure_cookies": False,  # forced Secure cookies; TLS (or a trusted proxy's https) sets them anyway
        "trusted_proxies": [],  # e.g. ["127.0.0.1"] behind a local nginx; none: the peer is the client
    },
    "store": {"batch_ms": 100, "batch_rows": 20000, "max_pending_rows": 2_000_000},
    "retention": {"raw_days": 7, "hourly_days": 400, "interval_s": 3600},
    "bus": {"queue_size": 1024},
    "profiles": {"paths": []},
    "devices": {"supervision_default_s": 3600, "supervision_check_s": 30},
    "discovery": {
        "enabled": True,
        "sources": ["zeroconf", "ssdp", "mqtt"],
        # Loopback only until the operator names the community network's interfaces (one VLAN
        # per household): like the portal and the broker, nothing is exposed by default.
        "interfaces": ["127.0.0.1"],
        "max_items": 10000,
        "zeroconf": {
            "types": [
                "_googlecast._tcp.local.",
                "_androidtvremote2._tcp.local.",
                "_airplay._tcp.local.",
                "_hap._tcp.local.",
                "_usp-agt-mqtt._tcp.local.",
                "_linli._tcp.local.",
            ],
            "resolve_timeout_s": 3.0,
        },
        "ssdp": {
            "group": "239.255.255.250",
            "port": 1900,
            "mx": 2,
            "search_interval_s": 300,
            "description_timeout_s": 5.0,
            "max_description_bytes": 262144,
        },
        "mqtt": {"prefix": "homeassistant", "max_config_bytes": 65536},
    },
    "uplink": {
        # Off unless configured: a community gateway works on its own.
        "enabled": False,
        "region": "",
        "host": "127.0.0.1",
        "port": 1883,
        "keepalive_s": 30,
        "session_expiry_s": 7 * 86400,
        "connect_timeout_s": 10.0,
        "reconnect_min_s": 1.0,
        "reconnect_max_s": 300.0,
        "inflight": 20,
        "batch_rows": 500,
        "max_rate": 0,
        "poll_s": 1.0,
        "status_interval_s": 60,
        "summary_interval_s": 300,
        "rollup_interval_s": 3600,
        "region_public_keys": [],
        "announcement_max_ttl_s": 7 * 86400,
        "tv_timeout_s": 5.0,
        "outbox": {"max_rows": 200_000, "max_mb": 64, "max_age_s": 7 * 86400, "check_s": 10},
    },
    # Only these adapters' manifests are loaded (ETSI EN 303 645 5.7): the shipped ones, until
    # the operator reviews and adds a provider's ("id", or "id@sha256:<manifest digest>").
    "adapters": {"allowed": list(SHIPPED_ADAPTERS)},
    "components": [
        "linli.adapters.mqtt_device:MqttDeviceAdapter",
        "linli.gateway.discovery:Discovery",
        "linli.portal.app:Portal",
        "linli.gateway.plugins.host:AdapterHost",
        "linli.services.screens.screens:Screens",
        "linli.services.alerts:AlertEngine",
        "linli.services.eldercare:ElderCare",
        "linli.services.security:Security",
        "linli.services.health:Health",
    ],
}


# The file reading, merging and schema reporting are shared with the region (linli.common.config).
_merge = merge

SECRET_KEYS: Final = frozenset({"password", "secret", "token"})


def _key_schema(path: list[str]) -> dict[str, Any]:
    node: dict[str, Any] = CONFIG_SCHEMA
    for part in path:
        node = node.get("properties", {}).get(part, {})
    return node


def _env_value(path: list[str], text: str) -> Any:
    """A string key keeps the text as it is (a password may look like a number)."""
    schema = _key_schema(path)
    if schema.get("type") == "string" or (
        "enum" in schema and all(isinstance(v, str) for v in schema["enum"])
    ):
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """`LINLI_MQTT__PORT=1884` → {"mqtt": {"port": 1884}}."""
    result: dict[str, Any] = {}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or name in ("LINLI_CONFIG",):
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        node = result
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _env_value(path, text)
    return result


def validate(data: dict[str, Any], source: str = "config") -> None:
    lines = schema_errors(CONFIG_SCHEMA, data, source, SECRET_KEYS)
    if lines:
        raise ConfigError("\n".join(lines))


def load_config(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Defaults ← TOML file ← environment ← explicit overrides (command-line flags)."""
    environ = os.environ if environ is None else environ
    from_file: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        from_file = read_toml(path)
        validate(from_file, str(path))
    from_env = env_overrides(environ)
    if from_env:
        validate(from_env, "environment (LINLI_…)")
    config = _merge(_merge(DEFAULTS, from_file), from_env)
    if overrides:
        config = _merge(config, overrides)
    validate(config)
    if not config["gateway_id"]:
        host = "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "-" for c in socket.gethostname())
        config["gateway_id"] = f"gw-{host}"[:64]
    mqtt = config["mqtt"]
    if mqtt["reconnect_min_s"] > mqtt["reconnect_max_s"]:
        raise ConfigError("config: mqtt.reconnect_min_s: must not exceed mqtt.reconnect_max_s")
    if mqtt["broker"] == "auto":
        mqtt["broker"] = "mosquitto" if shutil.which(mqtt["mosquitto_binary"]) else "embedded"
    tls = mqtt["tls"]
    if tls["enabled"] and mqtt["broker"] != "mosquitto":
        raise ConfigError(
            "config: mqtt.tls.enabled: the TLS listener is Mosquitto's (mqtt.broker = 'mosquitto'); "
            "the embedded broker serves loopback only"
        )
    given = [k for k in ("ca_file", "cert_file", "key_file") if k in tls]
    if given and len(given) != 3:
        raise ConfigError("config: mqtt.tls: give ca_file, cert_file and key_file together, or none of them")
    if mqtt["broker"] == "embedded" and not is_loopback(mqtt["host"]):
        raise ConfigError(
            f"config: mqtt.host: {mqtt['host']!r}: the embedded broker has no per-device access "
            "control and listens on loopback only (127.0.0.1); install Mosquitto and set "
            "mqtt.broker = 'mosquitto' to serve homes on a network"
        )
    for index, entry in enumerate(config["portal"]["trusted_proxies"]):
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            raise ConfigError(
                f"config: portal.trusted_proxies[{index}]: {entry!r} is not an IP address or network "
                "(e.g. '127.0.0.1' or '10.0.0.0/24'); name only the reverse proxies in front of the portal"
            ) from None
    try:
        parse_allowed(config["adapters"]["allowed"])
    except ValueError as exc:
        raise ConfigError(f"config: {exc}") from None
    uplink = config["uplink"]
    if uplink["enabled"]:
        if not uplink["region"]:
            raise ConfigError('config: uplink.region: must be set when uplink.enabled is true (e.g. "hubei")')
        if uplink["reconnect_min_s"] > uplink["reconnect_max_s"]:
            raise ConfigError("config: uplink.reconnect_min_s: must not exceed uplink.reconnect_max_s")
        if "linli.gateway.uplink:Uplink" not in config["components"]:
            # First, so that the outbox is kept before any service writes.
            config["components"] = ["linli.gateway.uplink:Uplink", *config["components"]]
    return config


def load_for_command(
    path: str | Path | None, overrides: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """`load_config` for a `linli` command: a bad config is said on stderr, and None returned."""
    try:
        return load_config(path, overrides=overrides or {})
    except ConfigError as exc:
        print(f"linli: configuration error:\n{exc}", file=sys.stderr)
        return None
