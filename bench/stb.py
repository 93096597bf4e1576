"""Set-top boxes on equal terms: command round trips per operator, and alerts reaching TV overlays.

    python bench/stb.py [--quick] [--households 200] [--commands N] [--alerts N] [--runs R]

Separate processes run the simulated boxes on 127.0.0.1 — half carrier IPTV
boxes (RDK Thunder JSON-RPC), half cable boxes (DIAL + UPnP/DLNA), one process
per operator — so that the boxes' own work shares neither the gateway's event
loop nor the other operator's. The gateway
adopts them all — each box keeps its events open, the carrier boxes their
Thunder WebSocket, the cable boxes their UPnP (GENA) subscriptions — and runs
the alert engine and the `tv` delivery channel.

1. Command round trip, gateway → box → state read back and confirmed, through
   `gateway.commands` as services and the portal send them, for each adapter
   side by side: p50 and p99 per command type. Baseline, same run, same boxes:
   a bare aiohttp POST to the box (Thunder getPowerState; SOAP GetTransportInfo).
   The two operators' samples are taken in turns (carrier, cable, cable,
   carrier, …), so that a noisy neighbour's burst weighs on both alike.
2. Alert → overlay: alerts raised for random households through the alert
   engine (durable commit first), at a steady rate, with every household's box
   connected; latency from just before the raise to the moment the box's
   overlay shows the alert's text (the box's own clock, same machine).

Medians over the runs; the headline, printed last, is the operators' parity:
the widest gap between them over every command type, p50 and p99 (the slower
operator's figure over the faster's; the target is at most 1.20).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing as mp
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from common import ROOT, free_port, median

sys.path.insert(0, str(ROOT))

from linli.gateway.config import load_config
from linli.gateway.runtime import Gateway

ADAPTERS = {"carrier": "stb_carrier", "broadcast": "stb_broadcast"}
Sample = Callable[[int], Awaitable[float]]  # the i-th sample of one operator, in ms
SOAP_TRANSPORT_INFO = (
    '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
    '<u:GetTransportInfo xmlns:u="urn:schemas-upnp-org:service:AVTransport:2">'
    "<InstanceID>0</InstanceID></u:GetTransportInfo></s:Body></s:Envelope>"
)


# -- the boxes' process ---------------------------------------------------------------


def _serve_boxes(boxes_wanted: list[tuple[int, str]], ready: Any, stop: Any) -> None:
    async def run() -> None:
        from linli.sim.televisions import make_box

        boxes = []
        for index, operator in boxes_wanted:
            box = make_box(operator, f"bench-{index:04d}")
            await box.async_start()
            boxes.append((index, operator, box))
        # The boxes live as long as the process: out of the collector's way, as the gateway's are.
        gc.collect()
        gc.freeze()
        ready.send(
            [(index, operator, box.url, box.base_url, box.wake_port) for index, operator, box in boxes]
        )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, stop.recv)
        for _, _, box in boxes:
            await box.async_stop()

    asyncio.run(run())


class BoxProcess:
    """Household i's box: a carrier box for odd i, a cable box for even i.

    Each operator's boxes run in a process of their own, as in the homes the two
    operators' boxes share nothing: neither operator's boxes pause for the other's
    garbage collection, or queue behind the other's requests.
    """

    def __init__(self, count: int) -> None:
        ctx = mp.get_context("spawn")
        self.processes = []
        self._stops = []
        pipes = []
        for operator in ADAPTERS:
            wanted = [
                (i, operator)
                for i in range(1, count + 1)
                if ("carrier" if i % 2 else "broadcast") == operator
            ]
            parent_ready, child_ready = ctx.Pipe()
            stop_parent, stop_child = ctx.Pipe()
            process = ctx.Process(target=_serve_boxes, args=(wanted, child_ready, stop_child), daemon=True)
            process.start()
            self.processes.append(process)
            self._stops.append(stop_parent)
            pipes.append(parent_ready)
        started = []
        for parent_ready in pipes:
            if not parent_ready.poll(120):
                raise RuntimeError("a boxes' process did not start")
            started.extend(parent_ready.recv())
        self.boxes: list[tuple[str, str, str, int]] = [box[1:] for box in sorted(started)]

    def stop(self) -> None:
        for stop in self._stops:
            stop.send("stop")
        for process in self.processes:
            process.join(30)
            if process.is_alive():
                process.kill()


# -- the gateway --------------------------------------------------------------------------


async def start_gateway(folder: Path, households: int) -> Gateway:
    settings = {"timeout_s": 3, "confirm_timeout_s": 3}
    config = load_config(
        None,
        environ={},
        overrides={
            "data_dir": str(folder),
            "gateway_id": "gw-bench",
            "log_level": "WARNING",
            "mqtt": {"broker": "embedded", "port": free_port()},
            "portal": {"enabled": False, "port": free_port()},
            "components": [
                "linli.gateway.plugins.host:AdapterHost",
                "linli.services.screens.screens:Screens",
                "linli.services.alerts:AlertEngine",
            ],
            "adapters": {
                "builtin_package": "linli.adapters",
                "only": list(ADAPTERS.values()),
                "settings": dict.fromkeys(ADAPTERS.values(), settings),
            },
        },
    )
    gateway = Gateway(config)
    await gateway.async_start()
    registry = gateway.registry
    await registry.async_import(
        buildings=[{"id": "b1", "name": "1号楼"}],
        units=[{"id": f"u{i:04d}", "building_id": "b1", "name": f"{i}"} for i in range(1, households + 1)],
        households=[
            {"id": f"h{i:04d}", "unit_id": f"u{i:04d}", "name": f"h{i}"} for i in range(1, households + 1)
        ],
    )
    return gateway


async def adopt_all(gateway: Gateway, boxes: list[tuple[str, str, str, int]]) -> dict[str, list[str]]:
    host: Any = gateway.components["adapters"]
    by_operator: dict[str, list[str]] = {"carrier": [], "broadcast": []}

    async def one(index: int, operator: str, url: str, wake_port: int) -> None:
        device = await host.adapter(ADAPTERS[operator]).async_adopt(
            f"h{index:04d}", url, wake_address="127.0.0.1", wake_port=wake_port
        )
        by_operator[operator].append(device.id)

    for start in range(0, len(boxes), 25):
        await asyncio.gather(
            *(
                one(i + 1, operator, url, wake)
                for i, (operator, url, _, wake) in enumerate(boxes)
                if start <= i < start + 25
            )
        )
    return by_operator


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- 1. command round trips -------------------------------------------------------------------


COMMANDS = {
    "notify": lambda i: ("notify", {"action": "show", "text": f"bench {i}"}),
    "volume": lambda i: ("volume", {"action": "set", "level": i % 100}),
    "channel": lambda i: ("channel", {"action": "up"}),
}


def round_trip(gateway: Gateway, devices: list[str], name: str) -> Sample:
    """One command through `gateway.commands`, as services and the portal send it."""
    make = COMMANDS[name]

    async def one(i: int) -> float:
        device = devices[i % len(devices)]
        started = time.perf_counter()
        await gateway.commands.async_send(device, *make(i))
        return (time.perf_counter() - started) * 1000

    return one


def protocol_only(gateway: Gateway, op: str, devices: list[str], name: str) -> Sample:
    """The adapter's protocol exchanges for a command (do it, read it back), without the gateway around."""
    fleet: Any = gateway.components["adapters"].adapter(ADAPTERS[op]).fleet  # type: ignore[attr-defined]
    make = COMMANDS[name]
    together = {"channel": {"channel", "media"}}

    async def one(i: int) -> float:
        box = fleet.boxes[devices[i % len(devices)]]
        kind, command = make(i)
        resolved = fleet._resolve(box, kind, command)
        async with box.lock:  # as a command does: the box's echo events are not refreshed meanwhile
            started = time.perf_counter()
            await box.driver.async_execute(kind, resolved)
            await box.driver.async_read(frozenset(together.get(kind, {kind})))
            elapsed = (time.perf_counter() - started) * 1000
        box.quiet_until = time.monotonic() + 1.0
        return elapsed

    return one


