"""The regional tier: consumer scaling on the three-node cluster, its drills; the one-broker design before it.

    python bench/region.py [--quick] [--drill node-kill|outage|all] [--outage S]       (the cluster)
    python bench/region.py [--quick] --consumer-cpu 0.35       (each consumer capped, a cgroup each)
    python bench/region.py --engine mosquitto [--quick] [--gateways 200] [--events N] [--runs R] [--outage S]

The default is the region as deployed (docs/scale.md): three nats-servers with
JetStream on loopback (`linli region cluster up`), consumers pulling from the
durable consumers on `$MQTT_msgs`, PostgreSQL with fsync on. bench/region_nats.py
says what each run and drill does; its headline, last, is
`region_scale_ratio=<two consumers' rate ÷ one's>`.

`--engine mosquitto` measures the single-broker region this replaced: one
Mosquitto (persistent, the regional broker), one PostgreSQL cluster (fsync and
synchronous commit on), and 200 simulated community gateways — real `Gateway`
objects with the real uplink (outbox in their own SQLite file, relay, signed
downlink), 50 per process.

1. Throughput, one consumer and then two sharing the subscription: the
   consumers' persistent sessions are made and left offline, the gateways
   publish N events each (a mix of alert changes and rollups) until every
   outbox is empty (all PUBACKed), then the `linli region consume` processes
   start and the clock runs from the first row in PostgreSQL to the last.
   events/s and the ratio of two consumers to one; medians over the runs
   (after one uncounted warm-up run; the order alternates between runs).
2. Outage drill: gateways produce continuously, two consumers run; the broker
   is stopped for --outage seconds (120 in the full run) and restarted; the
   load stops at the restart. Every event must then be in PostgreSQL exactly
   once; the consumers' delivery ledgers (linli/region/deliveries.py) count
   every delivery: duplicates delivered and absorbed by the upsert, and
   per-gateway order inversions on arrival. The time to drain is from the
   restart to the last row.
3. Emergency broadcast to all gateways: signed, published once region-wide;
   the time until every gateway's receipt (and every TV's) is in PostgreSQL.

Its full run takes more than five minutes. The headline, last, is the same ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from common import ROOT, free_port, median, wait_listening
from region_nats import community_event

from tests.postgres import PostgresCluster

EVENT_KINDS = ("rollup", "alert")


# -- the regional broker -------------------------------------------------------------


class RegionBroker:
    """Mosquitto on a free loopback port, persistent, restartable on the same port."""

    def __init__(self) -> None:
        binary = shutil.which("mosquitto")
        if binary is None:
            raise SystemExit("bench needs Mosquitto: apt-get install mosquitto")
        self.binary = binary
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="linli-bench-region-"))
        (self.folder / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            "max_queued_messages 0\nmax_inflight_messages 0\n"
            f"log_dest file {self.folder}/mosquitto.log\nlog_type error\nlog_type warning\n"
            f"persistence true\npersistence_location {self.folder}/\nautosave_interval 600\n"
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.version = subprocess.run(
            [binary, "-h"], capture_output=True, text=True, check=False
        ).stdout.split("\n")[0]

    def start(self) -> None:
        # Its own session: a signal meant for the broker's process group never reaches the bench.
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.folder / "mosquitto.conf")], start_new_session=True
        )
        try:
            wait_listening(self.port, 60)
        except TimeoutError:
            log = self.folder / "mosquitto.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
            raise TimeoutError(
                f"Mosquitto did not listen on {self.port} within 60 s "
                f"(exit code {self.process.poll()}): {tail}"
            ) from None

    def stop(self) -> None:
        """SIGTERM: Mosquitto saves its sessions and queued messages, then exits."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


# -- gateway worker processes --------------------------------------------------------


def gateway_worker(
    index: int, count: int, port: int, public_key: str, folder: str, commands: Any, results: Any
) -> None:
    sys.path.insert(0, str(ROOT))
    asyncio.run(_worker(index, count, port, public_key, Path(folder), commands, results))


