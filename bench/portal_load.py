"""The portal at community scale: 3,000 live WebSockets, announcements and alerts, and REST reads.

    python bench/portal_load.py [--quick] [--households N] [--rounds R]

A 1,000-household community (the phones and TVs of every home: three
WebSockets per household, 3,000 in all, each with its resident's bearer token)
on the real gateway and portal in this process; the clients live in a separate
process. Measured there, each the time from the request to each client's receipt:

* an announcement to the whole community: every one of the 3,000 sockets;
* one household's alert ("Call for help" over REST): that household's three
  sockets, while every other socket is watched for a leak;
* `GET /api/v1/households/{id}` (the phone's home screen) at 500 requests/s.

Baseline in the same run: the same clients against a bare aiohttp server in
its own process (one WebSocket broadcast of the same size; a `GET` answering a
constant JSON document), so the figures read as Linli's cost over aiohttp's.
The clients' readers do the same small work for both (note the time, parse,
tick off the socket: no task or timer per message), and the gateway's own
share of an announcement (hub handed it → last frame written) is measured
inside the gateway process (`fan_out`).
Headlines: `announce_p99_ms`, `household_alert_p99_ms`, `overview_p99_ms` (last).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing as mp
import queue
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from common import free_port, median, start_portal_gateway

from linli.gateway import users

SOCKETS_PER_HOME = 3


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# -- the bare baseline server (its own process) --------------------------------------------


def _bare_server(port: int, ready: Any) -> None:
    from aiohttp import web

    sockets: set[web.WebSocketResponse] = set()

    async def ws(request: web.Request) -> web.WebSocketResponse:
        response = web.WebSocketResponse()
        await response.prepare(request)
        sockets.add(response)
        async for _ in response:
            pass
        sockets.discard(response)
        return response

    async def broadcast(request: web.Request) -> web.Response:
        body = await request.read()
        text = body.decode()
        for socket in list(sockets):
            await socket.send_str(text)
        return web.json_response({"sent": len(sockets)})

    async def overview(request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["hid"], "status": {}, "alerts": []})

    app = web.Application()
    app.router.add_get("/ws", ws)
    app.router.add_post("/broadcast", broadcast)
    app.router.add_get("/households/{hid}", overview)
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- the clients (their own process) ---------------------------------------------------------


def _clients(spec: dict[str, Any], out: Any) -> None:
    asyncio.run(_clients_main(spec, out))


async def _clients_main(spec: dict[str, Any], out: Any) -> None:
    import aiohttp

    base, bare = spec["base"], spec["bare"]
    homes: list[dict[str, str]] = spec["homes"]
    rounds: int = spec["rounds"]
    results: dict[str, list[float]] = {
        k: [] for k in ("announce", "bare_broadcast", "alert", "overview", "bare_get")
    }
    leaks = 0
    # Every socket's reader does the same small work for Linli and for the bare server: note the
    # time, parse the JSON, and tick off the socket if a measurement waits for it. No task, queue
    # or timer per message, so the client process does not become the bottleneck it measures.
    watch: dict[str, Any] = {}
    alert_homes: set[int] = set()  # the sockets allowed to receive the current household alert

    def arrived(index: int, at: float, message: dict[str, Any]) -> None:
        nonlocal leaks
        if message.get("type", "").startswith("alert") and index not in alert_homes:
            leaks += 1
        if watch and index in watch["pending"] and watch["match"](message):
            results[watch["kind"]].append((at - watch["started"]) * 1000)
            watch["pending"].discard(index)
            if not watch["pending"]:
                watch["done"].set()

    async def reader(index: int, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            arrived(index, time.perf_counter(), orjson.loads(message.data))

    async def measure(kind: str, wanted: set[int], match: Any, request: Any) -> Any:
        watch.update(kind=kind, pending=set(wanted), match=match, done=asyncio.Event())
        watch["started"] = time.perf_counter()
        answer = await request()
        await asyncio.wait_for(watch["done"].wait(), 10)
        watch.clear()
        return answer

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        sockets = []
        for i in range(len(homes) * SOCKETS_PER_HOME):
            home = homes[i // SOCKETS_PER_HOME]
            ws = await http.ws_connect(
                f"{base}/api/v1/ws", headers={"Authorization": f"Bearer {home['token']}"}
            )
            sockets.append((home["household"], ws))
        first_bare = len(sockets)  # the bare server's sockets are numbered after Linli's
        bare_sockets = [await http.ws_connect(f"{bare}/ws") for _ in range(len(sockets))]
        readers = [asyncio.create_task(reader(i, ws)) for i, (_, ws) in enumerate(sockets)]
        readers += [asyncio.create_task(reader(first_bare + i, ws)) for i, ws in enumerate(bare_sockets)]
        await asyncio.sleep(2.0)  # the hello messages
        # 6,000 sockets' worth of objects make a full collection in this process take ~300 ms,
        # and one landed in most measured runs: the client's pause, not the gateway's. Everything
        # that lives for the whole run moves out of the collector's way.
        gc.collect()
        gc.freeze()

        manager = {"Authorization": f"Bearer {spec['manager_token']}"}
        everyone = set(range(len(sockets)))
        all_bare = {first_bare + i for i in range(len(bare_sockets))}

        async def post(url: str, body: Any, headers: dict[str, str], status: int) -> Any:
            async with http.post(url, json=body, headers=headers) as response:
                assert response.status == status, await response.text()
                return await response.json()

        for r in range(rounds):
            # an announcement to all
            await measure(
                "announce",
                everyone,
                lambda m: m["type"] == "announcement",
                lambda r=r: post(
                    f"{base}/api/v1/announcements",
                    {"title": f"停水通知 {r}", "body": "明天 9:00-12:00 停水", "scope": "community"},
                    manager,
                    201,
                ),
            )
            # the bare broadcast of the same size
            payload = {"type": "announcement", "announcement": {"title": "x" * 60, "body": "y" * 60}}
            await measure(
                "bare_broadcast",
                all_bare,
                lambda m: m["type"] == "announcement",
                lambda payload=payload: post(f"{bare}/broadcast", payload, {}, 200),
            )
            # one household's alert
            home_index = (r * 37) % len(homes)
            home = homes[home_index]
            resident = {"Authorization": f"Bearer {home['token']}"}
            alert_homes.clear()
            alert_homes.update(home_index * SOCKETS_PER_HOME + k for k in range(SOCKETS_PER_HOME))
            alert = await measure(
                "alert",
                set(alert_homes),
                lambda m: m["type"].startswith("alert"),
                lambda home=home, resident=resident: post(
                    f"{base}/api/v1/households/{home['household']}/help", {}, resident, 201
                ),
            )
            await asyncio.sleep(0.3)  # a leak would arrive in the meantime
            await post(f"{base}/api/v1/alerts/{alert['id']}/resolve", {"note": "bench"}, resident, 200)
            await asyncio.sleep(0.2)
            alert_homes.clear()

        async def paced_gets(url_of: Any, headers_of: Any, kind: str, rate: float, seconds: float) -> None:
            tasks = []
            start = time.perf_counter()

            async def one(i: int) -> None:
                begun = time.perf_counter()
                async with http.get(url_of(i), headers=headers_of(i)) as response:
                    await response.read()
                    assert response.status == 200
                results[kind].append((time.perf_counter() - begun) * 1000)

            for i in range(int(rate * seconds)):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)

        seconds = spec["get_seconds"]
        await paced_gets(
            lambda i: f"{base}/api/v1/households/{homes[i % len(homes)]['household']}",
            lambda i: {"Authorization": f"Bearer {homes[i % len(homes)]['token']}"},
            "overview",
            500,
            seconds,
        )
        await paced_gets(
            lambda i: f"{bare}/households/h{i % len(homes)}", lambda i: {}, "bare_get", 500, seconds
        )
        for task in readers:
            task.cancel()
        for _, ws in sockets:
            await ws.close()
        for ws in bare_sockets:
            await ws.close()
    out.put({**results, "leaks": leaks, "sockets": len(sockets)})


async def run_once(households: int, rounds: int, get_seconds: float) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="linli-bench-portal-"))
    from linli.gateway.mqtt.broker import EmbeddedBroker

    mqtt_port, portal_port, bare_port = free_port(), free_port(), free_port()
    broker = EmbeddedBroker("127.0.0.1", mqtt_port, folder)
    await broker.async_start()
    gateway, _ = await start_portal_gateway(folder, mqtt_port, portal_port, households)
    digest = users.hash_password(users.new_password())  # one hash: the bench signs in with tokens only

    def accounts(db: Any) -> tuple[list[dict[str, str]], str]:
        homes = []
        for household in sorted(gateway.registry.households):
            user = users.add_user(
                db.conn,
                f"{household}.r",
                "resident",
                password_hash=digest,
                household_id=household,
                by="bench",
            )
            token = users.create_token(
                db.conn, kind=users.TokenKind.API, user_id=user.id, name="b", ttl_s=3600
            )[1]
            homes.append({"household": household, "token": token})
        manager = users.add_user(db.conn, "bench.manager", "manager", password_hash=digest, by="bench")
        return homes, users.create_token(
            db.conn, kind=users.TokenKind.API, user_id=manager.id, name="b", ttl_s=3600
        )[1]

    homes, manager_token = await gateway.store.async_write(accounts)
    # The server's own share, measured inside the gateway: from the hub being handed the
    # announcement to the last socket's frame written (the writes are synchronous).
    hub = next(c for c in gateway.notifier.channels if c.name == "ws").hub
    fan_out: list[float] = []
    announce = hub.announce

    def timed(announcement: dict[str, Any], households: set[str] | None) -> int:
        begun = time.perf_counter()
        sent = announce(announcement, households)
        fan_out.append((time.perf_counter() - begun) * 1000)
        return sent

    hub.announce = timed  # type: ignore[method-assign]
    gateway.settle_heap()  # as `linli run` does once it is ready (the community is loaded by now)
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    bare = ctx.Process(target=_bare_server, args=(bare_port, ready), daemon=True)
    bare.start()
    ready.wait(30)
    await asyncio.sleep(0.5)
    out = ctx.Queue()
    clients = ctx.Process(
        target=_clients,
        args=(
            {
                "base": f"http://127.0.0.1:{portal_port}",
                "bare": f"http://127.0.0.1:{bare_port}",
                "homes": homes,
                "manager_token": manager_token,
                "rounds": rounds,
                "get_seconds": get_seconds,
            },
            out,
        ),
        daemon=True,
    )
    clients.start()
    # Read while waiting: a child does not exit before its queue's pipe is drained.
    result = None
    while result is None:
        try:
            result = out.get_nowait()
        except queue.Empty:
            if not clients.is_alive():
                raise RuntimeError(
                    "the client process ended without results; see its traceback above"
                ) from None
            await asyncio.sleep(0.2)
    bare.kill()
    await gateway.async_stop()
    await broker.async_stop()
    return {**result, "fan_out": fan_out}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--runs", type=int)
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 20)
    runs = args.runs or (1 if args.quick else 3)
    get_seconds = 4.0 if args.quick else 10.0
    print(
        f"{args.households} households × {SOCKETS_PER_HOME} WebSockets; {rounds} announcements and "
        f"{rounds} household alerts per run; GET overview at 500/s for {get_seconds:g} s; {runs} run(s)"
    )
    table: dict[str, list[float]] = {}
    leaks = 0
    for run in range(runs):
        r = await run_once(args.households, rounds, get_seconds)
        leaks += r["leaks"]
        line = []
        for kind in ("announce", "fan_out", "bare_broadcast", "alert", "overview", "bare_get"):
            p50, p99 = statistics.median(r[kind]), percentile(r[kind], 99)
            table.setdefault(kind + "_p50", []).append(p50)
            table.setdefault(kind + "_p99", []).append(p99)
            line.append(f"{kind} p50 {p50:.1f} p99 {p99:.1f} ms")
        print(
            f"run {run + 1} ({r['sockets']} sockets): "
            + "; ".join(line)
            + f"; alerts leaked to other homes: {r['leaks']}",
            flush=True,
        )
    m = {k: median(v) for k, v in table.items()}
    print(
        f"announcement to all {args.households * SOCKETS_PER_HOME} sockets: p50 {m['announce_p50']:.1f} "
        f"p99 {m['announce_p99']:.1f} ms (bare aiohttp broadcast p50 {m['bare_broadcast_p50']:.1f} "
        f"p99 {m['bare_broadcast_p99']:.1f} ms; ratio p99 {m['announce_p99'] / m['bare_broadcast_p99']:.2f}; "
        "target 250 ms)"
    )
    print(
        f"  of which the gateway's fan-out (hub handed the announcement → last frame written): "
        f"p50 {m['fan_out_p50']:.1f} p99 {m['fan_out_p99']:.1f} ms"
    )
    print(f"household alert to its own sockets: p99 {m['alert_p99']:.1f} ms (target 50 ms); leaks {leaks}")
    print(
        f"GET household overview at 500/s: p99 {m['overview_p99']:.1f} ms "
        f"(bare aiohttp {m['bare_get_p99']:.1f} ms; target 20 ms)"
    )
    print(f"announce_p99_ms={m['announce_p99']:.1f}")
    print(f"household_alert_p99_ms={m['alert_p99']:.1f}")
    print(f"overview_p99_ms={m['overview_p99']:.1f}")
    sys.exit(1 if leaks else 0)


if __name__ == "__main__":
    asyncio.run(main())
