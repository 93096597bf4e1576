"""The device plane's rules as files, and the plugin's counts as data (no broker needed)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from linli.gateway.mqtt.acl import (
    AclError,
    Principal,
    acl_file,
    bridge_grants,
    device_grants,
    guard_file,
    hash_password,
)
from linli.gateway.mqtt.guard import parse_stats


def principal(name: str, kind: str, publish: tuple[str, ...], subscribe: tuple[str, ...]) -> Principal:
    return Principal(
        username=name,
        kind=kind,
        household_id="h1",
        publish=publish,
        subscribe=subscribe,
        password_hash="$7$x",
    )  # type: ignore[arg-type]


def test_a_password_hash_is_what_mosquitto_passwd_writes() -> None:
    stored = hash_password("s3cret", iterations=101)
    _, seven, iterations, salt, digest = stored.split("$")
    expected = hashlib.pbkdf2_hmac("sha512", b"s3cret", base64.b64decode(salt), 101, 64)
    assert (seven, iterations, len(base64.b64decode(salt))) == ("7", "101", 12)
    assert base64.b64decode(digest) == expected


def test_anonymous_clients_may_only_announce_and_each_device_only_speak_for_itself() -> None:
    door = principal(
        "dev-h1-door", "device", *device_grants("z2m/door", "z2m/door/availability", ["z2m/door/set"])
    )
    hub = principal("bridge-h1-z2m", "bridge", *bridge_grants("z2m-h1", "homeassistant"))
    acl = acl_file([door, hub], "homeassistant")
    anonymous = acl.split("\nuser ")[0]
    assert "topic write homeassistant/+/+/config" in anonymous and "read" not in anonymous
    assert (
        "user dev-h1-door\ntopic write z2m/door\ntopic write z2m/door/availability\ntopic read z2m/door/set"
        in acl
    )
    rules = guard_file([door, hub], "homeassistant").splitlines()
    assert "pub bridge-h1-z2m z2m-h1/#" in rules and "sub bridge-h1-z2m homeassistant/status" in rules
    assert not any(rule.startswith("super") for rule in rules)


@pytest.mark.parametrize("topic", ["a/+/b", "a/#", "has space", "$SYS/x", ""])
def test_a_topic_that_is_not_plain_is_refused_before_it_reaches_a_file(topic: str) -> None:
    with pytest.raises(AclError):
        device_grants(topic, None, [])


def test_the_plugins_counts_are_read_even_for_client_ids_with_spaces_and_junk_is_skipped() -> None:
    stats = parse_stats(
        "denied-pub my client - 6\ndenied-sub x u 2\nrefused 127.0.0.1 11\njunk\ndenied-pub bad\n"
    )
    assert stats.denied_publishes == {"my client": ("-", 6)}
    assert stats.denied_subscriptions == {"x": ("u", 2)}
    assert stats.refused_logins == {"127.0.0.1": 11}


def test_an_unknown_client_may_announce_itself_the_tasmota_way_and_nothing_more() -> None:
    from linli.gateway.mqtt.acl import discovery_topics

    allowed = discovery_topics("homeassistant")
    assert "tasmota/discovery/+/config" in allowed and "tasmota/discovery/+/sensors" in allowed
    assert not any(t.startswith(("tele/", "stat/", "cmnd/")) or t.endswith("#") for t in allowed)
