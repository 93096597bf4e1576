"""The `linli` command.

linli run     [--config PATH] [--port N] [--mqtt-port N] [--data-dir DIR]
linli demo    [same] [--households N] [--rate MSGS_PER_S] [--for SECONDS]
linli profile check PATH...
linli adapters [--json] [--url URL]
linli certify ADAPTER [--target URL] [--json PATH] [--power]
linli --version
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from gateway import __version__
from gateway.config import ConfigError, load_config

_LOGGER = logging.getLogger("linli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linli", description="Linli (邻里) smart-community home gateway")
    parser.add_argument("--version", action="version", version=f"linli {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def gateway_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", type=Path, help="TOML config file (default: none, all defaults)")
        sub.add_argument("--port", type=int, help="portal port (default 8080)")
        sub.add_argument("--mqtt-port", type=int, help="embedded/managed broker port (default 1883)")
        sub.add_argument("--data-dir", type=Path, help="where the database lives (default ./linli-data)")
        sub.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    run = commands.add_parser("run", help="run the gateway from a config file")
    gateway_options(run)
    demo = commands.add_parser("demo", help="run the gateway with a simulated community")
    gateway_options(demo)
    demo.add_argument("--households", type=int, default=20, help="simulated homes (default 20)")
    demo.add_argument(
        "--rate",
        type=float,
        help="telemetry messages per second, whole community (default: half a message per home per second)",
    )
    demo.add_argument(
        "--for",
        dest="duration",
        type=float,
        metavar="SECONDS",
        help="stop after this many seconds (default: until Ctrl-C)",
    )
    profile = commands.add_parser("profile", help="firmware profile tools")
    profile_commands = profile.add_subparsers(dest="profile_command", metavar="ACTION")
    check = profile_commands.add_parser("check", help="validate profile files or folders")
    check.add_argument("paths", nargs="+", type=Path)
    adapters = commands.add_parser("adapters", help="list installed adapters and why any is not running")
    adapters.add_argument(
        "--config", type=Path, help="TOML config file (to find the running gateway's portal)"
    )
    adapters.add_argument("--url", help="the running gateway's portal (default: from the config)")
    adapters.add_argument("--json", action="store_true", help="JSON instead of a table")
    certify = commands.add_parser("certify", help="run the conformance kit against an adapter")
    certify.add_argument("adapter", help="adapter id (see linli adapters)")
    certify.add_argument("--target", help="a live box's address (default: start the adapter's simulated box)")
    certify.add_argument("--json", dest="json_path", type=Path, help="also write the JSON report here")
    certify.add_argument(
        "--power", action="store_true", help="with --target: also turn the box off and wake it"
    )
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.port is not None:
        overrides.setdefault("portal", {})["port"] = args.port
    if args.mqtt_port is not None:
        overrides.setdefault("mqtt", {})["port"] = args.mqtt_port
    if args.data_dir is not None:
        overrides["data_dir"] = str(args.data_dir)
    if args.log_level is not None:
        overrides["log_level"] = args.log_level
    return overrides


def _profile_check(paths: list[Path]) -> int:
    from gateway.profiles import ProfileError, check_profile_data, profile_files, read_profile

    files = profile_files(paths)
    if not files:
        print("linli: no profile files found under " + ", ".join(map(str, paths)), file=sys.stderr)
        return 2
    failed = 0
    for path in files:
        try:
            errors = check_profile_data(read_profile(path))
        except ProfileError as exc:
            errors = exc.errors
        if errors:
            failed += 1
            for error in errors:
                print(f"{path}: {error}")
        else:
            print(f"{path}: ok")
    print(f"{len(files) - failed} of {len(files)} profiles valid")
    return 1 if failed else 0


def _adapters(args: argparse.Namespace) -> int:
    from gateway.plugins.listing import list_adapters

    url = args.url
    if url is None:
        try:
            portal = load_config(args.config)["portal"]
        except ConfigError as exc:
            print(f"linli: configuration error:\n{exc}", file=sys.stderr)
            return 2
        host = portal["host"] if portal["host"] not in ("0.0.0.0", "::", "") else "127.0.0.1"
        url = portal.get("public_url") or f"http://{host}:{portal['port']}"
    return list_adapters(url, args.json)


def _certify(args: argparse.Namespace) -> int:
    # The kit lives with the adapters (adapters/certify); the core reaches it by name only.
    run = importlib.import_module("adapters.certify.run")
    return int(run.main(args.adapter, target=args.target, json_path=args.json_path, power=args.power))


async def _serve(config: dict[str, Any], duration: float | None, demo: bool) -> int:
    from gateway.runtime import Gateway, GatewayStartError

    gateway = Gateway(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await gateway.async_start()
        except GatewayStartError as exc:
            print(f"linli: cannot start: {exc}", file=sys.stderr)
            return 2
        portal = gateway.components.get("portal")
        url = getattr(portal, "url", None)
        if url:
            what = "demo community" if demo else "gateway"
            print(f"\n  Linli {what} is running — open {url}\n  (Ctrl-C to stop)\n", flush=True)
        if duration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
        else:
            await stop.wait()
        _LOGGER.info("stopping")
        await gateway.async_stop()
        _LOGGER.info("stopped cleanly")
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 0
    if args.command == "profile":
        if args.profile_command != "check":
            print("linli: usage: linli profile check PATH...", file=sys.stderr)
            return 2
        return _profile_check(args.paths)
    if args.command == "adapters":
        return _adapters(args)
    if args.command == "certify":
        return _certify(args)
    overrides = _overrides(args)
    if args.command == "demo":
        if args.households < 1:
            print("linli: --households must be at least 1", file=sys.stderr)
            return 2
        overrides["demo"] = {"households": args.households}
        if args.rate is not None:
            overrides["demo"]["rate"] = args.rate
    try:
        config = load_config(args.config, overrides=overrides)
    except ConfigError as exc:
        print(f"linli: configuration error:\n{exc}", file=sys.stderr)
        return 2
    if args.command == "demo":
        config["components"] = [*config["components"], "adapters.sim.community:SimCommunity"]
    logging.basicConfig(
        level=config["log_level"],
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    duration = getattr(args, "duration", None)
    return asyncio.run(_serve(config, duration, args.command == "demo"))


if __name__ == "__main__":
    raise SystemExit(main())
