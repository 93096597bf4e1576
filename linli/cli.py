"""The `linli` command.

linli run     [--config PATH] [--port N] [--mqtt-port N] [--data-dir DIR]
linli demo    [same] [--households N] [--rate MSGS_PER_S] [--for SECONDS]
linli profile check PATH...
linli user add NAME --role ROLE [--household ID] [--config PATH] [--data-dir DIR]
linli token create NAME [--days N] [--config PATH] [--data-dir DIR]
linli community import FILE [--dry-run] | show [--json]   [--config PATH] [--data-dir DIR]
linli adapters [--json] [--url URL] [--token TOKEN]
linli certify ADAPTER [--target URL] [--json PATH] [--power]
linli region COMMAND ...   the regional tier (linli region --help)
linli --version
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Final

from linli import community_cli
from linli.components import BUILTIN_ADAPTERS, DEFAULT_COMPONENTS, DEMO_COMPONENTS
from linli.gateway import __version__
from linli.gateway.config import load_for_command

#: The composition root's defaults: which components run when the configuration names none.
DEFAULTS: Final = {"components": list(DEFAULT_COMPONENTS), "adapters": {"builtin_package": BUILTIN_ADAPTERS}}

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
    user = commands.add_parser("user", help="portal accounts")
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION")
    user_add = user_commands.add_parser("add", help="add an account; prints its generated password once")
    user_add.add_argument("name")
    user_add.add_argument(
        "--role",
        required=True,
        choices=["resident", "household_admin", "carer", "manager", "installer", "provider"],
    )
    user_add.add_argument("--household", help="the household of a resident, household_admin or carer")
    user_add.add_argument("--display-name", help="the name people see (default: NAME)")
    token = commands.add_parser("token", help="API tokens")
    token_commands = token.add_subparsers(dest="token_command", metavar="ACTION")
    token_create = token_commands.add_parser("create", help="a bearer token for user NAME; printed once")
    token_create.add_argument("name")
    token_create.add_argument(
        "--days", type=float, default=365, help="valid for this many days (default 365)"
    )
    for sub in (user_add, token_create):
        sub.add_argument("--config", type=Path, help="TOML config file (for data_dir)")
        sub.add_argument("--data-dir", type=Path, help="where the database lives (default ./linli-data)")
    community_cli.add_parser(commands)
    profile = commands.add_parser("profile", help="firmware profile tools")
    profile_commands = profile.add_subparsers(dest="profile_command", metavar="ACTION")
    check = profile_commands.add_parser("check", help="validate profile files or folders")
    check.add_argument("paths", nargs="+", type=Path)
    adapters = commands.add_parser("adapters", help="list installed adapters and why any is not running")
    adapters.add_argument(
        "--config", type=Path, help="TOML config file (to find the running gateway's portal)"
    )
    adapters.add_argument("--url", help="the running gateway's portal (default: from the config)")
    adapters.add_argument("--token", help="an API token of a manager or installer (or set LINLI_TOKEN)")
    adapters.add_argument("--json", action="store_true", help="JSON instead of a table")
    certify = commands.add_parser("certify", help="run the conformance kit against an adapter")
    certify.add_argument("adapter", help="adapter id (see linli adapters)")
    certify.add_argument("--target", help="a live box's address (default: start the adapter's simulated box)")
    certify.add_argument("--json", dest="json_path", type=Path, help="also write the JSON report here")
    certify.add_argument(
        "--power", action="store_true", help="with --target: also turn the box off and wake it"
    )
    commands.add_parser("region", help="the regional tier: consumers, dashboard, broadcasts (see --help)")
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
    from linli.gateway.profiles import ProfileError, check_profile_data, profile_files, read_profile

    files = profile_files(paths)
    if not files:
        print("linli: no profile files found under " + ", ".join(map(str, paths)), file=sys.stderr)
        return 2
    failed = skipped = 0
    seen: dict[str, Path] = {}
    for path in files:
        try:
            data = read_profile(path)
            if isinstance(data, dict) and "$schema" in data and "capabilities" not in data:
                print(f"{path}: skipped (a JSON Schema, not a profile)")
                skipped += 1
                continue
            errors = check_profile_data(data)
        except ProfileError as exc:
            errors = exc.errors
        profile_id = data.get("id") if not errors and isinstance(data, dict) else None
        if isinstance(profile_id, str):
            if profile_id in seen:
                errors = [f"$.id: {profile_id!r} is also the id of {seen[profile_id]}: ids must be unique"]
            seen.setdefault(profile_id, path)
        if errors:
            failed += 1
            for error in errors:
                print(f"{path}: {error}")
        else:
            print(f"{path}: ok")
    checked = len(files) - skipped
    print(f"{checked - failed} of {checked} profiles valid")
    return 1 if failed else 0


def _adapters(args: argparse.Namespace) -> int:
    from linli.gateway.plugins.listing import list_adapters

    url = args.url
    allowed = None
    if url is None:
        config = load_for_command(args.config, defaults=DEFAULTS)
        if config is None:
            return 2
        portal = config["portal"]
        host = portal["host"] if portal["host"] not in ("0.0.0.0", "::", "") else "127.0.0.1"
        url = portal.get("public_url") or f"http://{host}:{portal['port']}"
        allowed = config["adapters"]["allowed"]
    token = args.token or os.environ.get("LINLI_TOKEN")
    return list_adapters(
        url,
        args.json,
        token=token,
        required=args.url is not None,
        allowed=allowed,
        builtin_package=BUILTIN_ADAPTERS,
    )


def _certify(args: argparse.Namespace) -> int:
    # The kit lives with the adapters (linli/certify); the core reaches it by name only.
    run = importlib.import_module("linli.certify.run")
    return int(run.main(args.adapter, target=args.target, json_path=args.json_path, power=args.power))


def _accounts(args: argparse.Namespace) -> int:
    """`linli user add` / `linli token create`, on the database file (the gateway may be running)."""
    from linli.gateway import users
    from linli.gateway.store.database import connect
    from linli.gateway.store.migrations import migrate

    config = load_for_command(args.config, {"data_dir": str(args.data_dir)} if args.data_dir else None)
    if config is None:
        return 2
    # What can be refused without the database is refused before creating one.
    try:
        if args.command == "user":
            users.check_name(args.name)
            users.check_role(args.role, args.household)
        elif not 1 / 1440 <= args.days <= 3650:
            raise users.UserError("invalid", "--days must be from 0.0007 (one minute) to 3650 (ten years)")
    except users.UserError as exc:
        print(f"linli: {exc.message}", file=sys.stderr)
        return 2
    path = Path(config["data_dir"]).expanduser().resolve() / "linli.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        migrate(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            if args.command == "user":
                password = users.new_password()
                user = users.add_user(
                    conn,
                    args.name,
                    args.role,
                    password_hash=users.hash_password(password),
                    household_id=args.household,
                    display_name=args.display_name,
                    by="cli",
                )
                secret_line = f"  password: {password}"
                where = f", {user.household_id}" if user.household_id else ""
                what = f"user {user.name} ({user.role.value}{where})"
            else:
                found = users.get_user(conn, name=args.name)
                if found is None:
                    raise users.UserError(
                        "not_found", f"no user {args.name!r}; add one with `linli user add`"
                    )
                kind = users.TokenKind.PROVIDER if found.role is users.Role.PROVIDER else users.TokenKind.API
                token, secret = users.create_token(
                    conn, kind=kind, user_id=found.id, name="cli token", ttl_s=args.days * 86400
                )
                users.append_audit(
                    conn, actor="cli", action="token.create", target=found.name, detail={"token": token.id}
                )
                secret_line = f"  token:    {secret}\n  use it as: Authorization: Bearer {secret}"
                until = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(time.time() + args.days * 86400))
                what = f"API token {token.id} for {found.name} (valid until {until})"
        except users.UserError as exc:
            conn.execute("ROLLBACK")
            print(f"linli: {exc.message}", file=sys.stderr)
            return 2
        conn.execute("COMMIT")
    finally:
        conn.close()
    print(f"{what} created. Shown once — keep it safe:\n{secret_line}")
    return 0


async def _demo_users(gateway: Any) -> list[tuple[str, str, str, str]]:
    """The demo's accounts, each with a fresh generated password (and an alarm PIN for members)."""
    import secrets

    from linli.gateway import users

    wanted: list[tuple[str, str, str | None]] = [("demo.manager", "manager", None)]
    homes = sorted(gateway.registry.households)[:2]
    for household in homes:
        wanted += [
            (f"{household}.admin", "household_admin", household),
            (f"{household}.resident", "resident", household),
        ]
    # A family carer of the first home, which (in the demo) consents to share with carers:
    # without that consent a carer sees nothing, which is right but shows nothing.
    wanted += [(f"{home}.carer", "carer", home) for home in homes[:1]]
    from linli.services.health import HEALTH
    from linli.services.security import SECURITY

    health = gateway.peer(HEALTH)
    for home in homes[:1]:
        if health is not None and not health.may_share(home, "carer"):
            await health.async_grant_consent(home, by="demo", purposes=["carer"], note="演示 demo")
    security = gateway.peer(SECURITY)
    made = []
    for name, role, household in wanted:
        password = users.new_password()
        digest = await asyncio.to_thread(users.hash_password, password)

        def write(
            db: Any,
            name: str = name,
            role: str = role,
            household: str | None = household,
            digest: str = digest,
        ) -> None:
            existing = users.get_user(db.conn, name=name)
            if existing is None:
                users.add_user(db.conn, name, role, password_hash=digest, household_id=household, by="demo")
            else:
                users.set_password_hash(db.conn, existing.id, digest, by="demo")

        await gateway.store.async_write(write)
        pin = ""
        if household is not None and security is not None and role != "carer":  # a carer is away
            pin = f"{secrets.randbelow(10000):04d}"
            # set anew each run, like the password (by the demo, so the old PIN is not asked for)
            await security.async_set_pin(household, name, pin, by="demo")
        made.append((name, role, password, pin))
    return made


