"""What the gateway's and the region's configurations share: a TOML file laid over defaults.

Each application owns its schema and its defaults (`linli.gateway.config`,
`linli.region.config`); both read a file the same way, lay tables over their
defaults the same way, and report every problem as `source: key.path: message`
without ever echoing a secret.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from jsonschema import Draft202012Validator


class ConfigError(ValueError):
    """The configuration is unusable; the message lists each key and its problem."""


# The nodes of a clustered broker, tried in turn: "host:port" or "[v6]:port" (`[uplink] servers`,
# the region's `[broker] servers`).
SERVERS_SCHEMA: Final[dict[str, Any]] = {
    "type": "array",
    "minItems": 1,
    "maxItems": 16,
    "items": {"type": "string", "pattern": "^(\\[[0-9A-Fa-f:.]+\\]|[^\\s:/\\[\\]]+):[0-9]{1,5}$"},
}


def host_port(text: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` (the shape SERVERS_SCHEMA checked) → (host, port)."""
    from yarl import URL  # only a clustered region needs it: not at every gateway's start-up

    url = URL(f"mqtt://{text}")
    if not url.host or url.port is None or not 0 < url.port < 65536:
        raise ValueError(f'{text!r} is not host:port (e.g. "10.0.0.5:8883")')
    return url.host, url.port


def merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` laid onto a deep copy of `base`, table by table."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file's tables; ConfigError naming the file when it is missing or malformed."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def schema_errors(
    schema: dict[str, Any], data: Any, source: str, secret_keys: frozenset[str] | set[str]
) -> list[str]:
    """Every problem as `source: key.path: message`; a secret's value is never echoed."""
    errors = sorted(Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    lines = []
    for error in errors:
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        if error.absolute_path and str(error.absolute_path[-1]) in secret_keys:
            message = (
                f"invalid value (not shown); it must satisfy {error.validator} {error.validator_value!r}"
            )
        else:
            message = error.message
        lines.append(f"{source}: {key}: {message}")
    return lines