def bare_post(session: aiohttp.ClientSession, operator: str, base_urls: list[str]) -> Sample:
    """A bare aiohttp POST of the operator's protocol to its box: the floor under every command."""

    async def one(i: int) -> float:
        base = base_urls[i % len(base_urls)]
        started = time.perf_counter()
        if operator == "carrier":
            body = b'{"jsonrpc":"2.0","id":1,"method":"org.rdk.System.1.getPowerState","params":{}}'
            async with session.post(f"{base}/jsonrpc", data=body) as response:
                await response.read()
        else:
            headers = {
                "Content-Type": 'text/xml; charset="utf-8"',
                "SOAPAction": '"urn:schemas-upnp-org:service:AVTransport:2#GetTransportInfo"',
            }
            async with session.post(
                f"{base}/upnp/control/AVTransport", data=SOAP_TRANSPORT_INFO, headers=headers
            ) as response:
                await response.read()
        return (time.perf_counter() - started) * 1000

    return one


async def paired(samples: dict[str, Sample], count: int) -> dict[str, list[float]]:
    """`count` samples of each operator, taken in turns (ABBA), so both share the machine's moments.

    These machines are shared: measured one after the other, a neighbour's burst
    lands on one operator's figures only. In turns, each pair of samples is taken
    under the same load, and the order alternates so neither always goes first.
    """
    times: dict[str, list[float]] = {op: [] for op in samples}
    ops = list(samples)
    for i in range(count):
        for op in ops if i % 2 == 0 else reversed(ops):
            times[op].append(await samples[op](i))
    return times


