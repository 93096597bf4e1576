"""The MQTT 5 client to the regional broker, and its TLS context (both sides use it).

The gateway's relay publishes the outbox with it; the region's consumer reads
with manual acknowledgements, so that it acknowledges only what it committed.

aiomqtt's `publish()` resolves on any PUBACK and drops the MQTT 5 reason code,
and costs a task per concurrent publish. The relay needs both the other way:
`publish_acked()` sends at once (so the wire order is the call order) and
returns a future that resolves with the broker's reason code, so a refusal
(quota exceeded, not authorised) is never taken for delivery.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt
from aiomqtt import MqttCodeError, MqttError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode


class PublishRefusedError(MqttError):
    """The broker answered a publish with a failure reason code."""

    def __init__(self, topic: str, reason: ReasonCode) -> None:
        super().__init__(f"broker refused publish to {topic}: {reason} ({int(reason.value)})")
        self.reason = reason


class RegionalClient(aiomqtt.Client):
    """aiomqtt's client with reason-coded, task-free QoS 1 publishes and the CONNACK properties."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acks: dict[int, tuple[str, asyncio.Future[ReasonCode]]] = {}
        self.connack_properties: Properties | None = None

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        self.connack_properties = properties
        super()._on_connect(client, userdata, flags, reason_code, properties)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_code: ReasonCode, properties: Properties
    ) -> None:
        pending = self._acks.pop(mid, None)
        if pending is None:
            super()._on_publish(client, userdata, mid, reason_code, properties)
            return
        topic, future = pending
        if future.done():
            return
        if reason_code.is_failure:
            future.set_exception(PublishRefusedError(topic, reason_code))
        else:
            future.set_result(reason_code)

    @property
    def receive_maximum(self) -> int | None:
        """How many unacknowledged QoS 1 publishes the broker accepts (MQTT 5 CONNACK)."""
        props = self.connack_properties
        value = getattr(props, "ReceiveMaximum", None) if props is not None else None
        return int(value) if value else None

    def set_inflight(self, count: int) -> None:
        self._client.max_inflight_messages_set(count)

    def publish_acked(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[ReasonCode]:
        """Send now (queued in order behind the in-flight window); the future resolves on PUBACK."""
        info = self._client.publish(topic, payload, qos, retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise MqttCodeError(info.rc, f"could not publish to {topic}")
        future: asyncio.Future[ReasonCode] = asyncio.get_running_loop().create_future()
        if qos == 0:
            future.set_result(ReasonCode(PacketTypes.PUBACK, "Success"))
        else:
            self._acks[info.mid] = (topic, future)
        return future

    def manual_acks(self) -> None:
        """Acknowledge received QoS 1 messages only through `ack()` (call before connecting).

        A consumer that writes what it receives acknowledges after its commit, so a
        crash in between means a redelivery, never a loss.
        """
        self._client.manual_ack_set(True)

    def ack(self, message: aiomqtt.Message) -> None:
        if message.qos > 0:
            self._client.ack(message.mid, message.qos)

    def fail_pending(self, error: BaseException) -> None:
        """The connection is gone: every publish still waiting for its PUBACK fails."""
        acks, self._acks = self._acks, {}
        for _, future in acks.values():
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: a failed publish is expected here, not a bug


def tls_context(
    ca_file: str | None, cert_file: str | None, key_file: str | None, *, config_key: str = "uplink.tls"
) -> ssl.SSLContext:
    """Verify the regional broker by `ca_file` (system CAs if None); present our certificate when given.

    `config_key` is where the files were configured (the gateway's `uplink.tls`, the
    region's `broker.tls`), so that an error names the key to fix.
    """
    for key, value in (("ca_file", ca_file), ("cert_file", cert_file), ("key_file", key_file)):
        if value is not None and not Path(value).is_file():
            raise ValueError(f"{config_key}.{key}: {value} does not exist or is not a file")
    if (cert_file is None) != (key_file is None):
        raise ValueError(f"{config_key}: cert_file and key_file go together (mutual TLS needs both)")
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert_file is not None:
            context.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(
            f"{config_key}: cannot load the certificates ({exc}): check the files are PEM"
        ) from None
    return context
