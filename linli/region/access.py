"""Who may do what on the region's NATS cluster: the gateway registry, the region's own users, the audit log.

With `linli region cluster up --tls-ca …` every MQTT client shows a certificate
from the region's CA, and nats-server maps that certificate to a user
(`verify_and_map`: by a SAN e-mail or DNS name, else by the RFC 2253 subject,
`openssl x509 -noout -subject -nameopt RFC2253`). A certificate that maps to
no user is refused at CONNECT ("Not authorized"), and a client without one at
the TLS handshake. The users are:

* one per registered gateway (`linli region cluster allow COMMUNITY --subject S`):
  it may publish only its own community's uplink, `linli/v1/<region>/<community>/up/#`
  and `…/presence`, and subscribe only to its own and the region-wide downlink;
* the dashboard (`allow --dashboard --subject S`), whose certificate the
  signed downlink goes out with: it may publish every community's downlink
  and nothing else, and subscribe to nothing;
* `linli-region`, the consumers' user on the NATS client port (loopback
  only), with a generated password kept in DIR/region-nats.secret (0600) and
  given to the consumers by `[jetstream] user` and `password_file`; the node
  configs hold only its bcrypt hash. It may use
  the JetStream API and acknowledge what it pulled, and cannot connect over MQTT.

MQTT topics are permission-checked as the subjects nats-server turns them into
(`/` → `.`). Observed on nats-server 2.9.10 (tests/test_region_cluster_acl.py asserts
what a client sees; the quotes are from the nodes' logs):

* a subscription to `…/down/#` is two subscriptions, `….down` and `….down.>`:
  both must be allowed;
* a QoS 1 subscription also needs `$MQTT.sub.>`, the deliver subject of the
  JetStream consumer the server makes for it ("Unable to create subscription
  for JetStream consumer … subscribe permission violation" without it;
  2.15.1 allows it implicitly, nats-server#7637). An MQTT client cannot
  itself subscribe to `$MQTT/sub/#` (SUBACK 0x80), so this reads no one else's;
* a QoS 1 publish, a retained presence and a resumed session need nothing
  beyond the topic's own subject (the server stores them with its own client);
* a publish outside the allowed subjects is dropped and logged
  ("Publish Violation"), yet PUBACKed, and the connection stays open: the
  gateway is not told. The region never receives it, which is what matters,
  and `linli region cluster status` counts them per user from the nodes' logs;
* on reload, a connected client whose certificate is no longer allowed is
  closed ("authentication error"), and it is refused from then on;
* removing a user that published a retained message (every gateway: its
  presence), or its right to that topic, crashes 2.9.10 on reload on every
  node holding the message (nil pointer in mqttCheckPubRetainedPerms; 2.15.1
  does not). So `deny` keeps the certificate as a user that cannot connect
  (`retired` in the registry), and a certificate is never moved to another
  community.

`allow` and `deny` rewrite the nodes' configs and reload the running nodes
(SIGHUP); no restart. Each is appended to DIR/audit.jsonl (what, who, when).

Without `--tls-ca` (a plain loopback cluster, as the benchmarks run) there is
no client identity to map: no authorization block is written and any client
may publish anything, as before.
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import re
from pathlib import Path
from typing import Any, Final

from linli.common.credentials import new_token
from linli.wire import topics

REGISTRY: Final = "gateways.json"
AUDIT: Final = "audit.jsonl"
SECRET: Final = "region-nats.secret"
REGION_USER: Final = "linli-region"
_COMMUNITY: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Written into the nodes' configs inside double quotes: nothing that could end the string or the line.
_SUBJECT: Final = re.compile(r'^[^"\\\x00-\x1f\x7f]{1,512}$')


class AccessError(Exception):
    """A registry change that cannot be made; the message says what to do."""


def who() -> str:
    """The OS user running the command, for the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid={os.getuid()}"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _write_private(path: Path, text: str) -> None:
    """Whole or not at all, readable by the owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)  # an older .tmp left with other bits
    os.replace(tmp, path)


DASHBOARD: Final = "(dashboard)"  # the registry's name for the dashboard's certificate


def load_registry(folder: Path) -> dict[str, Any]:
    """The registry in DIR/gateways.json.

    {"region": id, "gateways": {community: {"subject", "at", "by"}}, "dashboard": {…} | None,
     "retired": {subject: {"community", "at", "by"}}}: certificates denied or replaced, kept (see
    authorization_block) and never given to another community.
    """
    path = folder / REGISTRY
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise AccessError(f"{path} is unreadable ({exc}); rebuild it from audit.jsonl") from None
    return {
        "region": data.get("region"),
        "gateways": data.get("gateways", {}),
        "dashboard": data.get("dashboard"),
        "retired": data.get("retired", {}),
    }


def save_registry(folder: Path, registry: dict[str, Any]) -> None:
    _write_private(folder / REGISTRY, json.dumps(registry, indent=2, sort_keys=True) + "\n")


def audit(folder: Path, action: str, **details: Any) -> None:
    """One line in DIR/audit.jsonl: what, who, when (never a secret)."""
    line = json.dumps({"at": _now(), "who": who(), "action": action, **details}, sort_keys=True)
    fd = os.open(folder / AUDIT, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def check_subject(subject: str) -> str:
    subject = subject.strip()
    if not _SUBJECT.match(subject):
        raise AccessError(
            "--subject must be the certificate's RFC 2253 subject (e.g. 'CN=gw-east,O=Linli'; "
            "`openssl x509 -noout -subject -nameopt RFC2253 -in gw.pem`) or a SAN e-mail/DNS name, "
            "without quotes, backslashes or control characters"
        )
    if subject == REGION_USER:
        raise AccessError(f"{REGION_USER!r} is the region's own NATS user; choose the certificate's subject")
    return subject


def _bind_region(registry: dict[str, Any], region: str) -> None:
    if registry["region"] not in (None, region):
        raise AccessError(
            f"this cluster's registry is for region {registry['region']!r}, the config says {region!r}; "
            "pass the region's --config"
        )
    registry["region"] = region


def _retire(registry: dict[str, Any], name: str, entry: dict[str, Any]) -> None:
    registry["retired"][entry["subject"]] = {"community": name, "at": _now(), "by": who()}


def allow(folder: Path, region: str, community: str | None, subject: str) -> dict[str, Any]:
    """Register (or re-register) a gateway's certificate, or the dashboard's when `community` is None."""
    subject = check_subject(subject)
    if community is not None and (not _COMMUNITY.match(community) or community == topics.ALL):
        raise AccessError(f"community {community!r}: 1-64 letters, digits, _ or -, and not {topics.ALL!r}")
    name = DASHBOARD if community is None else community
    registry = load_registry(folder)
    _bind_region(registry, region)
    holders = {entry["subject"]: held for held, entry in registry["gateways"].items()}
    if registry["dashboard"]:
        holders[registry["dashboard"]["subject"]] = DASHBOARD
    if subject in holders and holders[subject] != name:
        raise AccessError(
            f"{subject!r} is already the certificate of {holders[subject]}; one certificate maps to one "
            "user: give each gateway its own"
        )
    retired = registry["retired"].get(subject)
    if retired and retired["community"] != name:
        # Its retained presence would lose its publisher's permission on reload, which crashes
        # nats-server 2.9.10 (see authorization_block); and a certificate that served one
        # community should not quietly start speaking for another.
        raise AccessError(
            f"{subject!r} was the certificate of {retired['community']} until {retired['at']}; "
            "a certificate is never moved to another community: issue a new one"
        )
    registry["retired"].pop(subject, None)
    entry = {"subject": subject, "at": _now(), "by": who()}
    if community is None:
        previous, registry["dashboard"] = registry["dashboard"], entry
    else:
        previous = registry["gateways"].get(community)
        registry["gateways"][community] = entry
    if previous and previous["subject"] != subject:
        _retire(registry, name, previous)
    save_registry(folder, registry)
    audit(
        folder,
        "allow",
        community=name,
        subject=subject,
        replaced=previous["subject"] if previous and previous["subject"] != subject else None,
    )
    return registry


def deny(folder: Path, region: str, community: str | None) -> dict[str, Any]:
    """Take a gateway (or the dashboard) out: its certificate can no longer connect."""
    registry = load_registry(folder)
    _bind_region(registry, region)
    name = DASHBOARD if community is None else community
    if community is None:
        previous, registry["dashboard"] = registry["dashboard"], None
    else:
        previous = registry["gateways"].pop(community, None)
    if previous is None:
        known = ", ".join(sorted(registry["gateways"])) or "none"
        raise AccessError(f"{name} is not allowed on this cluster (allowed: {known})")
    _retire(registry, name, previous)
    save_registry(folder, registry)
    audit(folder, "deny", community=name, subject=previous["subject"])
    return registry


def region_secret(folder: Path) -> Path:
    """DIR/region-nats.secret, made once (0600): the password of the consumers' NATS user."""
    path = folder / SECRET
    if not path.exists():
        _write_private(path, new_token() + "\n")
    return path