async def _worker(
    index: int, count: int, port: int, public_key: str, folder: Path, commands: Any, results: Any
) -> None:
    import logging

    import orjson

    from linli.gateway.config import load_config
    from linli.gateway.runtime import Gateway
    from linli.gateway.uplink import outbox
    from tests.regional import add_tv, tv_profiles

    logging.basicConfig(level=logging.ERROR)
    profiles = tv_profiles(folder / "profiles")
    gateways: list[Gateway] = []
    shown: list[list[Any]] = []
    produced: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    load_task: asyncio.Task[None] | None = None

    async def produce(gateway: Gateway, n: int) -> None:
        community = gateway.config["community"]["id"]
        start = produced.get(community, 0)

        def write(db: Any) -> None:
            for k in range(start, start + n):
                kind, data = community_event(k)
                retention = outbox.Retention.ROLLUP if kind == "rollup" else outbox.Retention.KEEP
                outbox.enqueue(db, kind, data, retention=retention)

        await gateway.store.async_write(write)
        produced[community] = start + n

    stop_load = asyncio.Event()

    async def load(rate: float) -> None:
        # Stopped between rounds, never inside a write: every committed event is counted.
        while not stop_load.is_set():
            started = time.monotonic()
            await asyncio.gather(*(produce(g, max(1, int(rate))) for g in gateways))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_load.wait(), max(0.0, 1.0 - (time.monotonic() - started)))

    while True:
        command, *args = await loop.run_in_executor(None, commands.get)
        if command == "start":
            reconnect_max = args[0]
            for j in range(count):
                name = f"c{index:02d}{j:03d}"
                config = load_config(
                    None,
                    environ={},
                    overrides={
                        "gateway_id": f"gw-{name}",
                        "data_dir": str(folder / name),
                        "community": {"id": name, "name": f"社区 {name}"},
                        "mqtt": {
                            "broker": "external",
                            "host": "127.0.0.1",
                            "port": port,
                            "client_id": f"l-{name}",
                        },
                        "portal": {"enabled": False},
                        "discovery": {"enabled": False},
                        "profiles": {"paths": profiles},
                        "components": [],
                        "uplink": {
                            "enabled": True,
                            "region": "bench",
                            "port": port,
                            "client_id": f"up-{name}",
                            "region_public_keys": [public_key],
                            "reconnect_min_s": 0.5,
                            "reconnect_max_s": reconnect_max,
                            "status_interval_s": 3600,
                            "summary_interval_s": 3600,
                            "poll_s": 0.2,
                        },
                    },
                )
                gateway = Gateway(config)
                await gateway.async_start()
                shown.append(await add_tv(gateway))
                gateways.append(gateway)
            for g in gateways:
                await g.components["uplink"].relay.async_wait_connected(60)
            results.put(("started", index))
        elif command == "produce":
            await asyncio.gather(*(produce(g, args[0]) for g in gateways))
            results.put(("produced", index))
        elif command == "depth":

            def rows(conn: Any) -> int:
                return int(conn.execute("SELECT count(*) FROM uplink_outbox").fetchone()[0])

            depth = sum([await g.store.async_read(rows) for g in gateways])
            connected = sum(1 for g in gateways if g.components["uplink"].relay.connected)
            results.put(("depth", index, depth, connected))
        elif command == "load":
            stop_load.clear()
            load_task = asyncio.create_task(load(args[0]))
            results.put(("loading", index))
        elif command == "stop_load":
            if load_task is not None:
                stop_load.set()
                await load_task
                load_task = None
            results.put(("produced_counts", index, orjson.dumps(produced).decode()))
        elif command == "counts":
            results.put(("produced_counts", index, orjson.dumps(produced).decode()))
        elif command == "shown":
            results.put(("shown", index, sum(len(s) for s in shown)))
        elif command == "stop":
            for g in gateways:
                await g.async_stop()
            results.put(("stopped", index))
            return