# -- 2. alerts to overlays -------------------------------------------------------------------------


async def alerts_to_overlays(
    gateway: Gateway, boxes: list[tuple[str, str, str, int]], count: int, rate: float, run: int
) -> dict[str, list[float]]:
    engine: Any = gateway.components["alerts"]
    households = [f"h{i:04d}" for i in range(1, len(boxes) + 1)]
    operator_of = {f"h{i + 1:04d}": box[0] for i, box in enumerate(boxes)}
    base_of = {f"h{i + 1:04d}": box[2] for i, box in enumerate(boxes)}
    rng = random.Random(run)
    raised: dict[str, tuple[str, float]] = {}
    tasks = []
    interval = 1.0 / rate
    next_at = time.perf_counter()
    for n in range(count):
        household = rng.choice(households)
        title = f"SOS bench {run}-{n}"
        raised[title] = (household, time.time())
        tasks.append(asyncio.create_task(engine.async_raise(kind="sos", household_id=household, title=title)))
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    await asyncio.gather(*tasks)
    await asyncio.sleep(0.5)
    shown: dict[str, float] = {}
    async with aiohttp.ClientSession() as session:
        for household in {h for h, _ in raised.values()}:
            async with session.get(f"{base_of[household]}/_sim/state") as response:
                state = await response.json()
            for ts, text in state["overlay_log"]:
                shown.setdefault(text, ts)
    latencies: dict[str, list[float]] = {"carrier": [], "broadcast": []}
    missing = 0
    for title, (household, at) in raised.items():
        ts = shown.get(title)
        if ts is None:
            missing += 1
            continue
        latencies[operator_of[household]].append((ts - at) * 1000)
    if missing:
        print(f"  {missing} alerts never reached their overlay", flush=True)
    for alert in list(engine.alerts.values()):  # close them: the next run starts clean
        await engine.async_acknowledge(alert.id, "bench")
    await asyncio.sleep(1.0)  # the acknowledged alerts leave their TVs
    return latencies


