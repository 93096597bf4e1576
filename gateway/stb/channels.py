"""One channel record for both networks, and the lineups adapters resolve channels in.

A record is a plain dict that matches `CHANNEL_SCHEMA` (OIPF `Channel`):

    {"idType": 10, "lcn": 1, "name": "CCTV-1", "onid": 8400, "tsid": 1, "sid": 101}       DVB-C
    {"idType": 40, "lcn": 1, "name": "CCTV-1", "ipBroadcastID": "cctv1.iptv.example"}   IPTV SD&S
    {"idType": 41, "lcn": 1, "name": "CCTV-1", "uri": "igmp://239.3.1.1:8000"}           IPTV URI

Two records are the same channel when their network identity is equal (the
triplet, the broadcast id or the URI); the number and name are presentation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

from jsonschema import Draft202012Validator

from linli.gateway.stb.schemas import CHANNEL_SCHEMA, ID_TYPE_DVB_C, ID_TYPE_IPTV_SDS, ID_TYPE_IPTV_URI

Channel = dict[str, Any]
_VALIDATOR: Final = Draft202012Validator(CHANNEL_SCHEMA)
_DVB_URI: Final = re.compile(r"^dvb://([0-9a-f]{1,4})\.([0-9a-f]{1,4})\.([0-9a-f]{1,4})$", re.IGNORECASE)


class LineupError(ValueError):
    """A lineup that cannot be used; the message names the entry and the problem."""


def channel_errors(record: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in _VALIDATOR.iter_errors(record)]


def identity(record: Channel) -> tuple[Any, ...]:
    """What makes two records the same channel, whatever number or name they carry."""
    id_type = record["idType"]
    if id_type == ID_TYPE_DVB_C:
        return (id_type, record["onid"], record["tsid"], record["sid"])
    if id_type == ID_TYPE_IPTV_SDS:
        return (id_type, record["ipBroadcastID"])
    return (id_type, record["uri"])


def same_channel(a: Channel | None, b: Channel | None) -> bool:
    if a is None or b is None:
        return a is b
    return identity(a) == identity(b)


def dvb_uri(record: Channel) -> str:
    """The DVB URI of a DVB-C service (ETSI TS 102 851): `dvb://<onid>.<tsid>.<sid>` in hex."""
    return f"dvb://{record['onid']:x}.{record['tsid']:x}.{record['sid']:x}"


def parse_dvb_uri(uri: str) -> tuple[int, int, int] | None:
    match = _DVB_URI.match(uri.strip())
    if match is None:
        return None
    onid, tsid, sid = (int(part, 16) for part in match.groups())
    return onid, tsid, sid


class Lineup:
    """The channels of one operator's network, by number and by identity."""

    def __init__(self, records: Iterable[Channel], *, source: str = "lineup") -> None:
        self.records: list[Channel] = []
        self._by_lcn: dict[int, Channel] = {}
        self._by_identity: dict[tuple[Any, ...], Channel] = {}
        for index, record in enumerate(records):
            errors = channel_errors(record)
            if errors:
                raise LineupError(f"{source}[{index}]: " + "; ".join(errors))
            if "lcn" not in record:
                raise LineupError(f"{source}[{index}]: a lineup entry needs its channel number 'lcn'")
            if record["lcn"] in self._by_lcn:
                raise LineupError(f"{source}[{index}]: channel number {record['lcn']} appears twice")
            self.records.append(record)
            self._by_lcn[record["lcn"]] = record
            self._by_identity[identity(record)] = record
        self.records.sort(key=lambda r: r["lcn"])

    def __len__(self) -> int:
        return len(self.records)

    def by_lcn(self, lcn: int) -> Channel | None:
        return self._by_lcn.get(lcn)

    def find(self, record: Channel) -> Channel | None:
        """The lineup's own record for a channel identity (with its number and name)."""
        return self._by_identity.get(identity(record))

    def by_dvb_triplet(self, onid: int, tsid: int, sid: int) -> Channel | None:
        return self._by_identity.get((ID_TYPE_DVB_C, onid, tsid, sid))

    def by_uri(self, uri: str) -> Channel | None:
        return self._by_identity.get((ID_TYPE_IPTV_URI, uri))

    def by_broadcast_id(self, broadcast_id: str) -> Channel | None:
        return self._by_identity.get((ID_TYPE_IPTV_SDS, broadcast_id))

    def step(self, current: Channel | None, delta: int) -> Channel | None:
        """The next (+1) or previous (-1) channel, wrapping round; the first when nothing is on."""
        if not self.records:
            return None
        if current is None or (own := self.find(current)) is None:
            return self.records[0]
        index = self.records.index(own)
        return self.records[(index + delta) % len(self.records)]
