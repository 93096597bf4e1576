"""The uplink's wire format with bytes alone: no broker, no database, no gateway.

What a gateway sends is what the region reads back; what is malformed is refused
with a reason (an envelope) or dropped (a presence), never half-read.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pytest

from linli.wire import messages, topics
from linli.wire.messages import EnvelopeError


@dataclass(slots=True, frozen=True)
class Row:
    """An outbox row as the gateway keeps it (only its shape matters to the wire)."""

    id: int
    seq: int
    kind: str
    ts: float
    payload: bytes


def test_an_envelope_reads_back_as_the_gateway_wrote_it() -> None:
    # given an outbox row whose payload is stored as JSON bytes
    row = Row(id=7, seq=3, kind=messages.ALERT, ts=1700000000.5, payload=b'{"alert":{"id":1}}')
    # when the gateway encodes it and the region decodes it
    envelope = messages.decode(messages.encode(row, region="hubei", community="east", gateway="gw-1"))
    # then every field survives, the payload as data
    assert (envelope.id, envelope.seq, envelope.kind, envelope.ts) == (7, 3, "alert", 1700000000.5)
    assert (envelope.region, envelope.community, envelope.gateway) == ("hubei", "east", "gw-1")
    assert envelope.data == {"alert": {"id": 1}}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (orjson.dumps({"v": 2}), "version 2"),
        (orjson.dumps({"v": 1, "id": "7", "seq": 3}), "id: '7'"),
        (orjson.dumps({"v": 1, "id": True}), "id: True"),  # a bool is not an id
    ],
)
def test_a_malformed_envelope_is_refused_saying_what_is_wrong(payload: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        messages.decode(payload)


def test_presence_reads_back_with_its_connection_timestamp() -> None:
    # given the birth of a connection made at ts 1000
    birth = messages.encode_presence(messages.ONLINE, gateway="gw-1", ts=1000.0)
    # when the region reads it from the topic of community "east" (long after)
    presence = messages.decode_presence("hubei", "east", birth, received_at=5000.0)
    # then it is that gateway online, as of its connection, not of its reception
    assert presence == messages.Presence(
        region="hubei", community="east", gateway="gw-1", online=True, ts=1000.0
    )


def test_presence_without_a_timestamp_counts_from_its_reception() -> None:
    will = orjson.dumps({"state": "offline", "gateway": "gw-1"})
    presence = messages.decode_presence("hubei", "east", will, received_at=5000.0)
    assert presence is not None and not presence.online and presence.ts == 5000.0


@pytest.mark.parametrize("payload", [b"online", b"{}", orjson.dumps({"state": "away", "ts": 1}), b"[]"])
def test_presence_that_is_not_online_or_offline_is_dropped(payload: bytes) -> None:
    assert messages.decode_presence("hubei", "east", payload, received_at=0.0) is None


def test_upward_topics_read_back_into_region_community_and_kind() -> None:
    assert topics.parse_up(topics.up_topic("hubei", "east", "alert")) == ("hubei", "east", "alert")
    assert topics.parse_up(topics.presence_topic("hubei", "east")) == ("hubei", "east", topics.PRESENCE)
    # a downward topic, or anything else, is not an upward one
    assert topics.parse_up(topics.down_topic("hubei", "east")) is None
    assert topics.parse_up("linli/v2/hubei/east/up/alert") is None