class Fleet:
    """The simulated gateways, `per_process` to a process."""

    def __init__(self, gateways: int, per_process: int, port: int, public_key: str) -> None:
        ctx = mp.get_context("spawn")
        self.folder = Path(tempfile.mkdtemp(prefix="linli-bench-gateways-"))
        self.results = ctx.Queue()
        self.commands = []
        self.processes = []
        index = 0
        remaining = gateways
        while remaining > 0:
            count = min(per_process, remaining)
            queue = ctx.Queue()
            process = ctx.Process(
                target=gateway_worker,
                args=(index, count, port, public_key, str(self.folder), queue, self.results),
                daemon=True,
            )
            process.start()
            self.commands.append(queue)
            self.processes.append(process)
            remaining -= count
            index += 1

    def ask(self, *command: Any, timeout: float = 600) -> list[tuple[Any, ...]]:
        for queue in self.commands:
            queue.put(command)
        return [self.results.get(timeout=timeout) for _ in self.commands]

    def produced(self) -> dict[str, int]:
        """Events each community's gateway has produced so far."""
        import orjson

        counts: dict[str, int] = {}
        for answer in self.ask("counts"):
            counts.update(orjson.loads(answer[2]))
        return counts

    def depth(self) -> tuple[int, int]:
        answers = self.ask("depth")
        return sum(a[2] for a in answers), sum(a[3] for a in answers)

    def wait_drained(self, timeout: float = 600) -> float:
        started = time.monotonic()
        while True:
            depth, _ = self.depth()
            if depth == 0:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{depth} events still in the gateways' outboxes")
            time.sleep(0.2)

    def close(self) -> None:
        try:
            self.ask("stop", timeout=120)
        finally:
            for process in self.processes:
                process.join(10)
                if process.is_alive():
                    process.kill()
            shutil.rmtree(self.folder, ignore_errors=True)


# -- consumers -------------------------------------------------------------------


RUNNING: set[Consumers] = set()


class Consumers:
    """`linli region consume` processes in one shared-subscription group."""

    def __init__(self, folder: Path, port: int, dsn: str, group: str, count: int) -> None:
        self.config = folder / f"{group}.toml"
        self.config.write_text(
            f'[region]\nid = "bench"\ndata_dir = "{folder}"\n'
            f'[broker]\nport = {port}\ngroup = "{group}"\nclient_prefix = "{group}"\n'
            f'[database]\ndsn = "{dsn}"\n[consumer]\nbatch = 1000\nbatch_ms = 20\nreceive_maximum = 5000\n'
        )
        self.count = count
        self.group, self.port = group, port
        self.processes: list[subprocess.Popen[bytes]] = []

    async def forget(self) -> None:
        """End the group's persistent sessions, or the broker would keep queueing copies for them."""
        import socket

        import aiomqtt

        for i in range(self.count):
            client_id = f"{self.group}-{socket.gethostname()}-{i}"[:64]
            async with aiomqtt.Client(
                "127.0.0.1",
                self.port,
                identifier=client_id,
                protocol=aiomqtt.ProtocolVersion.V5,
                clean_start=True,
            ):
                pass

    async def async_wait_subscribed(self, timeout: float = 120.0) -> float:
        """Until the broker routes to the group (a probe's PUBACK is not 0x10 "no matching
        subscribers"); a fixed wait was too short on a loaded machine, and a gateway's event
        that nobody is subscribed for stays in its outbox. The probe is not an envelope: the
        consumer drops it as malformed."""
        import aiomqtt

        from linli.wire import topics
        from linli.wire.client import RegionalClient

        started = time.monotonic()
        async with RegionalClient(
            "127.0.0.1", self.port, identifier=f"{self.group}-probe", protocol=aiomqtt.ProtocolVersion.V5
        ) as client:
            while True:
                code = await client.publish_acked(topics.up_topic("bench", "_probe", "probe"), b"probe")
                if code.value != 0x10:
                    return time.monotonic() - started
                if time.monotonic() - started > timeout:
                    raise TimeoutError(
                        f"consumer group {self.group} did not subscribe within {timeout:.0f} s"
                    )
                await asyncio.sleep(0.2)

    def start(self) -> None:
        RUNNING.add(self)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "linli",
                    "region",
                    "consume",
                    "--config",
                    str(self.config),
                    "--index",
                    str(i),
                    "--log-level",
                    "WARNING",
                ],
                env=env,
            )
            for i in range(self.count)
        ]

    def stop(self) -> None:
        RUNNING.discard(self)
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = []


