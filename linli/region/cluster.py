"""A three-node NATS JetStream cluster on this machine's loopback: `linli region cluster up | status | down`.

Each node is one `nats-server` (Debian's package, 2.9) with its own config
and its own JetStream store under DIR/node<i>, routes to the two others, and
an MQTT listener gateways connect to (TLS when a certificate is given:
`--tls-cert/--tls-key`, and `--tls-ca` to require client certificates, as the
Mosquitto deployment does). `up` starts the nodes that are not running (so
running it again restarts a node that died), waits for JetStream to elect a
leader and makes sure of `$MQTT_msgs` (the stream nats-server keeps QoS 1 MQTT
publishes in; three replicas) and the region's durable consumers on it
(linli/region/jetstream.py says why that stream and not one of our own).
The nodes run detached, each in its own session; DIR/cluster.json records
their ports and process ids for `status` and `down`.

Node i (0, 1, 2) listens on port+i (NATS clients: the consumers),
cluster_port+i (routes), mqtt_port+i (gateways) and http_port+i (monitoring).

nats-server 2.9 speaks MQTT 3.1.1 only (an MQTT 5 CONNECT is refused with
"unacceptable protocol version"); see docs/scale.md.

Access: with `--tls-ca` each client certificate is mapped to a user
(`verify_and_map`) and only registered certificates may connect, each scoped to
its own community's topics: `linli region cluster allow COMMUNITY --subject S`,
`deny COMMUNITY`, `allow --dashboard --subject S` for the dashboard's downlink;
the consumers use the `linli-region` user and the password in
DIR/region-nats.secret (linli/region/access.py has the rules and what
nats-server does with them). Without `--tls-ca` the cluster is open: any
client on loopback may publish and subscribe to anything, as the benchmarks
expect; `status` says which.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from linli.region import access

NODES = 3
STATE = "cluster.json"


class ClusterError(Exception):
    """The cluster could not be started, found or stopped; the message says what to do."""


@dataclass
class Layout:
    port: int = 4222
    cluster_port: int = 6222
    mqtt_port: int = 1883
    http_port: int = 8222
    tls: dict[str, str] = field(default_factory=dict)  # cert_file, key_file, ca_file (optional)
    pids: list[int] = field(default_factory=list)
    # With per-gateway access (a CA given): the consumers' NATS user and its password file, else empty.
    auth: dict[str, str] = field(default_factory=dict)

    def servers(self) -> list[str]:
        return [f"nats://127.0.0.1:{self.port + i}" for i in range(NODES)]

    def mqtt_ports(self) -> list[int]:
        return [self.mqtt_port + i for i in range(NODES)]

    def guarded(self) -> bool:
        """Per-gateway access rules apply: MQTT clients show a certificate from the CA, mapped to a user."""
        return bool(self.tls.get("ca_file"))


def node_config(folder: Path, layout: Layout, i: int, authorization: str = "") -> str:
    """One node's nats-server config (`authorization`: access.authorization_block, with a CA)."""
    routes = ", ".join(f"nats-route://127.0.0.1:{layout.cluster_port + j}" for j in range(NODES) if j != i)
    tls = ""
    if layout.tls:
        lines = [f'cert_file: "{layout.tls["cert_file"]}"', f'key_file: "{layout.tls["key_file"]}"']
        if layout.tls.get("ca_file"):
            # Gateways present certificates from the region's CA, as with Mosquitto's require_certificate,
            # and each certificate is the user it maps to (access.py): unregistered ones are refused.
            lines += [f'ca_file: "{layout.tls["ca_file"]}"', "verify_and_map: true"]
        tls = "\n    tls {\n      " + "\n      ".join(lines) + "\n      timeout: 5\n    }"
    node = folder / f"node{i}"
    return f"""# Written by `linli region cluster up`; rewritten on every `up`.
server_name: linli-region-{i}
listen: 127.0.0.1:{layout.port + i}
http: 127.0.0.1:{layout.http_port + i}
pid_file: "{node}/nats-server.pid"
log_file: "{node}/nats-server.log"
max_payload: 1MB
{authorization}
jetstream {{
    store_dir: "{node}/jetstream"
    max_memory_store: 256MB
    max_file_store: 8GB
}}

cluster {{
    name: linli-region
    listen: 127.0.0.1:{layout.cluster_port + i}
    routes: [{routes}]
}}

mqtt {{
    listen: 127.0.0.1:{layout.mqtt_port + i}{tls}
    # A QoS 1 message a consumer (gateway downlink) has not acknowledged is sent again after this.
    ack_wait: "30s"
    # The MQTT sessions, retained messages and in-flight QoS 1 live in JetStream: replicated too.
    stream_replicas: 3
}}
"""


