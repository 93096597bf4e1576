"""The channel lineups the simulated boxes carry: the same programmes on both networks.

The carrier's IPTV network addresses channels by SD&S broadcast id (OIPF idType
40) or multicast URI (41); the cable network by DVB triplet (10). The operator
adapters' default settings list the same lineups (each manifest's config_schema).
"""

from __future__ import annotations

from typing import Any, Final

_NAMES: Final = [
    (1, "CCTV-1 综合"),
    (2, "CCTV-2 财经"),
    (3, "CCTV-3 综艺"),
    (5, "CCTV-5 体育"),
    (13, "CCTV-13 新闻"),
    (21, "湖北卫视"),
    (22, "湖北经视"),
    (30, "武汉新闻综合"),
]

CARRIER_LINEUP: Final[list[dict[str, Any]]] = [
    (
        {"idType": 40, "lcn": lcn, "name": name, "ipBroadcastID": f"ch{lcn:03d}.iptv.hb.example"}
        if lcn % 2
        else {"idType": 41, "lcn": lcn, "name": name, "uri": f"igmp://239.254.1.{lcn}:8000"}
    )
    for lcn, name in _NAMES
]

BROADCAST_LINEUP: Final[list[dict[str, Any]]] = [
    {"idType": 10, "lcn": lcn, "name": name, "onid": 0x20C0, "tsid": 1 + lcn // 10, "sid": 100 + lcn}
    for lcn, name in _NAMES
]
