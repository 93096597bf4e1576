"""Component `uplink`: the community's store-and-forward link to the regional tier.

Runs only when `[uplink] enabled = true` (the config then puts
`gateway.uplink:Uplink` first among the components, so that it keeps the
outbox before any service writes). It

* activates the outbox on the gateway's store, so that alert changes (and
  anything else written with `outbox.enqueue`) go up in the same transaction;
* writes the community's status, device health and hourly rollups to the outbox;
* keeps the outbox within its bounds while the link is down;
* runs the relay (`relay.py`), and checks every downlink message (`linli/wire/downlink.py`)
  before an announcement reaches a screen.

The gateway never waits for the region: if the link is down, residents notice
nothing and the outbox fills (within its bound) until it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final

import orjson
import sqlite_utils

from linli.common.ratelog import RateLimitedLog
from linli.gateway import __version__
from linli.gateway.context import Context
from linli.gateway.events import AlertChanged, AnnouncementReceived, DownlinkRejected
from linli.gateway.uplink import outbox
from linli.gateway.uplink.migrations import MIGRATIONS
from linli.gateway.uplink.outbox import Retention
from linli.gateway.uplink.provisions import ALERTS_RAISED, OPEN_ALERTS
from linli.gateway.uplink.relay import Relay
from linli.gateway.uplink.screens import async_show_on_tvs, tv_targets
from linli.gateway.uplink.settings import UplinkSettings
from linli.wire import messages
from linli.wire.downlink import Announcement, ClockReading, DownlinkCheck
from linli.wire.signing import SignatureError, Verifier

if TYPE_CHECKING:
    from linli.gateway.component import ComponentApi

_LOGGER = logging.getLogger(__name__)
REJECTION_REPORTS_PER_MIN: Final = 10  # a flood of forged messages must not fill the outbox
CLOCK_WARN_S: Final = 60.0
LOW_BATTERY_PCT: Final = 20


class Uplink:
    name = "uplink"
    requires = ("store", "registry")
    migrations = MIGRATIONS  # its own tables, made before it starts

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # the gateway's wall clock (a test may make it wrong)
        self._api: ComponentApi | None = None
        self.settings: UplinkSettings | None = None
        self.relay: Relay | None = None
        self.check: DownlinkCheck | None = None
        self.clock_offset_s = 0.0  # region's clock minus ours, from the region's signed time
        self._clock_issued = 0.0  # the last trusted reading's issued_at (kept on disk)
        self._tasks: list[asyncio.Task[None]] = []
        self._jobs: set[asyncio.Task[Any]] = set()
        self._report_now = asyncio.Event()
        self._rejection_window: list[float] = []
        self._rejections_suppressed = 0
        self._rejection_log = RateLimitedLog(_LOGGER)  # once a minute
        self._clock_log = RateLimitedLog(_LOGGER, 3600.0)  # once an hour
        self.announcements = 0
        self.rejections: dict[str, int] = {}
        self._reported_fleet: tuple[int, int] | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def async_start(self, api: ComponentApi) -> None:
        self._api = api
        settings = self.settings = UplinkSettings.from_config(api.config)
        verifier = Verifier(settings.region_public_keys)
        if not len(verifier):
            _LOGGER.warning(
                "uplink: no uplink.region_public_keys configured: every announcement from the region "
                "will be rejected; add the region's public key (`linli region keygen` prints it)"
            )
        self.check = DownlinkCheck(
            verifier, region=settings.region, community=settings.community, max_ttl_s=settings.max_ttl_s
        )
        state = await api.store.async_read(outbox.read_state)
        self.clock_offset_s = float(state.get("clock_offset_s", 0.0))
        self._clock_issued = float(state.get("clock_issued", 0.0))
        relay = self.relay = Relay(settings, api.store, self._on_downlink, self._on_connection)
        await api.store.async_write(lambda db: outbox.activate(db, relay.wake_threadsafe))
        api.bus.listen(AlertChanged, lambda _event: relay.wake())
        self._tasks = [
            asyncio.create_task(relay.run(), name="linli-uplink"),
            asyncio.create_task(self._report_loop(), name="linli-uplink-reports"),
            asyncio.create_task(self._prune_loop(), name="linli-uplink-prune"),
        ]
        _LOGGER.info(
            "uplink to region %s (%s) for community %s",
            settings.region,
            settings.where,
            settings.community,
        )

    async def async_stop(self) -> None:
        tasks = [*self._tasks, *self._jobs]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._api is not None:
            await self._api.store.async_write(outbox.deactivate)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=f"linli-uplink-{name}")
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    @property
    def gateway(self) -> ComponentApi:
        assert self._api is not None, "uplink is not started"
        return self._api

    def region_now(self) -> float:
        """The region's time as this gateway best knows it.

        Never earlier than the last reading it trusted: a gateway that restarts with its own
        clock set back (a flat RTC battery) must not judge current what it knew had expired.
        """
        return max(self.clock() + self.clock_offset_s, self._clock_issued)

    def _on_connection(self, connected: bool) -> None:
        if connected:
            self._report_now.set()  # tell the region where we stand at once

    # -- reports: status, device health, rollups --------------------------------

    async def _report_loop(self) -> None:
        s = self.settings
        assert s is not None
        due = {"status": 0.0, "device_health": 0.0, "rollup": time.monotonic() + s.rollup_interval_s}
        intervals = {
            "status": s.status_interval_s,
            "device_health": s.summary_interval_s,
            "rollup": s.rollup_interval_s,
        }
        rollup_from = self.clock()
        rows_at_start = self.gateway.store.rows_written
        while True:
            now = time.monotonic()
            if self._report_now.is_set():
                self._report_now.clear()
                due["status"] = due["device_health"] = now
            try:
                if due["status"] <= now:
                    await self.async_report_status()
                    due["status"] = now + intervals["status"]
                    if self._fleet_shape() != self._reported_fleet:
                        due["device_health"] = now  # devices came, went, or changed availability
                if due["device_health"] <= now:
                    await self.async_report_device_health()
                    due["device_health"] = now + intervals["device_health"]
                if due["rollup"] <= now:
                    rows = self.gateway.store.rows_written
                    until = self.clock()
                    await self.async_report_rollup(rollup_from, until, rows - rows_at_start)
                    rollup_from, rows_at_start = until, rows
                    due["rollup"] = now + intervals["rollup"]
            except Exception:
                _LOGGER.exception("uplink report failed; trying again at the next interval")
                due = {k: max(v, now + 5.0) for k, v in due.items()}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._report_now.wait(), max(0.05, min(due.values()) - time.monotonic())
                )

    async def async_report_status(self) -> int | None:
        """The community's status, superseding the previous one (thinned first when the outbox is full)."""
        gateway = self.gateway

        count_open = gateway.provided(OPEN_ALERTS)  # the alert engine's, where it runs

        def read(conn: sqlite3.Connection) -> tuple[dict[str, Any], dict[str, int], dict[str, str]]:
            open_alerts = count_open(conn) if count_open is not None else {}
            return outbox.depth(conn), open_alerts, outbox.read_state(conn)

        depth, open_alerts, state = await gateway.store.async_read(read)
        devices = list(gateway.registry.iter_devices())
        assert self.relay is not None
        data = {
            "name": gateway.config["community"]["name"],
            "version": __version__,
            "started_at": gateway.started_at,
            "households": len(gateway.registry.households),
            "devices": len(devices),
            "devices_online": sum(1 for d in devices if d.available),
            "tvs": len(tv_targets(gateway)),
            "open_alerts": open_alerts,
            "outbox": depth,
            "dropped": {k: int(v) for k, v in state.items() if k.startswith(("dropped_", "thinned"))},
            "clock_offset_s": round(self.clock_offset_s, 3),
            "uplink": {k: v for k, v in self.relay.stats().items() if k != "last_error"},
        }
        return await gateway.store.async_write(
            lambda db: outbox.enqueue(
                db, messages.STATUS, data, retention=Retention.ROLLUP, key="status", ts=self.clock()
            )
        )

    def _fleet_shape(self) -> tuple[int, int]:
        devices = self.gateway.registry.devices
        return len(devices), sum(1 for d in devices.values() if d.available)

    async def async_report_device_health(self) -> int | None:
        gateway = self.gateway
        self._reported_fleet = self._fleet_shape()
        by_model: dict[str, list[int]] = {}
        offline: list[str] = []
        low_battery = 0
        devices = list(gateway.registry.iter_devices())
        for device in devices:
            model = f"{device.profile.vendor}/{device.profile.model}"
            counts = by_model.setdefault(model, [0, 0])
            counts[0] += 1
            if device.available:
                counts[1] += 1
            elif len(offline) < 20:
                offline.append(device.id)
            for cap in device.profile.capabilities:
                if cap.kind == "battery":
                    state = device.states.get(cap.key)
                    if (
                        state is not None
                        and isinstance(state.value, int | float)
                        and state.value < LOW_BATTERY_PCT
                    ):
                        low_battery += 1
        online = sum(1 for d in devices if d.available)
        data = {
            "total": len(devices),
            "online": online,
            "offline": len(devices) - online,
            "low_battery": low_battery,
            "by_model": {m: {"total": t, "online": o} for m, (t, o) in sorted(by_model.items())},
            "offline_sample": offline,
        }
        return await gateway.store.async_write(
            lambda db: outbox.enqueue(
                db,
                messages.DEVICE_HEALTH,
                data,
                retention=Retention.ROLLUP,
                key="device_health",
                ts=self.clock(),
            )
        )

    async def async_report_rollup(self, since: float, until: float, telemetry_rows: int) -> int | None:
        gateway = self.gateway

        count_raised = gateway.provided(ALERTS_RAISED)  # the alert engine's, where it runs

        def read(conn: sqlite3.Connection) -> dict[str, int]:
            return count_raised(conn, since, until) if count_raised is not None else {}

        raised = await gateway.store.async_read(read)
        data = {"from": since, "to": until, "telemetry_rows": telemetry_rows, "alerts_raised": raised}
        return await gateway.store.async_write(
            lambda db: outbox.enqueue(db, messages.ROLLUP, data, retention=Retention.ROLLUP, ts=until)
        )

    # -- the outbox bound ----------------------------------------------------------

    async def _prune_loop(self) -> None:
        s = self.settings
        assert s is not None
        over_bound_log = RateLimitedLog(_LOGGER, 3600.0)  # once an hour
        while True:
            await asyncio.sleep(s.prune_interval_s)
            try:
                report = await self.async_prune()
            except Exception:
                _LOGGER.exception("uplink outbox pruning failed; trying again")
                continue
            if report.removed:
                _LOGGER.warning(
                    "uplink outbox over its bound while the region is unreachable: thinned %d, dropped %s "
                    "(alerts are never dropped)",
                    report.thinned,
                    report.dropped,
                )
            if report.over_bound_keep:
                over_bound_log.error(
                    "uplink outbox holds %d alert events and receipts beyond its bound; they are kept "
                    "until the region is reachable again: check the uplink to %s",
                    report.over_bound_keep,
                    s.where,
                )

    async def async_prune(self) -> outbox.PruneReport:
        s = self.settings
        assert s is not None
        return await self.gateway.store.async_write(lambda db: outbox.prune(db, s.bounds, self.clock()))

    # -- the downlink --------------------------------------------------------------

    async def _on_downlink(self, topic: str, payload: bytes) -> None:
        assert self.check is not None
        try:
            region_now = self.region_now()
            item = self.check.check(topic, payload, region_now, clock_now=min(self.clock(), region_now))
        except SignatureError as err:
            await self._reject(topic, err.reason, str(err))
            return
        if isinstance(item, ClockReading):
            await self._on_clock(topic, item)
            return
        accepted = await self.gateway.store.async_write(lambda db: self._accept(db, item))
        if not accepted:
            await self._reject(topic, "replayed", f"announcement {item.id!r} was received before")
            return
        self.announcements += 1
        _LOGGER.info("uplink: %s %s from region %s accepted", item.kind, item.id, item.region)
        self.gateway.bus.fire(
            AnnouncementReceived(
                announcement_id=item.id,
                kind=item.kind,
                title=item.title,
                body=item.body,
                issued_at=item.issued_at,
                expires_at=item.expires_at,
                context=Context(origin="uplink"),
            )
        )
        self._spawn(self._show(item), "show")

    def _accept(self, db: sqlite_utils.Database, item: Announcement) -> bool:
        inserted = db.conn.execute(
            "INSERT OR IGNORE INTO uplink_announcements (id, kind, received, issued_at, expires_at, payload) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                item.id,
                item.kind,
                self.clock(),
                item.issued_at,
                item.expires_at,
                orjson.dumps(item.as_dict()).decode(),
            ),
        ).rowcount
        if inserted != 1:
            return False
        outbox.enqueue(
            db, messages.RECEIPT, {"announcement_id": item.id, "state": "received"}, ts=self.clock()
        )
        return True

    async def _show(self, item: Announcement) -> None:
        s = self.settings
        assert s is not None
        shown, total = await async_show_on_tvs(
            self.gateway,
            title=item.title,
            text=item.body,
            level="alarm" if item.emergency else "info",
            announcement_id=item.id,
            timeout_s=s.tv_timeout_s,
        )

        def record(db: sqlite_utils.Database) -> None:
            db.conn.execute(
                "UPDATE uplink_announcements SET tvs_shown = ?, tvs_total = ? WHERE id = ?",
                (shown, total, item.id),
            )
            outbox.enqueue(
                db,
                messages.RECEIPT,
                {"announcement_id": item.id, "state": "shown", "tvs_shown": shown, "tvs_total": total},
                ts=self.clock(),
            )

        await self.gateway.store.async_write(record)

    async def _on_clock(self, topic: str, reading: ClockReading) -> None:
        if reading.issued_at == self._clock_issued:
            return  # the same retained reading again, as on every reconnect
        if reading.issued_at < self._clock_issued:
            await self._reject(
                topic,
                "stale_clock",
                f"clock reading issued {self._clock_issued - reading.issued_at:.0f} s before the last "
                "one this gateway trusted: an old reading published again, not the region's time",
            )
            return
        offset = reading.issued_at - self.clock()
        self._clock_issued = reading.issued_at
        self.clock_offset_s = offset
        if abs(offset) > CLOCK_WARN_S:
            self._clock_log.warning(
                "this gateway's clock differs from the region's by %.0f s: fix its time (NTP); "
                "announcements are judged by the region's clock meanwhile",
                offset,
            )

        # Every trusted reading is kept (one small write per clock interval), not only a changed
        # offset: after a restart the last one is both the floor of the region's time and the
        # reading any later one must be newer than.
        def persist(db: sqlite_utils.Database) -> None:
            outbox.write_state(db, "clock_offset_s", offset)
            outbox.write_state(db, "clock_issued", reading.issued_at)

        await self.gateway.store.async_write(persist)

    async def _reject(self, topic: str, reason: str, detail: str) -> None:
        self.rejections[reason] = self.rejections.get(reason, 0) + 1
        self.gateway.bus.fire(
            DownlinkRejected(topic=topic, reason=reason, detail=detail, context=Context(origin="uplink"))
        )
        self._rejection_log.warning(
            "uplink: downlink message on %s rejected (%s): %s — not shown; %s so far",
            topic,
            reason,
            detail,
            self.rejections,
        )
        now = time.monotonic()
        self._rejection_window = [t for t in self._rejection_window if now - t < 60]
        if len(self._rejection_window) >= REJECTION_REPORTS_PER_MIN:
            self._rejections_suppressed += 1
            return
        self._rejection_window.append(now)
        suppressed, self._rejections_suppressed = self._rejections_suppressed, 0
        data = {
            "topic": topic[:200],
            "reason": reason,
            "detail": detail[:300],
            "suppressed_before": suppressed,
        }
        await self.gateway.store.async_write(
            lambda db: outbox.enqueue(
                db, messages.REJECTED, data, retention=Retention.SUMMARY, ts=self.clock()
            )
        )

    def stats(self) -> dict[str, Any]:
        assert self.relay is not None
        return {
            **self.relay.stats(),
            "announcements": self.announcements,
            "rejections": dict(self.rejections),
            "clock_offset_s": self.clock_offset_s,
            "clock_issued": self._clock_issued,
        }
