"""`python bench/region_rabbit.py`: RabbitMQ (quorum queue + MQTT plugin) under the node-kill drill.

The same drill the NATS JetStream cluster first failed (bench/region_nats.py, `--drill node-kill`;
bench/RESULTS.md), on Debian's rabbitmq-server 3.10.8, so that the regional engine is chosen by
measurement (issue #17). Everything on loopback, in a temp folder, as the current user:

- three RabbitMQ nodes, linli-r1..r3@localhost, each with its own AMQP, MQTT and Erlang
  distribution port on 127.0.0.1, one epmd on a port of its own bound to 127.0.0.1
  (ERL_EPMD_ADDRESS), a shared Erlang cookie (HOME is the temp folder); nodes 2 and 3 joined
  to node 1 with rabbitmqctl stop_app / join_cluster / start_app. `ss -ltnp` is checked:
  nothing of theirs may listen beyond loopback (epmd adds [::1] by itself).
- no `guest`: the core's default user (created on first boot instead of guest) is `linli`
  with a random password, loopback-only, and the MQTT plugin's default user is the same,
  so the gateways' anonymous CONNECTs log in as it.
- one durable quorum queue on three members bound to amq.topic with `linli.v1.#` (the MQTT
  plugin turns the gateways' topics' `/` into `.`), declared before the load starts.

Each run: 200 simulated gateways (bench/region_nats.py's `Load`, imported: MQTT 3.1.1 QoS 1,
2 events/s each, a window in flight, every event kept until PUBACKed and sent again in order
on a new session on the next node when its node fails) from --publishers processes spread
over the three nodes' MQTT ports. baseline: no node killed. node-kill: after the warm-up the
node leading the quorum queue is SIGKILLed, started again after the down time, and the load
runs on for another warm-up. Then the queue is drained over AMQP and counted, per gateway:
missing (PUBACKed but not in the queue: the failure), duplicates, order inversions in the
queue's order (linli/region/deliveries.py's Ledger, the drills' own counter).

--quick: warm-up 5 s, node down 8 s (as region_nats's --quick), the node-kill only (under a
minute) unless --baseline; full: 20 s and 20 s, baseline then node-kill. --runs N: N kills on one
cluster. --check-counters: instead, the queue unbound for 1 s under load, which the counters must
report as missing (the plugin PUBACKs a publish no queue took). The surviving nodes' logs give the
queue's election time and the MQTT connections that a basic.nack closed.
Headline, last: rabbit_node_kill_missing=<n>. Exit 1 if any PUBACKed event is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import median
from region_nats import Load

from linli.region.deliveries import Ledger
from linli.wire import messages
from tests.brokers import free_block

SBIN = Path("/usr/lib/rabbitmq/bin")  # Debian's /usr/sbin wrappers would `su rabbitmq` when run as root
QUEUE = "linli.region.up"
BINDING = "linli.v1.#"
INSTALL = "apt-get install -y -qq --no-install-recommends rabbitmq-server"


def _free_port(low: int = 20000, high: int = 40000, width: int = 1) -> int:
    """A block of `width` free loopback ports below 40000 (the CLI's own distribution ports are
    chosen apart, so nothing here lands in the kernel's ephemeral range by accident)."""
    return free_block(width, low, high)


@dataclass
class Node:
    index: int
    amqp: int
    mqtt: int
    dist: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"linli-r{self.index}@localhost"

    @property
    def pid_file(self) -> Path:
        return self.folder / "rabbit.pid"

    def beam_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None


class RabbitCluster:
    """Three RabbitMQ nodes on 127.0.0.1 in `folder`, started and stopped by this process."""

    def __init__(self, folder: Path, size: int = 3) -> None:
        if not (SBIN / "rabbitmq-server").exists():
            raise SystemExit(f"this bench needs Debian's rabbitmq-server 3.10: {INSTALL}")
        self.folder = folder
        self.user = "linli"
        self.password = secrets.token_urlsafe(18)
        self.epmd_port = _free_port()
        self.ctl_dist = _free_port(width=11)  # rabbitmqctl's own distribution port range
        self.nodes = [
            Node(i, _free_port(), _free_port(), _free_port(), folder / f"r{i}") for i in range(1, size + 1)
        ]
        (folder / ".erlang.cookie").write_text(secrets.token_hex(20))
        (folder / ".erlang.cookie").chmod(0o400)
        for node in self.nodes:
            node.folder.mkdir(parents=True)
            (node.folder / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
            config = node.folder / "rabbitmq.conf"
            config.write_text(
                f"listeners.tcp.1 = 127.0.0.1:{node.amqp}\n"
                f"mqtt.listeners.tcp.1 = 127.0.0.1:{node.mqtt}\n"
                # Created on first boot instead of guest (guest never exists), usable from loopback only.
                f"default_user = {self.user}\ndefault_pass = {self.password}\n"
                f"loopback_users.{self.user} = true\n"
                # Anonymous MQTT CONNECTs (the simulated gateways') log in as that user, on vhost /.
                f"mqtt.allow_anonymous = true\nmqtt.default_user = {self.user}\n"
                f"mqtt.default_pass = {self.password}\nmqtt.vhost = /\nmqtt.exchange = amq.topic\n"
                "log.console = false\nlog.file.level = info\n"
                # The bench's temp folder shares a disk with everything else: do not block publishers
                # for a full-ish disk that is not ours to judge.
                "disk_free_limit.absolute = 50MB\n"
            )
            config.chmod(0o600)

    def env(self, node: Node | None = None) -> dict[str, str]:
        loopback = "-kernel inet_dist_use_interface {127,0,0,1}"
        env = {
            **os.environ,
            "HOME": str(self.folder),  # .erlang.cookie: the same for the nodes and rabbitmqctl
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "no-rabbitmq-env.conf"),
            "RABBITMQ_CTL_ERL_ARGS": loopback,
            "RABBITMQ_CTL_DIST_PORT_MIN": str(self.ctl_dist),
            "RABBITMQ_CTL_DIST_PORT_MAX": str(self.ctl_dist + 10),
        }
        if node is not None:
            env |= {
                "RABBITMQ_NODENAME": node.name,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(node.amqp),
                "RABBITMQ_DIST_PORT": str(node.dist),
                "RABBITMQ_MNESIA_BASE": str(node.folder / "mnesia"),
                "RABBITMQ_LOG_BASE": str(node.folder / "log"),
                "RABBITMQ_CONFIG_FILE": str(node.folder / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(node.folder / "advanced.config"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.folder / "enabled_plugins"),
                "RABBITMQ_PID_FILE": str(node.pid_file),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": loopback,
            }
        return env

    def ctl(self, node: Node, *args: str, tool: str = "rabbitmqctl", timeout: float = 120) -> str:
        done = subprocess.run(
            [str(SBIN / tool), "-n", node.name, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{tool} -n {node.name} {' '.join(args)} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-800:]} — the node's log: {node.folder / 'log'}"
            )
        return done.stdout

    def start_node(self, node: Node) -> None:
        node.pid_file.unlink(missing_ok=True)
        log = (node.folder / "console.log").open("ab")
        node.process = subprocess.Popen(
            [str(SBIN / "rabbitmq-server")],
            env=self.env(node),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # not in the bench's process group: Ctrl-C reaches the bench only
        )
        log.close()

    def wait_node(self, node: Node, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not node.pid_file.exists():
            if node.process is not None and node.process.poll() is not None:
                raise RuntimeError(f"{node.name} exited at start; see {node.folder / 'console.log'}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{node.name} wrote no pid file in {timeout:.0f} s")
            time.sleep(0.1)
        self.ctl(node, "wait", str(node.pid_file), "--timeout", str(int(timeout)))

    def start(self) -> dict[str, float]:
        """Start the three nodes, join 2 and 3 to 1; seconds each step took."""
        began = time.perf_counter()
        for node in self.nodes:
            self.start_node(node)
        for node in self.nodes:
            self.wait_node(node)
        booted = time.perf_counter()
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app")
        joined = time.perf_counter()
        status = json.loads(self.ctl(first, "cluster_status", "--formatter", "json"))
        running = sorted(status.get("running_nodes", []))
        if running != sorted(n.name for n in self.nodes):
            raise RuntimeError(f"the cluster formed with {running}, not all three nodes")
        return {"boot_s": booted - began, "join_s": joined - booted}

    def kill(self, node: Node) -> tuple[float, float]:
        """SIGKILL the node's beam; the (monotonic, wall) time of the signal."""
        pid = node.beam_pid()
        if pid is None:
            raise RuntimeError(f"{node.name} has no pid file: is it running?")
        at = time.perf_counter(), time.time()
        os.kill(pid, signal.SIGKILL)
        if node.process is not None:
            node.process.wait(30)  # the start script exits with its beam
        return at

    def leader(self, via: Node) -> tuple[str, list[str]]:
        """The quorum queue's leader node and its members, as `via` sees them."""
        rows = json.loads(self.ctl(via, "list_queues", "name", "leader", "members", "--formatter", "json"))
        for row in rows:
            if row.get("name") == QUEUE:
                return str(row.get("leader")), [str(m) for m in row.get("members") or []]
        raise RuntimeError(f"no queue {QUEUE} on {via.name}: {rows}")

    def foreign_listeners(self) -> tuple[int, list[str]]:
        """Our processes' listening sockets (beams and our epmd): how many, and any not on loopback.
        epmd adds [::1] to ERL_EPMD_ADDRESS by itself ("the loopback address is implicitly added"):
        loopback too, so allowed."""
        pids = {str(p) for n in self.nodes if (p := n.beam_pid())}
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
        ours, bad = 0, []
        for line in out.splitlines():
            fields = line.split()
            local = fields[3]
            mine = any(f"pid={p}," in line for p in pids) or (
                '"epmd"' in line and local.endswith(f":{self.epmd_port}")
            )
            if not mine:
                continue
            ours += 1
            if not local.startswith(("127.0.0.1:", "[::1]:")):
                bad.append(line)
        return ours, bad

    def stop(self) -> None:
        """Stop every node this cluster started (SIGTERM, then SIGKILL), then our epmd."""
        for node in self.nodes:
            pid = node.beam_pid()
            if pid is not None and node.process is not None and node.process.poll() is None:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(30)
            except subprocess.TimeoutExpired:
                pid = node.beam_pid()
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                node.process.kill()
                node.process.wait(10)
        subprocess.run(["epmd", "-kill"], env=self.env(), capture_output=True, check=False)

    def version(self) -> str:
        found = sorted(SBIN.parent.glob("lib/rabbitmq_server-*"))
        return found[-1].name.removeprefix("rabbitmq_server-") if found else "?"

    def log_facts(self, since: float, until: float, victim: Node | None) -> dict[str, Any]:
        """What the nodes' own logs say about [since, until] (wall clock): the quorum queue's new
        leader (the first `candidate -> leader` for it after `since` on a node that was not killed),
        the client-id tracker's (mqtt_node) leader changes, and MQTT connections that crashed on a
        basic.nack — 3.10's MQTT reader has no clause for a nack from the queue (see
        bench/RESULTS.md): the connection closes with no PUBACK and the gateway sends it again."""
        from datetime import datetime

        elected: list[tuple[float, str]] = []
        tracker: list[tuple[float, str]] = []
        nack_crashes = 0
        for node in self.nodes:
            path = node.folder / "log" / f"{node.name}.log"
            if not path.exists():
                continue
            for text in path.read_text(errors="replace").splitlines():
                try:
                    at = datetime.fromisoformat(text[:32]).timestamp()
                except ValueError:
                    continue
                if not since <= at <= until:
                    continue
                if f"queue '{QUEUE}' in vhost '/': candidate -> leader" in text and node is not victim:
                    elected.append((at, node.name))
                elif "mqtt_node: candidate -> leader" in text:
                    tracker.append((at, node.name))
                elif "exception exit: {mqtt_unexpected_msg,{'basic.nack'" in text:
                    nack_crashes += 1
        first = min(elected) if elected else None
        return {
            "elected_s": first[0] - since if first else None,
            "elected_on": first[1] if first else "",
            "tracker_elections": len(tracker),
            "nack_crashes": nack_crashes,
        }


# -- the queue ----------------------------------------------------------------------------------


async def declare_queue(cluster: RabbitCluster, *, unbound_s: float = 0.0) -> None:
    """Declare the quorum queue and bind it; with `unbound_s`, unbind it for that long and bind it
    again (the fault the counters must see: see `run`)."""
    import aio_pika

    node = cluster.nodes[0]
    conn = await aio_pika.connect(
        host="127.0.0.1", port=node.amqp, login=cluster.user, password=cluster.password, timeout=30
    )
    try:
        channel = await conn.channel()
        queue = await channel.declare_queue(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        if unbound_s:
            await queue.unbind("amq.topic", routing_key=BINDING)
            await asyncio.sleep(unbound_s)
        await queue.bind("amq.topic", routing_key=BINDING)
    finally:
        await conn.close()


async def drain(cluster: RabbitCluster, via: Node, idle_s: float = 1.5) -> tuple[Ledger, int, float]:
    """Every message in the queue, in the queue's order, into a Ledger (gateway, seq); acked as
    taken, so the queue is empty for the next run. Returns (ledger, messages, seconds)."""
    import aio_pika

    ledger = Ledger()
    conn = await aio_pika.connect(
        host="127.0.0.1", port=via.amqp, login=cluster.user, password=cluster.password, timeout=30
    )
    started = time.perf_counter()
    taken = 0
    try:
        channel = await conn.channel()
        await channel.set_qos(prefetch_count=2000)
        queue = await channel.declare_queue(QUEUE, passive=True)
        async with queue.iterator() as stream:
            while True:
                try:
                    message = await asyncio.wait_for(anext(stream), idle_s)
                except TimeoutError:
                    left = (await channel.declare_queue(QUEUE, passive=True)).declaration_result.message_count
                    if not left:
                        break
                    continue
                envelope = messages.decode(message.body)
                ledger.record(envelope.gateway, envelope.seq, time.time())
                taken += 1
                await message.ack()
    finally:
        await conn.close()
    return ledger, taken, time.perf_counter() - started - idle_s


# -- one run ------------------------------------------------------------------------------------


async def run(
    cluster: RabbitCluster, kind: str, gateways: int, publishers: int, warm_s: float, down_s: float
) -> dict[str, Any]:
    """baseline: the load for warm + down + warm seconds, no node killed; node-kill: the quorum
    queue's leader SIGKILLed after `warm_s`, started again `down_s` later."""
    seconds = warm_s + down_s + warm_s
    ports = [n.mqtt for n in cluster.nodes]
    by_name = {n.name: n for n in cluster.nodes}
    began, began_wall = time.perf_counter(), time.time()
    killed_wall = began_wall
    load = Load(gateways, publishers, ports, 2.0, seconds)
    victim: Node | None = None
    killed_at = ready_at = 0.0
    election: float | None = None
    new_leader = ""
    load_at_kill = os.getloadavg()[0]
    if kind == "unbound":
        # The fault the counters must see: for one second no queue is bound to the gateways'
        # topics. The 3.10 MQTT plugin publishes without `mandatory` and confirms a message no
        # queue took, so these events are PUBACKed and gone: `missing` must count them.
        await asyncio.sleep(max(0.0, began + warm_s + 1.0 - time.perf_counter()))
        await declare_queue(cluster, unbound_s=1.0)
    if kind == "node-kill":
        leader, members = await asyncio.to_thread(cluster.leader, cluster.nodes[0])
        victim = by_name[leader]
        await asyncio.sleep(max(0.0, began + warm_s + 1.0 - time.perf_counter()))  # +1: processes start
        load_at_kill = os.getloadavg()[0]
        killed_at, killed_wall = await asyncio.to_thread(cluster.kill, victim)
        print(f"node-kill: {victim.name} (quorum queue leader; members {members}) SIGKILLed", flush=True)
        other = next(n for n in cluster.nodes if n is not victim)
        # The new leader as a surviving node reports it; each look costs a rabbitmqctl start (~1 s),
        # so this is an upper bound of the election time.
        while time.perf_counter() - killed_at < down_s:
            try:
                seen, _ = await asyncio.to_thread(cluster.leader, other)
            except (RuntimeError, subprocess.TimeoutExpired):
                seen = ""
            if seen and seen != victim.name and seen in by_name:
                election, new_leader = time.perf_counter() - killed_at, seen
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(max(0.0, killed_at + down_s - time.perf_counter()))
        await asyncio.to_thread(cluster.start_node, victim)
        await asyncio.to_thread(cluster.wait_node, victim)
        ready_at = time.perf_counter()
        print(f"node-kill: {victim.name} back after {ready_at - killed_at:.1f} s", flush=True)
    produced, reopened = await asyncio.to_thread(load.wait, 600)
    load_s = time.perf_counter() - began
    total = sum(produced.values())
    ledger, taken, drain_s = await drain(cluster, cluster.nodes[0])
    seen = ledger.gateways()
    missing = 0
    for community, n in produced.items():
        have = seen.get(community)
        missing += n - (have.distinct if have else 0)
    counts = ledger.counts()
    facts = cluster.log_facts(killed_wall, time.time(), victim)
    return {
        **facts,
        "kind": kind,
        "produced": total,
        "in_queue": taken,
        "missing": missing,
        "duplicates": counts.duplicates,
        "inversions": counts.inversions,
        "gateways_inverted": sum(1 for c in seen.values() if c.inversions),
        "extra_gateways": sorted(set(seen) - set(produced)),
        "reopened": reopened,
        "victim": victim.name if victim else None,
        "new_leader": new_leader,
        "election_s": election,
        "down_s": ready_at - killed_at if victim else 0.0,
        "load_s": load_s,
        "rate": total / load_s,
        "drain_s": drain_s,
        "load_at_kill": load_at_kill,
        "load_after": os.getloadavg(),
    }


def line(r: dict[str, Any]) -> str:
    elected = f"{r['elected_s']:.2f} s" if r["elected_s"] is not None else "never"
    polled = f"{r['election_s']:.1f} s" if r["election_s"] is not None else "not"
    what = (
        f"{r['victim']} (queue leader) SIGKILLed; new queue leader {r['elected_on'] or '?'} elected "
        f"{elected} after the kill (its log; rabbitmqctl saw it after {polled}); back after "
        f"{r['down_s']:.1f} s; client-id tracker elections {r['tracker_elections']}"
        if r["kind"] == "node-kill"
        else "no node killed" + (", the queue unbound for 1 s (a fault)" if r["kind"] == "unbound" else "")
    )
    load = " ".join(f"{x:.2f}" for x in r["load_after"])
    return (
        f"{r['kind']}: {what}: produced {r['produced']:,} (all PUBACKed), missing {r['missing']}, "
        f"duplicates {r['duplicates']}, inversions {r['inversions']} ({r['gateways_inverted']} gateways); "
        f"{r['in_queue']:,} messages in the queue; {r['reopened']} sessions reopened; "
        f"{r['nack_crashes']} MQTT connections closed on a basic.nack; publish rate "
        f"{r['rate']:.0f} events/s over {r['load_s']:.1f} s; drained in {r['drain_s']:.1f} s; "
        f"load average {r['load_at_kill']:.2f} at the kill, {load} after"
    )


async def main(args: argparse.Namespace) -> int:
    warm_s, down_s = (5.0, 8.0) if args.quick else (20.0, 20.0)
    folder = Path(tempfile.mkdtemp(prefix="linli-bench-rabbit-"))
    began = time.perf_counter()
    cluster = RabbitCluster(folder)
    results: list[dict[str, Any]] = []
    try:
        steps = await asyncio.to_thread(cluster.start)
        ours, bad = await asyncio.to_thread(cluster.foreign_listeners)
        if bad:
            raise RuntimeError("RabbitMQ listens beyond loopback:\n" + "\n".join(bad))
        await declare_queue(cluster)
        leader, members = await asyncio.to_thread(cluster.leader, cluster.nodes[0])
        version = await asyncio.to_thread(cluster.version)
        print(
            f"engine: RabbitMQ {version}, three nodes on 127.0.0.1 ({ours} listening sockets, all on "
            f"loopback), booted in {steps['boot_s']:.1f} s, joined in {steps['join_s']:.1f} s; quorum queue "
            f"{QUEUE} on {len(members)} members, leader {leader}; {args.gateways} gateways, MQTT 3.1.1 "
            f"QoS 1, 2 events/s each, from {args.publishers} processes; warm-up {warm_s:.0f} s, node "
            f"down {down_s:.0f} s; load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        kinds = (["baseline"] if args.baseline or not args.quick else []) + ["node-kill"] * args.runs
        if args.check_counters:
            kinds = ["unbound"]
        for kind in kinds:
            result = await run(cluster, kind, args.gateways, args.publishers, warm_s, down_s)
            results.append(result)
            print(line(result), flush=True)
    finally:
        await asyncio.to_thread(cluster.stop)
        if args.keep:
            print(f"kept: {folder} (the nodes' logs under r*/log)")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    kills = [r for r in results if r["kind"] == "node-kill"]
    if len(kills) > 1:
        print(
            f"median of {len(kills)} node-kill runs: missing {median([r['missing'] for r in kills]):.0f}, "
            f"duplicates {median([r['duplicates'] for r in kills]):.0f}, "
            f"inversions {median([r['inversions'] for r in kills]):.0f}"
        )
    print(
        f"whole run {time.perf_counter() - began:.0f} s; load average now "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    failed = [r["kind"] for r in results if r["missing"] or r["extra_gateways"]]
    if failed:
        print(f"PUBACKed events missing from the quorum queue in: {', '.join(failed)}")
    print(f"rabbit_node_kill_missing={sum(r['missing'] for r in kills)}")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="warm-up 5 s, node down 8 s: under a minute")
    parser.add_argument("--gateways", type=int, default=200)
    parser.add_argument("--publishers", type=int, default=4, help="publisher processes (2-4)")
    parser.add_argument("--runs", type=int, default=1, help="node-kill runs on the one cluster")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="with --quick, also the run with no node killed (full: always)",
    )
    parser.add_argument(
        "--check-counters",
        action="store_true",
        help="instead of the drill: unbind the queue for 1 s under load; must report events missing",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (the nodes' logs)")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