async def _serve(config: dict[str, Any], duration: float | None, demo: bool) -> int:
    from linli.gateway.runtime import Gateway, GatewayStartError
    from linli.portal.app import PORTAL

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
        gateway.settle_heap()
        portal = gateway.peer(PORTAL)
        url = portal.url if portal is not None else None
        if url:
            what = "demo community" if demo else "gateway"
            lines = [f"\n  Linli {what} is running — open {url}"]
            if demo:
                lines.append(f"  Demo accounts (new passwords each run; sign in at {url}login):")
                for name, role, password, pin in await _demo_users(gateway):
                    pin_text = f"  alarm PIN {pin}" if pin else ""
                    lines.append(f"    {name:<18} {role:<16} password {password}{pin_text}")
            elif setup_url := getattr(portal, "setup_url", None):
                lines.append(f"  First run: create the manager's account at {setup_url}")
            lines.append("  (Ctrl-C to stop)\n")
            print("\n".join(lines), flush=True)
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
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["region"]:
        # A higher layer: imported by name, and only when asked for.
        return int(importlib.import_module("linli.region.cli").main(argv[1:]))
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help(sys.stderr)
        return 2
    if args.command in ("user", "token"):
        if getattr(args, f"{args.command}_command") is None:
            action = "add" if args.command == "user" else "create"
            print(f"linli: usage: linli {args.command} {action} NAME ...", file=sys.stderr)
            return 2
        return _accounts(args)
    if args.command == "community":
        return community_cli.main(args)
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
        # The simulated community's read-only views open to this machine without signing in.
        overrides.setdefault("portal", {})["open_local_views"] = True
        if args.rate is not None:
            overrides["demo"]["rate"] = args.rate
    demo = args.command == "demo"
    config = load_for_command(
        args.config, overrides, DEFAULTS, add_components=DEMO_COMPONENTS if demo else ()
    )
    if config is None:
        return 2
    logging.basicConfig(
        level=config["log_level"],
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    duration = getattr(args, "duration", None)
    return asyncio.run(_serve(config, duration, args.command == "demo"))


if __name__ == "__main__":
    raise SystemExit(main())
