"""The regional consumers on NATS JetStream: durable pull consumers shared by every consumer process.

Gateways publish MQTT (QoS 1) to any node of the cluster. nats-server stores
each QoS 1 publish in its own MQTT stream, `$MQTT_msgs`, under the subject
`$MQTT.msgs.` + the topic with `/` turned into `.` (`linli/v1/r/c/up/alert` is
stored as `$MQTT.msgs.linli.v1.r.c.up.alert`), and it sends the PUBACK only after
that store was acknowledged by the stream's replicas. That is why the region
reads from `$MQTT_msgs` and not from a stream of its own: a stream of ours
capturing `linli.v1.>` receives the same message as a plain NATS publish, which
nothing acknowledges. The node-kill drill measured what that costs: with the
stream leader SIGKILLed, 1,303 to 2,859 of 7,200 PUBACKed events were never in
such a stream (nats-server 2.9.10 and 2.15.1 alike; bench/RESULTS.md).

`$MQTT_msgs` keeps a message while some consumer is interested in it
(interest retention), so the region's durable consumers — one for events,
one for presence (nats-server 2.9 allows one filter per consumer) — are made
before any gateway publishes, by `linli region cluster up` and by every
consumer process. If the MQTT listener has not made the stream yet, we make it
as nats-server would; nats-server uses a stream that exists.

Every consumer process pulls from the same durable consumers — JetStream's own
consumer group — so each message goes to one of them and adding a process adds
capacity. A message is acknowledged only after the PostgreSQL transaction that
applied it committed; one that is not acknowledged within `ack_wait_s` is
delivered again (perhaps to another process), and the idempotent upsert ignores
what it already has. Once acknowledged, the message leaves the stream.

Decoding and writing are the MQTT consumer's own (`Consumer.async_apply_items`):
the two paths differ only in where the messages come from.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from linli.region.access import nats_auth
from linli.region.consumer import PARTITION_CHECK_S, Consumer
from linli.region.schema import ensure_partitions
from linli.wire import topics

_LOGGER = logging.getLogger(__name__)

MQTT_STREAM = "$MQTT_msgs"  # nats-server's stream of QoS 1 MQTT publishes
MQTT_PREFIX = "$MQTT.msgs."  # its subjects: this + the topic, `/` → `.`


async def quiet_errors(exc: Exception) -> None:
    """nats-py's error callback: one line, not its default traceback for every node found down."""
    _LOGGER.debug("NATS: %s: %s", type(exc).__name__, exc)


def subject_of(topic: str) -> str:
    """MQTT topic → the subject nats-server stores its QoS 1 publish under (ids never hold `.` or spaces)."""
    return MQTT_PREFIX + topic.replace("/", ".")


def topic_of(subject: str) -> str:
    return subject.removeprefix(MQTT_PREFIX).replace(".", "/")


def subject_filter(topic_filter: str) -> str:
    """An MQTT topic filter → the subject filter over `$MQTT_msgs` it stands for (`+` → `*`, `#` → `>`)."""
    return subject_of(topic_filter).replace("+", "*").replace("#", ">")


def mqtt_filter(subject: str) -> str:
    """A durable's subject filter → the MQTT topic filter it stands for (subject_filter's inverse)."""
    return topic_of(subject).replace("*", "+").replace(">", "#")


def consumer_filters(config: dict[str, Any]) -> dict[str, str]:
    """The region's durable consumers → the subject each takes: every upward event, every presence."""
    durable = config["jetstream"]["durable"]
    filters = topics.region_up_filters(config["region"]["id"])
    up, presence = (subject_filter(f) for f in filters)
    return {durable: up, f"{durable}-presence": presence}


async def ensure_stream(js: Any, config: dict[str, Any], replicas: int = 3) -> Any:
    """Make sure `$MQTT_msgs` and the region's durable consumers exist; the stream's info."""
    from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    settings = config["jetstream"]
    try:
        info = await js.stream_info(MQTT_STREAM)
    except NotFoundError:
        # The configuration nats-server gives it on the first MQTT connection (server/mqtt.go).
        info = await js.add_stream(
            StreamConfig(
                name=MQTT_STREAM,
                subjects=[MQTT_PREFIX + ">"],
                storage=StorageType.FILE,
                retention=RetentionPolicy.INTEREST,
                num_replicas=replicas,
            )
        )
    for durable, subject in consumer_filters(config).items():
        await js.add_consumer(
            MQTT_STREAM,
            ConsumerConfig(
                durable_name=durable,
                filter_subject=subject,
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

    async def _session(self) -> str:
        """Connect to the cluster and pull until the connection ends; why it ended."""
        import nats
        from nats.errors import Error as NatsError

        nc = None
        try:
            nc = await nats.connect(
                servers=self.config["jetstream"]["servers"],
                name=self.client_id,
                connect_timeout=5,
                max_reconnect_attempts=-1,
                allow_reconnect=True,
                error_cb=quiet_errors,
                **nats_auth(self.config["jetstream"]),  # a cluster with access rules: [jetstream] user
            )
            await self._serve_jetstream(nc)
        except (TimeoutError, NatsError) as exc:
            return f"JetStream: {type(exc).__name__}: {exc}"
        finally:
            if nc is not None:
                try:
                    await nc.close()
                except Exception:  # closing a broken connection must not hide why it broke
                    _LOGGER.debug("closing the NATS connection failed", exc_info=True)
        return "connection ended"

    async def _serve_jetstream(self, nc: Any) -> None:
        js = nc.jetstream()
        await ensure_stream(js, self.config)
        durables = list(consumer_filters(self.config))
        subscriptions = [await js.pull_subscribe_bind(durable, stream=MQTT_STREAM) for durable in durables]
        self.sessions += 1
        self.connected.set()
        _LOGGER.info(
            "region consumer %s pulling %s from durables %s",
            self.client_id,
            MQTT_STREAM,
            ", ".join(durables),
        )
        # One database connection: the two pulls take turns applying their batches.
        applying = asyncio.Lock()
        try:
            async with asyncio.TaskGroup() as group:
                for subscription in subscriptions:
                    group.create_task(self._pull(nc, subscription, applying))
        except ExceptionGroup as failed:  # run() retries by what went wrong: give it the first cause
            raise failed.exceptions[0] from None

    async def _pull(self, nc: Any, subscription: Any, applying: asyncio.Lock) -> None:
        size = self.config["consumer"]["batch"]
        # The long poll when nothing is waiting: short enough to notice a lost connection soon.
        wait = max(self.config["consumer"]["batch_ms"] / 1000, 1.0)
        next_partition_check = time.monotonic() + PARTITION_CHECK_S
        while True:
            try:
                batch = await subscription.fetch(size, timeout=wait)
            except TimeoutError:
                # Nothing waiting (nats-py raises asyncio's TimeoutError or its own subclass of it):
                # the presence durable is empty nearly always. Only a closed connection ends the pull.
                if nc.is_closed:
                    raise
                continue
            items = []
            for message in batch:
                if message.metadata.num_delivered > 1:
                    self.redelivered += 1
                items.append((topic_of(message.subject), message.data))
            async with applying:
                result = await self.async_apply_items(items)
                if time.monotonic() > next_partition_check:
                    next_partition_check = time.monotonic() + PARTITION_CHECK_S
                    await ensure_partitions(await self._database(), self.region)
            for message in batch:
                await message.ack()  # only now: the transaction has committed
            self.batches += 1
            self.applied += result.new
            self.duplicates += result.duplicates

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "redelivered": self.redelivered}
