"""Signed downlink from the region: announcements, emergency broadcasts, and the region's clock.

Only the process holding the region's private key (the dashboard) signs. An
announcement goes to `linli/v1/<region>/_all/down/announcement` when it is for
every community, else once to each targeted community's topic; its signed
`targets` say which communities may show it, so it cannot be replayed onto
another community. QoS 1 and the gateways' persistent sessions mean a gateway
that is offline gets it when it reconnects (until it expires).

The clock: every `clock_interval_s` the region publishes its signed time,
retained, with a message expiry of three intervals, so a stale reading is
never handed to a gateway. The broker's expiry does not stop a recorded
reading from being published again later, so the signed payload carries its
own `expires_at` (`clock_ttl_s`) and gateways refuse a reading past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Final

import aiomqtt
import asyncpg
import orjson
from aiomqtt import MqttError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from linli.common.backoff import backoff_delay
from linli.common.ids import new_id
from linli.region.consumer import broker_servers, broker_settings
from linli.region.queries import communities
from linli.wire import topics
from linli.wire.downlink import KINDS, MAX_BODY, MAX_CLOCK_TTL_S, MAX_TITLE
from linli.wire.signing import Signer

_LOGGER = logging.getLogger(__name__)
MAX_TTL_S: Final = 7 * 86400
# A signed clock reading is valid this long at least: three intervals, as the broker keeps it,
# but never less than five minutes, so that a gateway whose own clock runs a little fast still
# takes the region's time before it has trusted one (see linli/wire/downlink.py).
MIN_CLOCK_TTL_S: Final = 300.0


def clock_ttl_s(interval_s: float) -> float:
    """How long a clock reading published every `interval_s` is signed to be valid."""
    return min(MAX_CLOCK_TTL_S, max(MIN_CLOCK_TTL_S, 3 * interval_s))


class BroadcastError(ValueError):
    """An announcement that cannot be sent; `code` is stable for API clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


PUBLISH_PATIENCE_S: Final = 30.0


async def _until_disconnected(client: aiomqtt.Client) -> None:
    """Return never; raise MqttError when the connection is lost (the link subscribes to nothing)."""
    async for _ in client.messages:
        pass
    raise MqttError("the regional broker closed the connection")


class RegionLink:
    """The dashboard's own connection to the regional broker, for the signed downlink."""

    def __init__(self, config: dict[str, Any], signer: Signer) -> None:
        self.config = config
        self.region = config["region"]["id"]
        self.signer = signer
        self._client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()

    async def run(self) -> None:
        attempt = 0
        interval = self.config["dashboard"]["clock_interval_s"]
        nodes = broker_servers(self.config)
        node = 0
        while True:
            try:
                client = aiomqtt.Client(
                    identifier=f"{self.config['broker']['client_prefix']}-dashboard"[:64],
                    # The JetStream cluster's MQTT listeners speak 3.1.1 only (docs/scale.md); the
                    # downlink needs nothing of MQTT 5 (QoS 1, retain).
                    protocol=aiomqtt.ProtocolVersion.V311
                    if self.config["broker"]["engine"] == "jetstream"
                    else aiomqtt.ProtocolVersion.V5,
                    keepalive=30,
                    timeout=10,
                    **broker_settings(self.config, nodes[node]),
                )
                async with client:
                    self._client, attempt = client, 0
                    self.connected.set()
                    _LOGGER.info("region %s: downlink publisher connected", self.region)
                    # Between clock ticks nothing would notice the node going away, and an operator's
                    # broadcast would meet a dead connection: watch it, and reconnect at once.
                    watch = asyncio.create_task(_until_disconnected(client))
                    try:
                        while True:
                            await self.publish_clock()
                            done, _ = await asyncio.wait({watch}, timeout=interval)
                            if done:
                                watch.result()
                    finally:
                        watch.cancel()
            except MqttError as exc:
                self.connected.clear()
                self._client = None
                node = (node + 1) % len(nodes)  # a cluster: the next try goes to the next node
                delay = backoff_delay(attempt, base=0.2, cap=5.0, floor=0.05)
                attempt += 1
                if attempt <= 2 or attempt % 20 == 0:
                    _LOGGER.warning("region downlink publisher: %s; retry in %.1fs", exc, delay)
                await asyncio.sleep(delay)
            finally:
                self.connected.clear()
                self._client = None

    async def publish(
        self, topic: str, payload: bytes, *, retain: bool = False, expiry_s: int | None = None
    ) -> None:
        props = None
        # MQTT 3.1.1 (the JetStream cluster) has no message expiry; the clock carries its own expires_at.
        if expiry_s is not None and self.config["broker"]["engine"] != "jetstream":
            props = Properties(PacketTypes.PUBLISH)
            props.MessageExpiryInterval = expiry_s
        # Long enough for a cluster to elect new leaders after a node died (measured: 10-20 s on 2.9).
        deadline = time.monotonic() + PUBLISH_PATIENCE_S
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.connected.wait(), max(0.1, deadline - time.monotonic()))
            client = self._client
            if client is None:
                raise BroadcastError(
                    "broker_unreachable", "the regional broker is unreachable: nothing was sent"
                )
            try:
                await client.publish(topic, payload, qos=1, retain=retain, properties=props)
                return
            except MqttError as exc:
                # The node went away under us: the run loop reconnects (to the next node); try there.
                if time.monotonic() > deadline:
                    raise BroadcastError(
                        "broker_unreachable", f"the regional broker dropped the publish ({exc}): try again"
                    ) from None
                self.connected.clear()
                await asyncio.sleep(0.2)

    async def publish_clock(self) -> None:
        interval = self.config["dashboard"]["clock_interval_s"]
        issued = time.time()
        message = self.signer.sign(
            {
                "kind": "clock",
                "region": self.region,
                "issued_at": issued,
                "expires_at": issued + clock_ttl_s(interval),
                "id": f"clock-{new_id()}",
            }
        )
        await self.publish(
            topics.down_topic(self.region, topics.ALL, topics.CLOCK),
            message,
            retain=True,
            expiry_s=max(1, int(interval * 3)),
        )