# -- main --------------------------------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--households", type=int, default=200)
    parser.add_argument("--commands", type=int, help="round trips per command type and adapter, per run")
    parser.add_argument("--alerts", type=int, help="alerts per run")
    parser.add_argument("--rate", type=float, default=20.0, help="alerts per second")
    parser.add_argument("--runs", type=int)
    args = parser.parse_args()
    commands = args.commands or (200 if args.quick else 2000)
    alerts = args.alerts or (150 if args.quick else 1000)
    runs = args.runs or (3 if args.quick else 5)
    print(
        f"{args.households} households' boxes ({args.households // 2 + args.households % 2} carrier, "
        f"{args.households // 2} cable) in a separate process; {commands} round trips per command and "
        f"adapter, {alerts} alerts at {args.rate:g}/s, per run; {runs} runs",
        flush=True,
    )
    started = time.perf_counter()
    box_process = BoxProcess(args.households)
    folder = Path(tempfile.mkdtemp(prefix="linli-bench-stb-"))
    results: dict[str, dict[str, list[float]]] = {}
    samples: dict[str, list[float]] = {}  # every round trip of every run, for the tail
    overlay: dict[str, list[float]] = {"carrier": [], "broadcast": []}
    overlay_p99: dict[str, list[float]] = {"carrier": [], "broadcast": []}
    try:
        gateway = await start_gateway(folder, args.households)
        devices = await adopt_all(gateway, box_process.boxes)
        # As `linli run` does once it is ready: its adopted boxes are re-attached at start-up.
        gateway.settle_heap()
        print(
            f"adopted {sum(len(v) for v in devices.values())} boxes in {time.perf_counter() - started:.1f} s"
        )
        bases = {op: [b[2] for b in box_process.boxes if b[0] == op] for op in ADAPTERS}
        async with aiohttp.ClientSession() as session:
            bare = {op: bare_post(session, op, bases[op]) for op in ADAPTERS}
            await paired(bare, 50)  # warm up connections and caches
            await paired({op: round_trip(gateway, devices[op], "notify") for op in ADAPTERS}, 50)
            for run in range(runs):
                line = []
                measured = {"bare": await paired(bare, commands)}
                for name in COMMANDS:
                    raw = await paired(
                        {op: protocol_only(gateway, op, devices[op], name) for op in ADAPTERS}, commands
                    )
                    for op, values in raw.items():
                        results.setdefault(f"{op}/{name}/protocol", {}).setdefault("p50", []).append(
                            median(values)
                        )
                    measured[name] = await paired(
                        {op: round_trip(gateway, devices[op], name) for op in ADAPTERS}, commands
                    )
                for name, by_op in measured.items():
                    for op, times in by_op.items():
                        key = f"{op}/{name}"
                        results.setdefault(key, {}).setdefault("p50", []).append(median(times))
                        samples.setdefault(key, []).extend(times)
                        if name != "bare":
                            line.append(f"{key} p50 {median(times):.2f} p99 {percentile(times, 0.99):.2f}")
                ratios = {
                    name: median(measured[name]["broadcast"]) / median(measured[name]["carrier"])
                    for name in COMMANDS
                }
                line.append("cable/carrier p50 " + " ".join(f"{name} {r:.2f}" for name, r in ratios.items()))
                latencies = await alerts_to_overlays(gateway, box_process.boxes, alerts, args.rate, run)
                for op, values in latencies.items():
                    if values:
                        overlay[op].append(median(values))
                        overlay_p99[op].append(percentile(values, 0.99))
                line.append(
                    "alert→overlay p99 "
                    + " ".join(f"{op} {overlay_p99[op][-1]:.1f}" for op in ADAPTERS if overlay_p99[op])
                )
                print(f"run {run + 1}: " + "; ".join(line) + " (ms)", flush=True)
        await gateway.async_stop()
    finally:
        box_process.stop()
        shutil.rmtree(folder, ignore_errors=True)

    def m(key: str, q: str) -> float:
        # p50: the median of the runs' medians; p99: of all runs' samples together, since
        # a run's p99 rests on its 1% slowest — a handful of samples, one stall apart.
        return percentile(samples[key], 0.99) if q == "p99" else median(results[key][q])

    print(
        "\ncommand round trip, gateway → box → confirmed state (ms; p50 the median of the runs, "
        "p99 of all runs' samples):"
    )
    print(
        f"  {'':10} {'carrier p50':>12} {'p99':>8} {'cable p50':>12} {'p99':>8} "
        f"{'cable/carrier p50':>18} {'p99':>6}"
    )
    ratios: dict[str, tuple[float, float]] = {}
    for name in ("bare", *COMMANDS):
        c50, c99 = m(f"carrier/{name}", "p50"), m(f"carrier/{name}", "p99")
        b50, b99 = m(f"broadcast/{name}", "p50"), m(f"broadcast/{name}", "p99")
        label = "bare POST" if name == "bare" else name
        ratios[name] = (b50 / c50, b99 / c99)
        print(
            f"  {label:10} {c50:12.2f} {c99:8.2f} {b50:12.2f} {b99:8.2f} "
            f"{ratios[name][0]:18.2f} {ratios[name][1]:6.2f}"
        )
    print("\nthe gateway's own part (round trip p50 minus the same protocol exchanges made directly, ms):")
    for name in COMMANDS:
        own = {op: m(f"{op}/{name}", "p50") - m(f"{op}/{name}/protocol", "p50") for op in ADAPTERS}
        print(
            f"  {name:10} carrier {own['carrier']:.2f} (protocol {m(f'carrier/{name}/protocol', 'p50'):.2f})"
            f"   cable {own['broadcast']:.2f} (protocol {m(f'broadcast/{name}/protocol', 'p50'):.2f})"
        )
    all_overlay = [v for op in ADAPTERS for v in overlay_p99[op]]
    print(
        f"\nalert raised → on the box's overlay, {args.households} boxes connected: p50 "
        + ", ".join(f"{op} {median(overlay[op]):.1f} ms" for op in ADAPTERS if overlay[op])
        + "; p99 "
        + ", ".join(f"{op} {median(overlay_p99[op]):.1f} ms" for op in ADAPTERS if overlay_p99[op])
    )
    print(f"carrier_notify_vs_bare_p50={m('carrier/notify', 'p50') / m('carrier/bare', 'p50'):.2f}")
    print(f"broadcast_notify_vs_bare_p50={m('broadcast/notify', 'p50') / m('broadcast/bare', 'p50'):.2f}")
    print(f"alert_overlay_p99_ms={max(statistics.median(all_overlay), 0):.1f}" if all_overlay else "")
    c, b = m("carrier/notify", "p50"), m("broadcast/notify", "p50")
    print(f"stb_notify_parity={max(c, b) / min(c, b):.2f}")
    # The headline: the widest gap between the operators over every command, p50 and p99
    # (a ratio either way round: 1.00 is equal, the target is at most 1.20).
    worst = max(max(r, 1 / r) for name in COMMANDS for r in ratios[name])
    print(f"stb_parity_worst={worst:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
