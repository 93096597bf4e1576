"""The regional consumers on NATS JetStream: one durable pull consumer shared by every consumer process.

Gateways publish MQTT (QoS 1) to any node of the cluster; nats-server turns
the topic into a subject (`/` → `.`: `linli/v1/r/c/up/alert` becomes
`linli.v1.r.c.up.alert`) and the region's stream (`linli region cluster up`
makes it, three replicas) keeps it. Every consumer process pulls from the same
durable consumer — JetStream's own consumer group — so each message goes to
one of them and adding a process adds capacity. A message is acknowledged only
after the PostgreSQL transaction that applied it committed; one that is not
acknowledged within `ack_wait_s` is delivered again (perhaps to another
process), and the idempotent upsert ignores what it already has.

Decoding and writing are the MQTT consumer's own (`Consumer.async_apply_items`):
the two paths differ only in where the messages come from.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg

from linli.common.backoff import backoff_delay
from linli.region.consumer import PARTITION_CHECK_S, Consumer
from linli.region.schema import ensure_partitions
from linli.wire import topics

_LOGGER = logging.getLogger(__name__)


async def quiet_errors(exc: Exception) -> None:
    """nats-py's error callback: one line, not its default traceback for every node found down."""
    _LOGGER.debug("NATS: %s: %s", type(exc).__name__, exc)


def subject_of(topic: str) -> str:
    """MQTT topic → NATS subject, as nats-server maps it (ids here never hold `.` or spaces)."""
    return topic.replace("/", ".")


def topic_of(subject: str) -> str:
    return subject.replace(".", "/")


def stream_subjects(region: str) -> list[str]:
    """What the region's stream keeps: every upward event and every presence message."""
    return [subject_of(f).replace("+", "*").replace("#", ">") for f in topics.region_up_filters(region)]


async def ensure_stream(js: Any, config: dict[str, Any], replicas: int = 3) -> Any:
    """Create (or leave as it is) the region's stream and its durable consumer; the stream's info."""
    from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    settings = config["jetstream"]
    name = settings["stream"]
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        info = await js.add_stream(
            StreamConfig(
                name=name,
                subjects=stream_subjects(config["region"]["id"]),
                storage=StorageType.FILE,
                num_replicas=replicas,
            )
        )
    await js.add_consumer(
        name,
        ConsumerConfig(
            durable_name=settings["durable"],
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=float(settings["ack_wait_s"]),
            max_ack_pending=20_000,
        ),
    )
    return info


class JetStreamConsumer(Consumer):
    """One consumer process pulling batches from the region's durable JetStream consumer."""

    def __init__(self, config: dict[str, Any], index: int = 0) -> None:
        super().__init__(config, index)
        self.redelivered = 0  # messages JetStream delivered more than once (not yet acked in time)

    async def run(self) -> None:
        """Consume until cancelled, reconnecting to the cluster and the database as needed."""
        import nats
        from nats.errors import Error as NatsError

        attempt = 0
        while True:
            started = time.monotonic()
            reason = "connection ended"
            nc = None
            try:
                await self._database()
                nc = await nats.connect(
                    servers=self.config["jetstream"]["servers"],
                    name=self.client_id,
                    connect_timeout=5,
                    max_reconnect_attempts=-1,
                    allow_reconnect=True,
                    error_cb=quiet_errors,
                )
                attempt = 0
                await self._serve_jetstream(nc)
            except (TimeoutError, NatsError) as exc:
                reason = f"JetStream: {type(exc).__name__}: {exc}"
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                reason = f"database: {type(exc).__name__}: {exc}"
                await self._close_database()
            finally:
                self.connected.clear()
                if nc is not None:
                    try:
                        await nc.close()
                    except Exception:  # closing a broken connection must not hide why it broke
                        _LOGGER.debug("closing the NATS connection failed", exc_info=True)
            if time.monotonic() - started > 30:
                attempt = 0
            delay = backoff_delay(attempt, base=0.2, cap=5.0, floor=0.05)
            attempt += 1
            log = _LOGGER.warning if attempt <= 2 or attempt % 20 == 0 else _LOGGER.debug
            log("region consumer %s: %s; retry %d in %.1fs", self.client_id, reason, attempt, delay)
            await asyncio.sleep(delay)

    async def _serve_jetstream(self, nc: Any) -> None:
        from nats.errors import TimeoutError as FetchTimeout

        settings = self.config["jetstream"]
        js = nc.jetstream()
        await ensure_stream(js, self.config)
        subscription = await js.pull_subscribe_bind(settings["durable"], stream=settings["stream"])
        self.connected.set()
        _LOGGER.info(
            "region consumer %s pulling %s from durable %s",
            self.client_id,
            settings["stream"],
            settings["durable"],
        )
        size = self.config["consumer"]["batch"]
        # The long poll when the stream is empty: short enough to notice a lost connection soon.
        wait = max(self.config["consumer"]["batch_ms"] / 1000, 1.0)
        next_partition_check = time.monotonic() + PARTITION_CHECK_S
        while True:
            try:
                batch = await subscription.fetch(size, timeout=wait)
            except FetchTimeout:
                if nc.is_closed:
                    raise
                continue
            items = []
            for message in batch:
                if message.metadata.num_delivered > 1:
                    self.redelivered += 1
                items.append((topic_of(message.subject), message.data))
            result = await self.async_apply_items(items)
            for message in batch:
                await message.ack()  # only now: the transaction has committed
            self.batches += 1
            self.applied += result.new
            self.duplicates += result.duplicates
            if time.monotonic() > next_partition_check:
                next_partition_check = time.monotonic() + PARTITION_CHECK_S
                await ensure_partitions(await self._database(), self.region)

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "redelivered": self.redelivered}