def _alive(pid: int, folder: Path) -> bool:
    """This pid is one of our nats-servers (not a recycled pid of something else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return "nats-server" in cmdline and str(folder) in cmdline


def _listening(port: int) -> bool:
    """Another program holds this port (a bind test: a connect can meet itself on an ephemeral port)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nats-server binds: TIME_WAIT is fine
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def load_layout(folder: Path) -> Layout | None:
    path = folder / STATE
    if not path.exists():
        return None
    return Layout(**json.loads(path.read_text()))


def _write_configs(folder: Path, layout: Layout, region: str | None) -> None:
    """Each node's config; with a CA, the access rules of the registry in `folder` (0600)."""
    authorization = ""
    if layout.guarded():
        registry = access.load_registry(folder)
        region = region or registry["region"]
        if region is None:
            raise ClusterError("per-gateway access needs the region's id: pass --config (its [region] id)")
        if registry["region"] is None:
            registry["region"] = region
            access.save_registry(folder, registry)
        elif registry["region"] != region:
            raise ClusterError(
                f"{folder / access.REGISTRY} is for region {registry['region']!r}, the config says {region!r}"
            )
        authorization = "\n" + access.authorization_block(folder, region)
        layout.auth = {"user": access.REGION_USER, "password_file": str(folder / access.SECRET)}
    else:
        layout.auth = {}
    for i in range(NODES):
        (folder / f"node{i}").mkdir(mode=0o700, exist_ok=True)
        config = folder / f"node{i}" / "nats-server.conf"
        tmp = config.with_name(config.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(node_config(folder, layout, i, authorization))
        os.chmod(tmp, 0o600)
        os.replace(tmp, config)  # a node reloading now reads the old config or the new, never half


def _config_load_time(layout: Layout, i: int) -> str | None:
    """When node i last (re)loaded its config, from its monitoring port's /varz."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{layout.http_port + i}/varz", timeout=2) as reply:
            return str(json.loads(reply.read()).get("config_load_time"))
    except (OSError, ValueError):
        return None


def reload_nodes(folder: Path, layout: Layout, timeout: float = 10.0) -> list[int]:
    """SIGHUP each running node and wait until it took the new config; the nodes reloaded."""
    reloaded = []
    for i, pid in enumerate(layout.pids):
        if not pid or not _alive(pid, folder):
            continue  # a stopped node reads the new config when `up` starts it
        before = _config_load_time(layout, i)
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while _config_load_time(layout, i) in (before, None):
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"node {i} (pid {pid}) did not take its new config within {timeout:.0f} s; "
                    f"see {folder / f'node{i}' / 'nats-server.log'} (it keeps the old one on an error)"
                )
            time.sleep(0.05)
        reloaded.append(i)
    return reloaded


def change_access(folder: Path, region: str, community: str | None, subject: str | None) -> list[int]:
    """Allow `subject` as `community`'s gateway (None: the dashboard's), or deny it (no subject).

    Rewrites the nodes' configs and reloads the running ones; their indexes.
    """
    folder = folder.resolve()
    layout = load_layout(folder)
    if layout is None:
        raise ClusterError(f"no cluster in {folder}: `linli region cluster up --dir {folder}` makes one")
    if not layout.guarded():
        raise ClusterError(
            "this cluster's MQTT listeners ask for no client certificate (it was started without --tls-ca), "
            "so there is no gateway identity to allow or deny; `linli region cluster up --tls-cert … "
            "--tls-key … --tls-ca …` first"
        )
    try:
        if subject is None:
            access.deny(folder, region, community)
        else:
            access.allow(folder, region, community, subject)
    except access.AccessError as exc:
        raise ClusterError(str(exc)) from None
    _write_configs(folder, layout, region)
    _save(folder, layout)
    return reload_nodes(folder, layout)


def _save(folder: Path, layout: Layout) -> None:
    tmp = folder / (STATE + ".tmp")
    tmp.write_text(json.dumps(asdict(layout), indent=2))
    os.replace(tmp, folder / STATE)  # whole or not at all: status and down read it


def nats_binary() -> str:
    """The nats-server to run: $LINLI_NATS_SERVER if set (a newer release), else the one installed.

    Debian 12's 2.9.10 works; upstream's 2.15 spends about 40 % less CPU per message on the
    region's path (bench/RESULTS.md), which matters where the nodes share cores with the rest.
    """
    chosen = os.environ.get("LINLI_NATS_SERVER")
    if chosen:
        if not os.access(chosen, os.X_OK):
            raise ClusterError(f"LINLI_NATS_SERVER={chosen} is not an executable nats-server")
        return chosen
    binary = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
    )
    if binary is None:
        raise ClusterError("nats-server is not installed: apt-get install nats-server (Debian 12 has 2.9.10)")
    return binary


def start_nodes(folder: Path, layout: Layout, region: str | None = None) -> Layout:
    """Write the three configs, start each node that is not running and reload those that are.

    `region` (the config's [region] id) is needed the first time a cluster with a CA is started.
    """
    binary = nats_binary()
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)  # the nodes' stores hold what the gateways sent: the region's user alone reads them
    layout.tls = {k: str(Path(v).resolve()) for k, v in layout.tls.items()}
    previous = load_layout(folder)
    pids = list(previous.pids) if previous else []
    pids += [0] * (NODES - len(pids))
    _write_configs(folder, layout, region)
    layout.pids = pids
    if layout.guarded():
        reload_nodes(folder, layout)  # a node that runs takes the registry's access rules now
    for i in range(NODES):
        config = folder / f"node{i}" / "nats-server.conf"
        if pids[i] and _alive(pids[i], folder):
            continue
        for port in (layout.port + i, layout.cluster_port + i, layout.mqtt_port + i):
            if _listening(port):
                raise ClusterError(
                    f"port {port} on 127.0.0.1 is taken by another program; choose other ports "
                    "(--port, --cluster-port, --mqtt-port, --http-port)"
                )
        with open(folder / f"node{i}" / "stderr.log", "ab") as err:
            process = subprocess.Popen(
                [binary, "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,  # outlives `up`; a Ctrl-C at the terminal does not reach it
            )
        pids[i] = process.pid
    layout.pids = pids
    _save(folder, layout)
    return layout


async def _connect(layout: Layout) -> Any:
    """A short-lived client of the cluster's NATS port, as the region's user when it has access rules."""
    import nats

    from linli.region.jetstream import quiet_errors

    return await nats.connect(
        servers=layout.servers(),
        connect_timeout=2,
        max_reconnect_attempts=1,
        error_cb=quiet_errors,
        **access.nats_auth(layout.auth),
    )


async def wait_ready(layout: Layout, config: dict[str, Any], timeout: float = 60.0) -> Any:
    """Until the cluster has a JetStream leader and the region's stream exists; the stream's info."""

    from linli.region.jetstream import ensure_stream

    deadline = time.monotonic() + timeout
    config = {**config, "jetstream": {**config["jetstream"], "servers": layout.servers()}}
    last = "no node answered"
    while time.monotonic() < deadline:
        try:
            nc = await _connect(layout)
        except Exception as exc:
            last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.5)
            continue
        try:
            return await ensure_stream(nc.jetstream(), config, replicas=NODES)
        except Exception as exc:  # no meta leader yet, or not every peer known: try again
            last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.5)
        finally:
            await nc.close()
    raise ClusterError(
        f"JetStream was not ready within {timeout:.0f} s ({last}); see the nodes' nats-server.log"
    )


def stop_nodes(folder: Path, timeout: float = 15.0) -> list[int]:
    """SIGTERM each node of this cluster (SIGKILL after `timeout`); the pids that were stopped."""
    folder = folder.resolve()
    layout = load_layout(folder)
    if layout is None:
        return []
    stopped = []
    for pid in layout.pids:
        if pid and _alive(pid, folder):
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
    deadline = time.monotonic() + timeout
    for pid in stopped:
        while _alive(pid, folder) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid, folder):
            os.kill(pid, signal.SIGKILL)
        while _alive(pid, folder):
            time.sleep(0.05)  # it was our child only if `up` ran in this process: reap-free wait
    layout.pids = [0] * NODES
    _save(folder, layout)
    return stopped


def kill_node(folder: Path, i: int) -> int:
    """SIGKILL node i, as a machine failing would (for drills); its pid."""
    folder = folder.resolve()
    layout = load_layout(folder)
    if layout is None or not layout.pids[i] or not _alive(layout.pids[i], folder):
        raise ClusterError(f"node {i} of the cluster in {folder} is not running")
    pid = layout.pids[i]
    os.kill(pid, signal.SIGKILL)
    while _alive(pid, folder):
        time.sleep(0.05)
    return pid


_REFUSED = re.compile(r'^\[\d+\] (\S+ \S+) .* - Publish Violation - User "(.*)", Subject "(.*)"$')


def refused_publishes(folder: Path) -> dict[str, dict[str, Any]]:
    """Publishes the nodes dropped for their user's rules, by user: how many, the last topic and when.

    nats-server PUBACKs such an MQTT publish and keeps the connection open, so the gateway is never
    told (linli/region/access.py); its "Publish Violation" log line is the only trace. A gateway
    whose certificate was allowed for another community shows up here.
    """
    refused: dict[str, dict[str, Any]] = {}
    for i in range(NODES):
        log = folder / f"node{i}" / "nats-server.log"
        try:
            with open(log, errors="replace") as lines:
                for line in lines:
                    if "Publish Violation" not in line or not (match := _REFUSED.match(line.rstrip("\n"))):
                        continue
                    at, user, subject = match.groups()
                    entry = refused.setdefault(user, {"publishes": 0, "last": "", "at": ""})
                    entry["publishes"] += 1
                    if at >= entry["at"]:
                        entry["at"], entry["last"] = at, subject.replace(".", "/")
        except FileNotFoundError:
            continue
    return refused


async def status(folder: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Each node's process and ports, and the stream's replicas as the cluster reports them."""
    layout = load_layout(folder)  # folder: absolute (the CLI resolves it)
    if layout is None:
        raise ClusterError(f"no cluster in {folder}: `linli region cluster up --dir {folder}` makes one")
    nodes = [
        {
            "node": i,
            "pid": pid,
            "running": bool(pid) and _alive(pid, folder),
            "nats": f"127.0.0.1:{layout.port + i}",
            "mqtt": f"127.0.0.1:{layout.mqtt_port + i}" + (" (TLS)" if layout.tls else ""),
        }
        for i, pid in enumerate(layout.pids)
    ]
    report: dict[str, Any] = {"dir": str(folder), "nodes": nodes}
    if layout.guarded():
        report["refused"] = await asyncio.to_thread(refused_publishes, folder)
        registry = access.load_registry(folder)
        report["access"] = {
            "mode": "per-gateway: client certificates from the CA, each mapped to its community's topics",
            "region": registry["region"],
            "gateways": {c: e["subject"] for c, e in sorted(registry["gateways"].items())},
            "dashboard": registry["dashboard"]["subject"] if registry["dashboard"] else None,
            "denied": {s: e["community"] for s, e in sorted(registry["retired"].items())},
        }
    else:
        report["access"] = {
            "mode": "open: no --tls-ca, so no client identity; any MQTT or NATS client may publish and "
            "subscribe to anything (loopback only)"
        }
    if any(n["running"] for n in nodes):
        from linli.region.jetstream import MQTT_STREAM, consumer_filters, mqtt_filter

        try:
            nc = await _connect(layout)
            try:
                js = nc.jetstream()
                info = await js.stream_info(MQTT_STREAM)
                report["stream"] = {
                    "name": info.config.name,
                    "subjects": info.config.subjects,
                    "replicas": info.config.num_replicas,
                    "messages": info.state.messages,
                    "leader": info.cluster.leader if info.cluster else None,
                }
                owed = {}
                for durable in consumer_filters(config):
                    consumer = await js.consumer_info(MQTT_STREAM, durable)
                    owed[durable] = {
                        # the MQTT topic filter it takes, as an operator would write it
                        "takes": mqtt_filter(consumer.config.filter_subject or ""),
                        "pending": consumer.num_pending,
                        "unacknowledged": consumer.num_ack_pending,
                    }
                report["consumers"] = owed
            finally:
                await nc.close()
        except Exception as exc:
            report["stream"] = {"error": f"{type(exc).__name__}: {exc}"}
    return report