def password_hash(password: str) -> str:
    """The bcrypt hash nats-server checks a password against, so the node configs hold no password.

    bcrypt because it is the one hash nats-server takes (a `$2a$`/`$2b$` password is verified, not
    compared); a fresh salt on every render is fine, the nodes only ever verify.
    """
    try:
        import bcrypt
    except ImportError as exc:  # the region's extra brings it
        raise AccessError("bcrypt is missing: pip install 'linli[region]'") from exc
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=11)).decode()


def _quoted(items: list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def gateway_permissions(region: str, community: str) -> dict[str, list[str]]:
    """What one community's gateway may publish and subscribe to, as NATS subjects."""
    base = f"linli.v1.{region}"
    return {
        "publish": [f"{base}.{community}.up.>", f"{base}.{community}.presence"],
        # `…/down/#` subscribes to the level itself and everything below it; QoS 1 adds $MQTT.sub.<id>.
        "subscribe": [
            f"{base}.{community}.down",
            f"{base}.{community}.down.>",
            f"{base}.{topics.ALL}.down",
            f"{base}.{topics.ALL}.down.>",
            "$MQTT.sub.>",
        ],
    }


def _publish_rules(region: str, name: str) -> list[str]:
    if name == DASHBOARD:
        return [f"linli.v1.{region}.*.down.>"]
    return gateway_permissions(region, name)["publish"]


def authorization_block(folder: Path, region: str) -> str:
    """The nodes' `authorization { users = [...] }` for this cluster's registry (empty: the region only)."""
    registry = load_registry(folder)
    password = password_hash(region_secret(folder).read_text().strip())
    users = [
        # The consumers: JetStream API requests, their replies, acknowledgements; NATS port only.
        f'{{ user: "{REGION_USER}", password: "{password}", allowed_connection_types: ["STANDARD"],\n'
        '      permissions: { publish: { allow: ["$JS.API.>", "$JS.ACK.>"] }, '
        'subscribe: { allow: ["_INBOX.>"] } } }'
    ]
    if registry["dashboard"]:
        users.append(
            f'{{ user: "{registry["dashboard"]["subject"]}", allowed_connection_types: ["MQTT"],'
            "  # the dashboard\n"
            f"      permissions: {{ publish: {{ allow: {_quoted(_publish_rules(region, DASHBOARD))} }}, "
            'subscribe: { deny: [">"] } } }'
        )
    for community, entry in sorted(registry["gateways"].items()):
        rules = gateway_permissions(region, community)
        users.append(
            f'{{ user: "{entry["subject"]}", allowed_connection_types: ["MQTT"],  # community {community}\n'
            f"      permissions: {{ publish: {{ allow: {_quoted(rules['publish'])} }}, "
            f"subscribe: {{ allow: {_quoted(rules['subscribe'])} }} }} }}"
        )
    for subject, gone in sorted(registry["retired"].items()):
        # A denied certificate stays a user that cannot connect (LEAFNODE: this cluster has no leaf
        # node listener) and keeps its publish rules. Removing the user, or its right to the topics
        # of its retained presence, makes nats-server 2.9.10 crash on reload (a nil pointer in
        # mqttCheckPubRetainedPerms, on each node holding a retained message it published).
        kept = _quoted(_publish_rules(region, gone["community"]))
        users.append(
            f'{{ user: "{subject}", allowed_connection_types: ["LEAFNODE"],  # denied: {gone["community"]}\n'
            f"      permissions: {{ publish: {{ allow: {kept} }}, "
            'subscribe: { deny: [">"] } } }'
        )
    return "authorization {\n  users = [\n    " + "\n    ".join(users) + "\n  ]\n}\n"


def nats_auth(settings: dict[str, Any]) -> dict[str, str]:
    """nats.connect()'s user/password from `[jetstream] user` and `password_file` (none: no auth)."""
    user = settings.get("user")
    if not user:
        return {}
    path = settings.get("password_file")
    if not path:
        raise AccessError(
            "[jetstream] user is set without password_file (the cluster's DIR/region-nats.secret)"
        )
    try:
        password = Path(path).read_text().strip()
    except OSError as exc:
        raise AccessError(
            f"[jetstream] password_file {path}: {exc.strerror}; `linli region cluster up` makes it"
        ) from None
    return {"user": user, "password": password}
