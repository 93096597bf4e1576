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
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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

    def servers(self) -> list[str]:
        return [f"nats://127.0.0.1:{self.port + i}" for i in range(NODES)]

    def mqtt_ports(self) -> list[int]:
        return [self.mqtt_port + i for i in range(NODES)]


def node_config(folder: Path, layout: Layout, i: int) -> str:
    """One node's nats-server config."""
    routes = ", ".join(f"nats-route://127.0.0.1:{layout.cluster_port + j}" for j in range(NODES) if j != i)
    tls = ""
    if layout.tls:
        lines = [f'cert_file: "{layout.tls["cert_file"]}"', f'key_file: "{layout.tls["key_file"]}"']
        if layout.tls.get("ca_file"):
            # Gateways present certificates from the region's CA, as with Mosquitto's require_certificate.
            lines += [f'ca_file: "{layout.tls["ca_file"]}"', "verify: true"]
        tls = "\n    tls {\n      " + "\n      ".join(lines) + "\n      timeout: 5\n    }"
    node = folder / f"node{i}"
    return f"""# Written by `linli region cluster up`; rewritten on every `up`.
server_name: linli-region-{i}
listen: 127.0.0.1:{layout.port + i}
http: 127.0.0.1:{layout.http_port + i}
pid_file: "{node}/nats-server.pid"
log_file: "{node}/nats-server.log"
max_payload: 1MB

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


def _save(folder: Path, layout: Layout) -> None:
    tmp = folder / (STATE + ".tmp")
    tmp.write_text(json.dumps(asdict(layout), indent=2))
    os.replace(tmp, folder / STATE)  # whole or not at all: status and down read it


def start_nodes(folder: Path, layout: Layout) -> Layout:
    """Write the three configs and start each node that is not already running."""
    binary = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
    )
    if binary is None:
        raise ClusterError("nats-server is not installed: apt-get install nats-server (Debian 12 has 2.9.10)")
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    layout.tls = {k: str(Path(v).resolve()) for k, v in layout.tls.items()}
    previous = load_layout(folder)
    pids = list(previous.pids) if previous else []
    pids += [0] * (NODES - len(pids))
    for i in range(NODES):
        (folder / f"node{i}").mkdir(exist_ok=True)
        config = folder / f"node{i}" / "nats-server.conf"
        config.write_text(node_config(folder, layout, i))
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


async def wait_ready(layout: Layout, config: dict[str, Any], timeout: float = 60.0) -> Any:
    """Until the cluster has a JetStream leader and the region's stream exists; the stream's info."""
    import nats

    from linli.region.jetstream import ensure_stream, quiet_errors

    deadline = time.monotonic() + timeout
    config = {**config, "jetstream": {**config["jetstream"], "servers": layout.servers()}}
    last = "no node answered"
    while time.monotonic() < deadline:
        try:
            nc = await nats.connect(
                servers=layout.servers(), connect_timeout=2, max_reconnect_attempts=1, error_cb=quiet_errors
            )
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
    if any(n["running"] for n in nodes):
        import nats

        from linli.region.jetstream import MQTT_STREAM, consumer_filters, quiet_errors

        try:
            nc = await nats.connect(
                servers=layout.servers(), connect_timeout=2, max_reconnect_attempts=1, error_cb=quiet_errors
            )
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
                        "pending": consumer.num_pending,
                        "unacknowledged": consumer.num_ack_pending,
                    }
                report["consumers"] = owed
            finally:
                await nc.close()
        except Exception as exc:
            report["stream"] = {"error": f"{type(exc).__name__}: {exc}"}
    return report