# -- the measurements ------------------------------------------------------------------


async def count_events(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM events WHERE kind = ANY($1)", list(EVENT_KINDS)))


async def truncate(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE events, alerts, announcement_receipts")


async def throughput_run(
    fleet: Fleet,
    conn: asyncpg.Connection,
    folder: Path,
    port: int,
    dsn: str,
    group: str,
    consumers: int,
    per: int,
) -> dict[str, float]:
    group_consumers = Consumers(folder, port, dsn, group, consumers)
    group_consumers.start()  # make the persistent sessions and their subscriptions …
    await group_consumers.async_wait_subscribed()
    await asyncio.sleep(1.0)  # the second consumer of the group too
    group_consumers.stop()  # … and leave them offline: the broker queues for them
    await truncate(conn)
    fleet.ask("produce", per)
    publish_s = fleet.wait_drained()
    expected = per * GATEWAYS
    group_consumers.start()
    started = time.perf_counter()
    first_at, first_count = None, 0
    while True:
        count = await count_events(conn)
        now = time.perf_counter()
        if count and first_at is None:
            first_at, first_count = now, count
        if count >= expected:
            break
        if now - started > 600:
            raise TimeoutError(f"only {count} of {expected} events reached PostgreSQL")
        await asyncio.sleep(0.02)
    end = time.perf_counter()
    group_consumers.stop()
    await group_consumers.forget()
    assert first_at is not None
    rate = (count - first_count) / max(end - first_at, 1e-6)
    return {"rate": rate, "events": count, "drain_s": end - started, "publish_s": publish_s}


async def drill(
    fleet: Fleet,
    broker: RegionBroker,
    conn: asyncpg.Connection,
    folder: Path,
    dsn: str,
    outage_s: float,
    warm_s: float,
) -> dict[str, Any]:
    consumers = Consumers(folder, broker.port, dsn, "bench-drill", 2)
    consumers.start()
    await consumers.async_wait_subscribed()
    await asyncio.sleep(1.0)
    await truncate(conn)
    baseline = fleet.produced()
    fleet.ask("load", 1)
    await asyncio.sleep(warm_s)
    broker.stop()
    stopped = time.perf_counter()
    await asyncio.sleep(outage_s)
    depth_during, connected_during = fleet.depth()
    broker.start()
    restarted = time.perf_counter()
    fleet.ask("stop_load")
    after = fleet.produced()
    produced = {c: n - baseline.get(c, 0) for c, n in after.items()}
    total = sum(produced.values())
    while await count_events(conn) < total:
        if time.perf_counter() - restarted > max(300.0, outage_s * 3):
            print(f"drill: gave up waiting: {await count_events(conn)} of {total} events arrived", flush=True)
            break
        await asyncio.sleep(0.05)
    drained = time.perf_counter()
    reconnected = fleet.depth()[1]
    consumers.stop()
    await consumers.forget()
    from linli.region.deliveries import logs, replay

    # Every delivery the two consumers received, from their logs merged by arrival time — not
    # rows, whose key makes a second copy impossible, nor seq against n, which the gateway
    # assigns together. Every kind counts (a reconnecting gateway's status report too).
    ledger = replay(logs(folder, f"{consumers.group}-"))
    deliveries = ledger.counts()
    # Each consumer's own receipt order is exact; merged across the two, as exact as one clock.
    within = sum(replay([log]).counts().inversions for log in logs(folder, f"{consumers.group}-"))
    rows = await count_events(conn)
    missing = 0
    have = {
        r["community"]: r["n"]
        for r in await conn.fetch(
            "SELECT community, count(DISTINCT (data->>'n')::int) AS n FROM events WHERE kind = ANY($1) "
            "GROUP BY community",
            list(EVENT_KINDS),
        )
    }
    for community, n in produced.items():
        missing += n - have.get(community, 0)
    return {
        "produced": total,
        "rows": rows,
        "missing": missing,
        "deliveries": deliveries.deliveries,
        "distinct_delivered": deliveries.distinct,
        "duplicates_delivered": deliveries.duplicates,
        "duplicates_absorbed": deliveries.absorbed,
        "order_inversions": deliveries.inversions,
        "gateways_inverted": sum(1 for c in ledger.gateways().values() if c.inversions),
        "inversions_within_one_consumer": within,
        "outage_s": restarted - stopped,
        "outbox_rows_at_restart": depth_during,
        "gateways_connected_during_outage": connected_during,
        "gateways_connected_after": reconnected,
        "drain_s": drained - restarted,
    }


async def broadcast(
    fleet: Fleet,
    broker: RegionBroker,
    conn: asyncpg.Connection,
    folder: Path,
    dsn: str,
    signer: Any,
    runs: int,
) -> list[float]:
    from linli.region.broadcast import RegionLink, compose
    from linli.region.config import load_region_config
    from linli.region.queries import delivery_report

    config = load_region_config(
        None,
        environ={},
        overrides={
            "region": {"id": "bench", "data_dir": str(folder)},
            "broker": {"port": broker.port, "client_prefix": "bench-dash"},
            "database": {"dsn": dsn},
        },
    )
    consumers = Consumers(folder, broker.port, dsn, "bench-broadcast", 2)
    consumers.start()
    link = RegionLink(config, signer)
    task = asyncio.create_task(link.run())
    await asyncio.wait_for(link.connected.wait(), 30)
    await consumers.async_wait_subscribed()
    await asyncio.sleep(1.0)
    times = []
    try:
        for run in range(runs):
            started = time.perf_counter()
            sent = await compose(
                conn,
                link,
                kind="emergency",
                title="暴雨红色预警",
                body=f"Flood warning {run + 1}: leave underground car parks now.",
                targets=None,
                ttl_s=3600,
                by="bench",
            )
            while True:
                report = await delivery_report(conn, sent["id"])
                assert report is not None
                if report["gateways_shown"] >= GATEWAYS and report["tvs_shown"] >= GATEWAYS:
                    break
                if time.perf_counter() - started > 120:
                    raise TimeoutError(f"broadcast: only {report['gateways_confirmed']} gateways confirmed")
                await asyncio.sleep(0.02)
            times.append(time.perf_counter() - started)
            print(
                f"broadcast {run + 1}: {report['gateways_confirmed']}/{report['gateways_targeted']} "
                f"gateways, {report['tvs_shown']}/{report['tvs_total']} TVs confirmed in {times[-1]:.2f} s",
                flush=True,
            )
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        consumers.stop()
        await consumers.forget()
    return times


GATEWAYS = 200


async def main() -> None:
    global GATEWAYS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--gateways", type=int, default=200)
    parser.add_argument("--per-process", type=int, default=50)
    parser.add_argument("--events", type=int, help="events per gateway per throughput run")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--outage", type=float, help="seconds the broker is down in the drill")
    parser.add_argument(
        "--engine",
        choices=["nats", "mosquitto"],
        default="nats",
        help="nats (default): the three-node JetStream cluster (bench/region_nats.py); "
        "mosquitto: the single-broker region it replaced",
    )
    parser.add_argument("--publishers", type=int, default=4, help="nats: MQTT publisher processes")
    parser.add_argument(
        "--drill",
        choices=["node-kill", "outage", "all"],
        help="nats: run this drill instead of the throughput runs (node-kill: SIGKILL the stream "
        "leader's node under load and bring it back; outage: all three nodes down for --outage s)",
    )
    parser.add_argument(
        "--consumer-cpu",
        type=float,
        help="nats: cap each consumer process at this share of one core (a cgroup each, as a container "
        "limit would): the consumers are then the constraint and the engine keeps the other cores",
    )
    args = parser.parse_args()
    if args.engine == "nats":
        import region_nats

        await region_nats.main(args)
        return
    GATEWAYS = args.gateways
    per = args.events or (100 if args.quick else 500)
    runs = args.runs or (1 if args.quick else 3)
    outage = args.outage if args.outage is not None else (6.0 if args.quick else 120.0)
    from linli.region.schema import migrate
    from linli.wire.signing import Signer

    signer = Signer.generate()
    broker = RegionBroker()
    broker.start()
    cluster = PostgresCluster(durable=True)
    cluster.start()
    folder = Path(tempfile.mkdtemp(prefix="linli-bench-region-data-"))
    fleet: Fleet | None = None
    print(
        f"broker: {broker.version} on 127.0.0.1:{broker.port}; PostgreSQL (fsync on) on "
        f"127.0.0.1:{cluster.port}; {GATEWAYS} gateways ({args.per_process} per process); "
        f"{per} events per gateway per run; {runs} run(s)",
        flush=True,
    )
    try:
        admin = await asyncpg.connect(cluster.dsn())
        await admin.execute("CREATE DATABASE bench")
        await admin.close()
        dsn = cluster.dsn("bench")
        conn = await asyncpg.connect(dsn)
        await migrate(conn, "bench")
        started = time.perf_counter()
        fleet = Fleet(GATEWAYS, args.per_process, broker.port, signer.public_text)
        fleet.ask("start", 5.0 if args.quick else 30.0)
        print(f"{GATEWAYS} gateways up and connected in {time.perf_counter() - started:.1f} s", flush=True)
        # Warm-up, not counted: the first run also pays for cold caches and the first partition pages.
        await throughput_run(fleet, conn, folder, broker.port, dsn, "bench-warmup", 2, max(10, per // 5))
        one, two = [], []
        for run in range(runs):
            order = ((1, one), (2, two)) if run % 2 == 0 else ((2, two), (1, one))
            for consumers, bucket in order:
                result = await throughput_run(
                    fleet, conn, folder, broker.port, dsn, f"bench-r{run}-k{consumers}", consumers, per
                )
                bucket.append(result["rate"])
                print(
                    f"run {run + 1}, {consumers} consumer(s): {result['events']:,} events into PostgreSQL "
                    f"at {result['rate']:,.0f} events/s "
                    f"(gateways published them in {result['publish_s']:.1f} s)",
                    flush=True,
                )
        drill_result = await drill(fleet, broker, conn, folder, dsn, outage, 3.0 if args.quick else 20.0)
        print(f"outage drill: {drill_result}", flush=True)
        times = await broadcast(fleet, broker, conn, folder, dsn, signer, 1 if args.quick else 3)
        await conn.close()
    finally:
        for running in list(RUNNING):
            running.stop()
        if fleet is not None:
            fleet.close()
        broker.close()
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
    one_m, two_m = median(one), median(two)
    # Exactly once is PostgreSQL's: nothing missing, and no row twice (its key). Duplicates and
    # inversions are counted, not failures — the upsert absorbs the one, the seq guards the other.
    ok = drill_result["missing"] == 0 and drill_result["rows"] == drill_result["produced"]
    print(f"median, one consumer: {one_m:,.0f} events/s into PostgreSQL")
    print(
        f"median, two consumers sharing the subscription: {two_m:,.0f} events/s (ratio {two_m / one_m:.2f})"
    )
    print(
        f"outage drill ({drill_result['outage_s']:.0f} s down): {drill_result['produced']:,} events, "
        f"{drill_result['missing']} missing from PostgreSQL; {drill_result['deliveries']:,} deliveries of "
        f"{drill_result['distinct_delivered']:,} messages (every kind): "
        f"{drill_result['duplicates_delivered']} duplicates delivered, "
        f"{drill_result['duplicates_absorbed']} absorbed by the upsert; "
        f"order inversions: {drill_result['inversions_within_one_consumer']} in each consumer's own "
        f"receipt order, {drill_result['order_inversions']} in both consumers' receipt order merged "
        f"({drill_result['gateways_inverted']} gateways); "
        f"drained {drill_result['drain_s']:.1f} s after the restart"
    )
    print(
        f"emergency broadcast to {GATEWAYS} gateways: all confirmed (and shown) "
        f"in {median(times):.2f} s (median)"
    )
    print(f"region_events_per_s={two_m:.0f}")
    print(f"region_scale_ratio={two_m / one_m:.2f}")  # the headline, last (as in --engine nats)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    asyncio.run(main())