async def compose(
    conn: asyncpg.Connection,
    link: RegionLink,
    *,
    kind: str,
    title: str,
    body: str,
    targets: list[str] | None,
    ttl_s: float,
    by: str,
) -> dict[str, Any]:
    """Check, record, sign and publish one announcement; returns it (with its id)."""
    region = link.region
    title, body = title.strip(), body.strip()
    if kind not in KINDS:
        raise BroadcastError("invalid", f"kind {kind!r} is not one of {list(KINDS)}")
    if not body or len(body) > MAX_BODY or len(title) > MAX_TITLE:
        raise BroadcastError(
            "invalid", f"a body of 1–{MAX_BODY} characters and a title of at most {MAX_TITLE} please"
        )
    if not 60 <= ttl_s <= MAX_TTL_S:
        raise BroadcastError("invalid", f"ttl_s {ttl_s} must be between 60 and {MAX_TTL_S} seconds")
    known = set(await communities(conn, region))
    if targets is not None:
        targets = sorted({t.strip() for t in targets if t.strip()})
        unknown = sorted(set(targets) - known)
        if not targets or unknown:
            raise BroadcastError(
                "unknown_target", f"no such communities in region {region}: {unknown or '(none given)'}"
            )
    issued = time.time()
    announcement = {
        "id": f"{region}-{new_id()}",
        "kind": kind,
        "region": region,
        "targets": targets if targets is not None else "*",
        "title": title,
        "body": body,
        "issued_at": issued,
        "expires_at": issued + ttl_s,
    }
    message = link.signer.sign(announcement)
    await conn.execute(
        """INSERT INTO announcements
               (id, region, kind, targets, title, body, issued_at, expires_at, created_by, gateways_targeted)
           VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10)""",
        announcement["id"],
        region,
        kind,
        orjson.dumps(announcement["targets"]).decode(),
        title,
        body,
        issued,
        announcement["expires_at"],
        by,
        len(targets) if targets is not None else len(known),
    )
    if targets is None:
        await link.publish(topics.down_topic(region, topics.ALL), message)
    else:
        for community in targets:
            await link.publish(topics.down_topic(region, community), message)
    _LOGGER.info("region %s: %s %s sent to %s by %s", region, kind, announcement["id"], targets or "all", by)
    return announcement
