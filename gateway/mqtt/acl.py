"""Who may publish and subscribe where on the device plane: the rules, as data and as files.

No I/O here: principals in, Mosquitto's password file and ACL file out.

* Anonymous clients may publish discovery configs (the Home Assistant prefix,
  `linli/v1/discovery/+/config` and Tasmota's `tasmota/discovery/+/config|sensors`) and
  nothing else; they read nothing.
* A device publishes only its own state and availability topics and reads only its
  own command topic.
* A bridge (Zigbee2MQTT, Tasmota, OpenMQTTGateway, a home hub) belongs to one household
  and reads and writes only under its base topic (plus discovery configs, and the
  Home Assistant birth message, so that it re-announces when the gateway starts).
* The gateway itself reads and writes everything.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from linli.gateway.mqtt.topics import PREFIX

Kind = Literal["gateway", "device", "bridge"]

# Mosquitto checks a password on every CONNECT; 10,000 rounds of PBKDF2-SHA512 is ~5 ms
# of its CPU per connection (its own default, 101, is too cheap against a stolen file).
HASH_ITERATIONS: Final = 10_000
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Topics go into a line-based file: no whitespace, no wildcards where a plain topic is meant.
_PLAIN_TOPIC = re.compile(r"^[^\s+#\0]{1,512}$")


class AclError(ValueError):
    """A principal that cannot be written safely; the message names the field."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    username: str
    kind: Kind
    household_id: str | None
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    password_hash: str


def new_password() -> str:
    return secrets.token_urlsafe(18)


def hash_password(password: str, *, iterations: int = HASH_ITERATIONS, salt: bytes | None = None) -> str:
    """Mosquitto's own `$7$` format (PBKDF2-HMAC-SHA512, 12-byte salt), as `mosquitto_passwd` writes."""
    salt = secrets.token_bytes(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_username(username: str) -> str:
    if not _USERNAME.match(username):
        raise AclError(
            f"MQTT user name {username!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return username


def check_plain_topic(topic: str, what: str) -> str:
    if not _PLAIN_TOPIC.match(topic) or topic.startswith("$"):
        raise AclError(f"{what} {topic!r} must be a plain topic: no spaces, '+', '#', or leading '$'")
    return topic


def discovery_topics(prefix: str) -> tuple[str, ...]:
    """What an unknown client may publish: its announcement, nothing else."""
    return (
        f"{prefix}/+/+/config",  # homeassistant/<component>/<object>/config
        f"{prefix}/+/+/+/config",  # homeassistant/<component>/<node>/<object>/config
        f"{PREFIX}/discovery/+/config",
        "tasmota/discovery/+/config",  # Tasmota's own discovery (SetOption19 0, its default)
        "tasmota/discovery/+/sensors",
    )


def device_grants(
    state_topic: str, availability_topic: str | None, command_topics: Iterable[str] = ()
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(publish, subscribe) for one device: its own topics, nothing else."""
    publish = [check_plain_topic(state_topic, "state topic")]
    if availability_topic:
        publish.append(check_plain_topic(availability_topic, "availability topic"))
    subscribe = [check_plain_topic(topic, "command topic") for topic in command_topics]
    return tuple(publish), tuple(subscribe)


def bridge_grants(base_topic: str, prefix: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(publish, subscribe) for a bridge: everything under its base, its announcements, HA's birth."""
    base = check_plain_topic(base_topic.rstrip("/"), "bridge base topic")
    return (f"{base}/#", *discovery_topics(prefix)), (f"{base}/#", f"{prefix}/status")


def password_file(principals: Iterable[Principal]) -> str:
    return "".join(f"{check_username(p.username)}:{p.password_hash}\n" for p in principals)


def acl_file(principals: Iterable[Principal], prefix: str) -> str:
    """Mosquitto's ACL file: the lines before the first `user` apply to anonymous clients."""
    lines = ["# written by Linli from its own database on every change; edits here are lost", ""]
    lines += [f"topic write {topic}" for topic in discovery_topics(prefix)]
    for principal in principals:
        lines += ["", f"user {check_username(principal.username)}"]
        if principal.kind == "gateway":
            lines.append("topic readwrite #")
            continue
        readable = set(principal.subscribe)
        for topic in principal.publish:
            lines.append(f"topic {'readwrite' if topic in readable else 'write'} {topic}")
        lines += [f"topic read {topic}" for topic in principal.subscribe if topic not in principal.publish]
    return "\n".join(lines) + "\n"


def topic_under(topic: str, base: str) -> bool:
    """Is `topic` the base itself or below it (`zigbee2mqtt/door` under `zigbee2mqtt`)?"""
    base = base.rstrip("/")
    return topic == base or topic.startswith(base + "/")


def guard_file(principals: Iterable[Principal], prefix: str) -> str:
    """The rules for the linli_guard plugin (gateway/mqtt/guard): the same rules as the ACL file."""
    lines = ["# written by Linli from its own database on every change; edits here are lost"]
    lines += [f"anon-pub {topic}" for topic in discovery_topics(prefix)]
    for principal in principals:
        name = check_username(principal.username)
        lines.append(f"{'super' if principal.kind == 'gateway' else 'user'} {name} {principal.password_hash}")
        if principal.kind == "gateway":
            continue
        lines += [f"pub {name} {topic}" for topic in principal.publish]
        lines += [f"sub {name} {topic}" for topic in principal.subscribe]
    return "\n".join(lines) + "\n"
