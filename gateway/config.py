"""Gateway configuration: TOML file + `LINLI_…` environment overrides + defaults.

An empty file (or none) runs. Every key is checked against `CONFIG_SCHEMA`, and
an error names the key and the problem: `mqtt.port: 70000 is greater than the
maximum of 65535`.

Environment overrides use `__` between levels: `LINLI_MQTT__PORT=1884`,
`LINLI_STORE__BATCH_MS=100`, `LINLI_GATEWAY_ID=gw-7`. Values are read as TOML
literals when they parse as one (numbers, booleans, arrays), else as strings.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from linli.common.config import SERVERS_SCHEMA, ConfigError, merge, read_toml, schema_errors
from linli.gateway.component import component_class
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
    # A section not named here belongs to a component, which brings its own schema (apply_sections).
    "additionalProperties": {"type": "object"},
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
                # The package whose sub-folders are the adapters shipped with Linli (the
                # composition root names it): they are "@shipped" in `allowed`.
                "builtin_package": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_.]*$"},
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
                # The nodes of a clustered regional engine, tried in turn: "host:port" or "[v6]:port".
                "servers": SERVERS_SCHEMA,
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
                # "3.1.1" for a regional engine that speaks only that (NATS' MQTT listener, docs/scale.md)
                "mqtt_version": {"enum": ["5", "3.1.1"]},
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
        "mqtt_version": "5",
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
    # What runs is the composition root's choice (linli/components.py), or the config file's.
    "components": [],
}


# The file reading, merging and schema reporting are shared with the region (linli.common.config).
_merge = merge

SECRET_KEYS: Final = frozenset({"password", "secret", "token"})


def _key_schema(path: list[str], root: dict[str, Any] = CONFIG_SCHEMA) -> dict[str, Any]:
    node: dict[str, Any] = root
    for part in path:
        node = node.get("properties", {}).get(part, {})
    return node


def _env_value(path: list[str], text: str, root: dict[str, Any] = CONFIG_SCHEMA) -> Any:
    """A string key keeps the text as it is (a password may look like a number)."""
    schema = _key_schema(path, root)
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


def apply_sections(config: dict[str, Any], environ: Mapping[str, str], source: str = "config") -> None:
    """Each configured component's own section: its defaults, its schema, its own checks.

    A component class may declare `config_schema` (JSON Schema of its section),
    `config_defaults`, `config_section` (default: its `name`) and `check_config(section)`
    returning error lines. Sections no configured component reads are left as they
    are (a file may keep the settings of a component switched off).
    """
    errors: list[str] = []
    for spec in config["components"]:
        try:
            cls = component_class(spec)
        except ImportError as exc:
            raise ConfigError(f"config: components: {exc}") from None
        schema = getattr(cls, "config_schema", None)
        if schema is None:
            continue
        section = getattr(cls, "config_section", None) or cls.name
        value = _merge(getattr(cls, "config_defaults", {}), config.get(section, {}))
        for name, text in environ.items():  # typed by the component's schema, not guessed
            prefix = f"{ENV_PREFIX}{section.upper()}__"
            if name.startswith(prefix):
                path = name[len(prefix) :].lower().split("__")
                node = value
                for part in path[:-1]:
                    node = node.setdefault(part, {})
                node[path[-1]] = _env_value(path, text, schema)
        errors += schema_errors(
            {"type": "object", "properties": {section: schema}}, {section: value}, source, SECRET_KEYS
        )
        check = getattr(cls, "check_config", None)
        if check is not None and not errors:
            errors += check(value)
        config[section] = value
    if errors:
        raise ConfigError("\n".join(errors))


def load_config(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    add_components: Sequence[str] = (),
) -> dict[str, Any]:
    """Defaults ← TOML file ← environment ← explicit overrides (command-line flags).

    `defaults` is the composition root's (linli/components.py: which components run
    when the file names none); `add_components` are run in addition whatever the file says.
    """
    environ = os.environ if environ is None else environ
    from_file: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        from_file = read_toml(path)
        problems = schema_errors(CONFIG_SCHEMA, from_file, str(path), SECRET_KEYS)
        if problems:
            # the components' sections of the same file are judged too: every problem at once
            draft = _merge(_merge(DEFAULTS, dict(defaults or {})), from_file)
            draft["components"] = [*draft.get("components", []), *add_components]
            try:
                apply_sections(draft, {}, str(path))
            except ConfigError as exc:
                problems += str(exc).splitlines()
            except (TypeError, KeyError, AttributeError):
                pass  # the core's problems come first; the sections are judged once those are mended
            raise ConfigError("\n".join(problems))
    from_env = env_overrides(environ)
    if from_env:
        validate(from_env, "environment (LINLI_…)")
    config = _merge(_merge(_merge(DEFAULTS, dict(defaults or {})), from_file), from_env)
    if overrides:
        config = _merge(config, overrides)
    validate(config)
    config["components"] = [*config["components"], *add_components]
    apply_sections(config, environ)
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
    path: str | Path | None,
    overrides: dict[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    add_components: Sequence[str] = (),
) -> dict[str, Any] | None:
    """`load_config` for a `linli` command: a bad config is said on stderr, and None returned."""
    try:
        return load_config(path, overrides=overrides or {}, defaults=defaults, add_components=add_components)
    except ConfigError as exc:
        print(f"linli: configuration error:\n{exc}", file=sys.stderr)
        return None
