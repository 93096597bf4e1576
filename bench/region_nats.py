"""`bench/region.py --engine nats`: consumer scaling on the three-node NATS JetStream cluster.

Everything on loopback: the cluster `linli region cluster up` starts (three
nats-servers, the uplink stream with three replicas, MQTT listeners), one
PostgreSQL (fsync and synchronous commit on), and publisher processes that
speak MQTT 3.1.1 QoS 1 for --gateways simulated communities (a gateway's real
envelopes, a mix of one alert change to four rollups, as bench/region.py's
gateways produce), spread over the three nodes.

Each run: with no consumer running, the publishers put N events per community
into the stream (every one PUBACKed); then K `linli region consume` processes
(engine = "jetstream") start on the shared durable consumer and the clock runs
from the first row in PostgreSQL to the last. K = 1 and K = 2, alternating
which goes first, after one uncounted warm-up; medians over the runs.

Headline, last: region_scale_ratio=<two-consumer rate ÷ one-consumer rate>.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from common import ROOT, median

from tests.postgres import PostgresCluster

REGION = "bench"
KINDS = ("rollup", "alert")
CONSUME = [sys.executable, "-m", "linli", "region", "consume"]


def publisher(index: int, communities: list[str], per: int, offset: int, port: int, results: Any) -> None:
    """One publisher process: `per` events for each of its communities, QoS 1, then report."""
    sys.path.insert(0, str(ROOT))
    try:
        results.put((index, asyncio.run(_publish(communities, per, offset, port))))
    except BaseException as exc:  # the parent waits for an answer from every process
        results.put((index, f"{type(exc).__name__}: {exc}"))


async def _publish(communities: list[str], per: int, offset: int, port: int) -> tuple[int, int]:
    import aiomqtt
    import orjson

    from linli.wire import messages, topics

    class Row:
        __slots__ = ("id", "kind", "payload", "seq", "ts")

        def __init__(self, k: int, kind: str, payload: bytes) -> None:
            self.id, self.seq, self.kind, self.ts, self.payload = k, k, kind, time.time(), payload

    def event(k: int) -> Row:
        if k % 5 == 0:  # one in five: an alert changing state, as bench/region.py's gateways do
            j = k // 5
            state = ("raised", "acknowledged", "resolved")[(j // 20) % 3]
            alert = {
                "id": 10_000_000 + (j // 60) * 20 + j % 20,
                "kind": "sos",
                "severity": "critical",
                "household_id": "h1",
                "title": "SOS",
                "count": 1,
                "state": state,
                "raised_at": time.time() - 30,
                "step": 0,
                "acknowledged_at": time.time() if state != "raised" else None,
                "resolved_at": None,
            }
            data = {**messages.alert_event(alert, [state]), "n": k}
            return Row(k, "alert", orjson.dumps(data))
        data = {"n": k, "telemetry_rows": 1800 + k % 97, "alerts_raised": {"sos": k % 3}}
        return Row(k, "rollup", orjson.dumps(data))

    sent = 0
    retries: list[int] = []
    reconnects: list[str] = []

    async def one_gateway(community: str) -> None:
        # As a gateway's relay: a session that fails (seen: a CONNECT without CONNACK for 60 s just
        # after the cluster started, on a quiet machine) is opened again and the rows sent again.
        for attempt in range(1, 4):
            try:
                await one_session(community)
                return
            except aiomqtt.MqttError:
                if attempt == 3:
                    raise
                reconnects.append(community)

    async def one_session(community: str) -> None:
        nonlocal sent
        async with aiomqtt.Client(
            "127.0.0.1",
            port,
            identifier=f"bench-gw-{community}",
            protocol=aiomqtt.ProtocolVersion.V311,
            max_inflight_messages=100,  # a gateway's relay keeps a window in flight, not one at a time
            timeout=20,
        ) as client:
            client.pending_calls_threshold = 1000  # the window below is deliberate: no warning for it
            window = asyncio.Semaphore(100)

            async def send(row: Row) -> None:
                async with window:
                    payload = messages.encode(row, region=REGION, community=community, gateway=community)
                    # As the relay does: no PUBACK in time, send it again (QoS 1: at least once; the
                    # upsert absorbs a second copy). Seen on a loaded machine: nats-server 2.9 logs
                    # "timeout for request type MS" and that publish is never acknowledged.
                    for attempt in range(1, 6):
                        try:
                            await client.publish(
                                topics.up_topic(REGION, community, row.kind), payload, qos=1, timeout=15
                            )
                            return
                        except aiomqtt.MqttError:
                            if attempt == 5:
                                raise
                            retries.append(row.id)

            await asyncio.gather(*(send(event(k)) for k in range(offset, offset + per)))
            sent += per

    await asyncio.gather(*(one_gateway(c) for c in communities))
    return sent, len(retries) + len(reconnects)


class Publishers:
    def __init__(self, gateways: int, processes: int, mqtt_ports: list[int]) -> None:
        self.communities = [f"c{i:04d}" for i in range(gateways)]
        self.processes = processes
        self.ports = mqtt_ports
        self.offset = 0
        self.resent = 0  # publishes (and whole sessions) sent again for want of a PUBACK or CONNACK

    def publish(self, per: int) -> float:
        """`per` new events for every community, through all three nodes; seconds taken."""
        ctx = mp.get_context("spawn")
        results = ctx.Queue()
        started = time.perf_counter()
        workers = []
        for i in range(self.processes):
            share = self.communities[i :: self.processes]
            port = self.ports[i % len(self.ports)]
            workers.append(ctx.Process(target=publisher, args=(i, share, per, self.offset, port, results)))
        for w in workers:
            w.start()
        answers = [results.get(timeout=240) for _ in workers]
        for w in workers:
            w.join(30)
        bad = [a for a in answers if not isinstance(a[1], tuple)]
        if bad:
            raise RuntimeError(f"publisher failed: {bad}")
        self.offset += per
        self.resent += sum(a[1][1] for a in answers)
        return time.perf_counter() - started


async def count_events(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM events WHERE kind = ANY($1)", list(KINDS)))


async def run_once(
    publishers: Publishers, conn: asyncpg.Connection, config_file: Path, consumers: int, per: int
) -> dict[str, float]:
    await conn.execute("TRUNCATE events, alerts, announcement_receipts")
    publish_s = publishers.publish(per)
    expected = per * len(publishers.communities)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [*CONSUME, "--config", str(config_file), "--index", str(i), "--log-level", "WARNING"],
            env=env,
        )
        for i in range(consumers)
    ]
    try:
        started = time.perf_counter()
        first_at, first_count = None, 0
        while True:
            count = await count_events(conn)
            now = time.perf_counter()
            if count and first_at is None:
                first_at, first_count = now, count
            if count >= expected:
                break
            if now - started > 120:
                raise TimeoutError(f"only {count} of {expected} events reached PostgreSQL in 120 s")
            await asyncio.sleep(0.02)
        end = time.perf_counter()
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    assert first_at is not None
    return {
        "rate": (count - first_count) / max(end - first_at, 1e-6),
        "events": count,
        "publish_s": publish_s,
    }


async def main(args: argparse.Namespace) -> None:
    from linli.region.cluster import Layout, start_nodes, stop_nodes, wait_ready
    from linli.region.config import load_region_config
    from linli.region.schema import migrate

    per = args.events or (40 if args.quick else 250)
    runs = args.runs or (1 if args.quick else 3)
    folder = Path(tempfile.mkdtemp(prefix="linli-bench-nats-"))
    # Node i listens on port+i: a block of three free ports for each of its four listeners.
    layout = Layout(*(_free_block(3) for _ in range(4)))
    publishers_n = getattr(args, "publishers", None) or 4
    pg = PostgresCluster(durable=True)
    pg.start()
    started_at = time.perf_counter()
    one: list[float] = []
    two: list[float] = []
    try:
        admin = await asyncpg.connect(pg.dsn())
        await admin.execute("CREATE DATABASE bench")
        await admin.close()
        dsn = pg.dsn("bench")
        servers = ", ".join(f'"{s}"' for s in layout.servers())
        config_file = folder / "region.toml"
        config_file.write_text(
            f'[region]\nid = "{REGION}"\n[broker]\nengine = "jetstream"\nclient_prefix = "bench"\n'
            f'[jetstream]\nservers = [{servers}]\n[database]\ndsn = "{dsn}"\n'
        )
        config = load_region_config(config_file, environ={})
        conn = await asyncpg.connect(dsn)
        await migrate(conn, REGION)
        start_nodes(folder / "cluster", layout)
        info = await wait_ready(layout, config)
        version = subprocess.run(
            [shutil.which("nats-server") or "/usr/sbin/nats-server", "--version"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        print(
            f"engine: {version}, three nodes on loopback, stream {info.config.name} with "
            f"{info.config.num_replicas} replicas; PostgreSQL (fsync on) on 127.0.0.1:{pg.port}; "
            f"{args.gateways} simulated gateways over MQTT 3.1.1 QoS 1 from {publishers_n} processes; "
            f"{per} events per gateway per run; {runs} run(s); load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        publishers = Publishers(args.gateways, publishers_n, layout.mqtt_ports())
        warm = await run_once(publishers, conn, config_file, 2, max(10, per // 4))
        print(f"warm-up (not counted): {warm['events']:,} events at {warm['rate']:,.0f} events/s", flush=True)
        for run in range(runs):
            order = ((1, one), (2, two)) if run % 2 == 0 else ((2, two), (1, one))
            for consumers, bucket in order:
                result = await run_once(publishers, conn, config_file, consumers, per)
                bucket.append(result["rate"])
                print(
                    f"run {run + 1}, {consumers} consumer(s): {result['events']:,} events into PostgreSQL "
                    f"at {result['rate']:,.0f} events/s "
                    f"(published to the stream in {result['publish_s']:.1f} s)",
                    flush=True,
                )
        await conn.close()
    finally:
        stop_nodes(folder / "cluster")
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)
    one_m, two_m = median(one), median(two)
    print(
        f"median, one consumer: {one_m:,.0f} events/s into PostgreSQL "
        f"(runs: {', '.join(f'{r:,.0f}' for r in one)})"
    )
    print(
        f"median, two consumers on the shared durable: {two_m:,.0f} events/s "
        f"(runs: {', '.join(f'{r:,.0f}' for r in two)})"
    )
    print(
        f"publishes or sessions sent again (no PUBACK in 15 s, no CONNACK in 20 s): {publishers.resent}; "
        f"whole run {time.perf_counter() - started_at:.0f} s; load average now "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"region_scale_ratio={two_m / one_m:.2f}")


def _free_block(width: int) -> int:
    import random
    import socket

    for _ in range(500):
        base = random.randrange(20000, 60000)
        try:
            for port in range(base, base + width):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no block of free loopback ports")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--gateways", type=int, default=200)
    parser.add_argument("--publishers", type=int, default=4, help="publisher processes")
    parser.add_argument("--events", type=int, help="events per gateway per run")
    parser.add_argument("--runs", type=int)
    asyncio.run(main(parser.parse_args()))
