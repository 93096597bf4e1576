"""`linli region …`: the regional tier's commands.

linli region keygen    [--config PATH] [--out FILE]   the region's Ed25519 signing key; prints the public key
linli region migrate   [--config PATH]                create or upgrade the PostgreSQL schema
linli region consume   [--config PATH] [--index N]    one stateless consumer (run several: one each --index)
linli region dashboard [--config PATH]                the regional dashboard, broadcast composer, signed clock
linli region serve     [--config PATH] [--consumers N] the dashboard plus N consumer processes, supervised
linli region operator add NAME | list | disable NAME   the dashboard's operators (add prints the secrets once)
linli region cluster up | status | down [--dir DIR]     a three-node NATS JetStream cluster on loopback
linli region cluster allow COMMUNITY --subject DN       a gateway's certificate, scoped to its community
linli region cluster deny COMMUNITY                     (--dashboard instead of COMMUNITY: the downlink's)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from linli.region.config import RegionConfigError, load_region_config
from linli.wire import topics

_LOGGER = logging.getLogger("linli.region")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linli region", description="Linli's regional tier")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", type=Path, help="region TOML config (default: none, all defaults)")
        sub.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    keygen = commands.add_parser("keygen", help="create the region's signing key (once)")
    common(keygen)
    keygen.add_argument("--out", type=Path, help="key file (default: <region.data_dir>/region.key)")
    common(commands.add_parser("migrate", help="create or upgrade the PostgreSQL schema"))
    common(
        commands.add_parser(
            "maintain", help="partitions ahead, and drop those past each kind's [retention] (pg_partman)"
        )
    )
    consume = commands.add_parser("consume", help="one consumer process of the shared subscription")
    common(consume)
    consume.add_argument("--index", type=int, default=0, help="this consumer's stable number (default 0)")
    common(
        commands.add_parser("dashboard", help="the dashboard, the broadcast composer and the signed clock")
    )
    serve = commands.add_parser("serve", help="the dashboard plus N supervised consumer processes")
    common(serve)
    serve.add_argument("--consumers", type=int, default=2, help="consumer processes (default 2)")
    operator = commands.add_parser("operator", help="the dashboard's operators: add, list, disable")
    actions = operator.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="a new operator; prints its password and API token once")
    common(add)
    add.add_argument("name", help="the operator's name (2-64 letters, digits or . _ @ -)")
    common(actions.add_parser("list", help="every operator, and whether it is disabled"))
    disable = actions.add_parser("disable", help="no more sign-in or token; its sessions end at once")
    common(disable)
    disable.add_argument("name")
    cluster = commands.add_parser("cluster", help="a three-node NATS JetStream cluster on this machine")
    steps = cluster.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = steps.add_parser("up", help="start the nodes not running; make the stream (3 replicas)")
    allow = steps.add_parser(
        "allow", help="let a gateway's certificate in, scoped to its community (with --tls-ca)"
    )
    deny = steps.add_parser("deny", help="remove a gateway from the registry; its connections are closed")
    for sub in (allow, deny):
        who = sub.add_mutually_exclusive_group(required=True)
        who.add_argument("community", nargs="?", help="the community id the gateway serves")
        who.add_argument(
            "--dashboard", action="store_true", help="the dashboard's certificate (it publishes the downlink)"
        )
    allow.add_argument(
        "--subject",
        required=True,
        help="the certificate's RFC 2253 subject (`openssl x509 -noout -subject -nameopt RFC2253`) "
        "or a SAN e-mail/DNS name",
    )
    for sub in (
        up,
        allow,
        deny,
        steps.add_parser("status", help="the nodes, the stream and the access rules"),
        steps.add_parser("down"),
    ):
        common(sub)
        sub.add_argument(
            "--dir", type=Path, default=Path("linli-region-cluster"), help="the cluster's folder"
        )
    up.add_argument("--port", type=int, default=4222, help="node i's NATS client port is PORT+i")
    up.add_argument("--cluster-port", type=int, default=6222, help="node i's route port is this+i")
    up.add_argument("--mqtt-port", type=int, default=1883, help="node i's MQTT port (gateways) is this+i")
    up.add_argument("--http-port", type=int, default=8222, help="node i's monitoring port is this+i")
    up.add_argument("--tls-cert", help="the MQTT listeners' certificate (PEM); with --tls-key: MQTT over TLS")
    up.add_argument("--tls-key", help="its private key")
    up.add_argument("--tls-ca", help="require gateways' client certificates from this CA")
    return parser


def _keygen(config: dict[str, Any], out: Path | None) -> int:
    from linli.wire.signing import Signer

    path = out or Path(config["region"]["data_dir"]) / "region.key"
    if path.exists():
        signer = Signer.from_file(path)
        print(f"linli region: {path} exists already; its public key is shown below (not replaced)")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        signer = Signer.generate()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(signer.private_text() + "\n")
        print(f"linli region: signing key written to {path} (keep it secret; back it up)")
    print("Give every gateway the region's public key, in its config:\n")
    print("[uplink]")
    print(f'region_public_keys = ["{signer.public_text}"]')
    return 0


async def _until_signal(work: Callable[[], Coroutine[Any, Any, Any]]) -> int:
    """Run `work` until it ends or SIGINT/SIGTERM arrives."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task: asyncio.Task[Any] = asyncio.create_task(work())
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait((task, stopper), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        stopper.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return 0


async def _maintain(config: dict[str, Any]) -> int:
    import asyncpg

    from linli.region.schema import maintain, migrate

    conn = await asyncpg.connect(config["database"]["dsn"], timeout=10)
    try:
        await migrate(conn, config["region"]["id"])
        changed = await maintain(conn, config["region"]["id"], config["retention"])
    finally:
        await conn.close()
    made = [c for c in changed if not c.startswith("-")]
    dropped = [c[1:] for c in changed if c.startswith("-")]
    print(f"linli region: partitions made {made}; dropped, past their retention: {dropped}")
    return 0


async def _migrate(config: dict[str, Any]) -> int:
    import asyncpg

    from linli.region.schema import LATEST, migrate

    conn = await asyncpg.connect(config["database"]["dsn"], timeout=10)
    try:
        applied = await migrate(conn, config["region"]["id"])
    finally:
        await conn.close()
    print(
        f"linli region: schema at version {LATEST}"
        + (f" (applied {applied})" if applied else " (up to date)")
    )
    return 0


def _cli_user() -> str:
    """Who ran the command, for the audit log."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def _operator(config: dict[str, Any], args: argparse.Namespace) -> int:
    import asyncpg

    from linli.region import operators
    from linli.region.schema import migrate

    region = config["region"]["id"]
    conn = await asyncpg.connect(config["database"]["dsn"], timeout=10)
    try:
        await migrate(conn, region)
        if args.action == "add":
            try:
                made = await operators.add(conn, region, args.name, by=_cli_user())
            except operators.OperatorError as exc:
                print(f"linli region operator add: {exc.message}", file=sys.stderr)
                return 1
            # Shown this once, on the terminal (never logged): only their hashes are kept.
            print(f"linli region: operator {made.name!r} added. Keep these now; they are not shown again:\n")
            print(f"  password (the dashboard's sign-in page):  {made.password}")
            print(f"  API token (scripts: 'Authorization: Bearer …'):  {made.token}\n")
            return 0
        if args.action == "disable":
            try:
                await operators.disable(conn, region, args.name, by=_cli_user())
            except operators.OperatorError as exc:
                print(f"linli region operator disable: {exc.message}", file=sys.stderr)
                return 1
            print(f"linli region: operator {args.name!r} disabled (sessions ended, token refused)")
            return 0
        rows = await operators.listing(conn)
        if not rows:
            print("no operators yet: `linli region operator add NAME`")
        for row in rows:
            state = "disabled" if row["disabled"] else "active"
            last = row["last_login"].isoformat(timespec="seconds") if row["last_login"] else "never"
            print(
                f"{row['name']:<24} {state:<9} added {row['created']:%Y-%m-%d} by {row['created_by']}, "
                f"last sign-in {last}"
            )
        return 0
    finally:
        await conn.close()


async def _consume(config: dict[str, Any], index: int) -> int:
    from linli.region.consumer import Consumer

    if config["broker"]["engine"] == "jetstream":
        from linli.region.jetstream import JetStreamConsumer

        consumer: Consumer = JetStreamConsumer(config, index)
    else:
        consumer = Consumer(config, index)
    try:
        return await _until_signal(consumer.run)
    finally:
        await consumer.async_close()
        _LOGGER.info("region consumer stopped: %s", consumer.stats())


async def _dashboard(config: dict[str, Any]) -> int:
    from linli.region.dashboard import run_dashboard

    return await _until_signal(lambda: run_dashboard(config))


async def _serve(config: dict[str, Any], args: argparse.Namespace) -> int:
    from linli.region.dashboard import run_dashboard

    await _migrate(config)

    async def consumer_process(index: int) -> None:
        """One consumer process, restarted if it dies."""
        command = [sys.executable, "-m", "linli", "region", "consume", "--index", str(index)]
        if args.config:
            command += ["--config", str(args.config)]
        command += ["--log-level", args.log_level]
        while True:
            process = await asyncio.create_subprocess_exec(*command)
            try:
                code = await process.wait()
            except asyncio.CancelledError:
                process.terminate()
                with contextlib.suppress(ProcessLookupError):
                    await asyncio.wait_for(process.wait(), 10)
                raise
            _LOGGER.warning("region consumer %d exited with %s; restarting in 1 s", index, code)
            await asyncio.sleep(1.0)

    async def everything() -> None:
        # A TaskGroup, not gather: cancelled, it waits for every consumer_process to stop its child.
        # gather ends at the first child cancelled (the dashboard is quickest), so the consumers were
        # cancelled again mid-wait and left running, orphaned, after `serve` had exited.
        async with asyncio.TaskGroup() as group:
            group.create_task(run_dashboard(config))
            for index in range(args.consumers):
                group.create_task(consumer_process(index))

    return await _until_signal(everything)


def _config_hints(config: dict[str, Any], layout: Any) -> list[str]:
    """The region config lines that would point the consumers and the dashboard at this cluster.

    Tried from outside: with the defaults, the dashboard's signed downlink went to 127.0.0.1:1883 and
    was refused, retrying for ever, while the cluster listened elsewhere.
    """
    from linli.common.config import host_port

    hints = []
    if list(config["jetstream"]["servers"]) != layout.servers():
        hints.append("[jetstream]\nservers = [" + ", ".join(f'"{s}"' for s in layout.servers()) + "]")
    mqtt = [f"127.0.0.1:{port}" for port in layout.mqtt_ports()]
    if [host_port(s) for s in config["broker"].get("servers") or []] != [host_port(m) for m in mqtt]:
        hints.append("[broker]\nservers = [" + ", ".join(f'"{m}"' for m in mqtt) + "]")
    if layout.tls.get("ca_file") and not config["broker"].get("tls"):
        # mutual TLS on the MQTT listeners: the downlink goes out with the dashboard's certificate
        hints.append(
            f'[broker]\ntls = {{ ca_file = "{layout.tls["ca_file"]}", cert_file = "<the dashboard\'s '
            'certificate (allow --dashboard)>", key_file = "<its key>" }'
        )
    return hints


async def _cluster(config: dict[str, Any], args: argparse.Namespace) -> int:
    from linli.region import cluster

    try:
        if args.action == "up":
            if bool(args.tls_cert) != bool(args.tls_key):
                print("linli region cluster up: --tls-cert and --tls-key go together", file=sys.stderr)
                return 2
            tls = {"cert_file": args.tls_cert, "key_file": args.tls_key} if args.tls_cert else {}
            if args.tls_ca:
                tls["ca_file"] = args.tls_ca
            layout = cluster.start_nodes(
                args.dir,
                cluster.Layout(args.port, args.cluster_port, args.mqtt_port, args.http_port, tls),
                region=config["region"]["id"],
            )
            info = await cluster.wait_ready(layout, config)
            print(
                f"linli region: cluster up in {args.dir}: NATS {', '.join(layout.servers())}; "
                f"MQTT{' (TLS)' if tls else ''} on 127.0.0.1:{', '.join(map(str, layout.mqtt_ports()))}; "
                f"stream {info.config.name} ({info.config.num_replicas} replicas) over "
                f"{' '.join(info.config.subjects or [])}"
            )
            region = config["region"]["id"]
            source = args.config or "the defaults: pass --config"
            print(
                f"region {region!r} (from {source}): its consumers take "
                f"{' and '.join(topics.region_up_filters(region))}; "
                "the cluster keeps no publish for another region"
            )
            hints = _config_hints(config, layout)
            if hints:
                print(
                    "the region's config does not name these nodes yet; for the consumers and the "
                    "dashboard's downlink it needs:\n" + "\n".join(hints)
                )
            if layout.auth:
                print(
                    "access: only certificates allowed by `linli region cluster allow` connect over MQTT; "
                    "the consumers need, in the region's config:\n"
                    f'[jetstream]\nuser = "{layout.auth["user"]}"\n'
                    f'password_file = "{layout.auth["password_file"]}"'
                )
            else:
                print("access: open (no --tls-ca): any client may publish and subscribe to anything")
            return 0
        if args.action in ("allow", "deny"):
            community = None if args.dashboard else args.community
            reloaded = cluster.change_access(
                args.dir, config["region"]["id"], community, args.subject if args.action == "allow" else None
            )
            what = "the dashboard" if community is None else f"community {community!r}"
            done = (
                f"{args.subject!r} may now connect as {what}" if args.action == "allow" else f"{what} removed"
            )
            print(f"linli region: {done}; {len(reloaded)} running node(s) reloaded; recorded in audit.jsonl")
            return 0
        if args.action == "down":
            stopped = cluster.stop_nodes(args.dir)
            print(f"linli region: cluster in {args.dir} down ({len(stopped)} node(s) stopped)")
            return 0
        report = await cluster.status(args.dir, config)
        for node in report["nodes"]:
            state = "running" if node["running"] else "STOPPED"
            print(
                f"node {node['node']}: {state:<8} pid {node['pid']:<8} "
                f"nats {node['nats']}  mqtt {node['mqtt']}"
            )
        print(f"stream: {report.get('stream', 'no node running')}")
        for durable, owed in report.get("consumers", {}).items():
            waiting, unacknowledged = owed["pending"], owed["unacknowledged"]
            print(
                f"consumer {durable} ({owed['takes']}): {waiting} waiting, "
                f"{unacknowledged} delivered unacknowledged"
            )
        rules = report["access"]
        print(f"access: {rules['mode']}")
        if "gateways" in rules:
            for community, subject in rules["gateways"].items():
                print(f"  {community:<24} {subject}")
            if not rules["gateways"]:
                print("  no gateway allowed yet: `linli region cluster allow COMMUNITY --subject …`")
            print(f"  {'(dashboard)':<24} {rules['dashboard'] or 'not allowed: no signed downlink'}")
            for subject, community in rules["denied"].items():
                print(f"  denied, cannot connect:  {subject} (was {community})")
        for user, refused in report.get("refused", {}).items():
            print(
                f"  refused publishes by {user}: {refused['publishes']}, the last to {refused['last']} at "
                f"{refused['at']} (PUBACKed and dropped by the nodes: that gateway is not told)"
            )
        return 0 if all(n["running"] for n in report["nodes"]) else 1
    except cluster.ClusterError as exc:
        print(f"linli region cluster {args.action}: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 0
    try:
        config = load_region_config(args.config)
    except RegionConfigError as exc:
        print(f"linli region: configuration error:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    try:
        if args.command == "keygen":
            return _keygen(config, args.out)
        if args.command == "migrate":
            return asyncio.run(_migrate(config))
        if args.command == "maintain":
            return asyncio.run(_maintain(config))
        if args.command == "consume":
            return asyncio.run(_consume(config, args.index))
        if args.command == "dashboard":
            return asyncio.run(_dashboard(config))
        if args.command == "operator":
            return asyncio.run(_operator(config, args))
        if args.command == "cluster":
            args.dir = args.dir.resolve()  # the nodes' configs and cluster.json name absolute paths
            return asyncio.run(_cluster(config, args))
        if args.command == "serve":
            if args.consumers < 1:
                print("linli region: --consumers must be at least 1", file=sys.stderr)
                return 2
            return asyncio.run(_serve(config, args))
    except ModuleNotFoundError as exc:
        # asyncpg (and the region's other needs) are an extra: a gateway alone does not need them
        print(
            f"linli region {args.command}: {exc}; the regional tier needs its extra: "
            "pip install 'linli[region]' (or, in a checkout, pip install '.[region]')",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:  # one line saying what failed, not a traceback
        print(f"linli region {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 2
