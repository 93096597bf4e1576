"""The region's clock is only as good as it is fresh: an old signed reading, or an old broadcast, is refused.

A genuine clock reading recorded a day ago and published again must not set a gateway's view
of the region's time a day back — it would make a day-old broadcast current and show it on
every TV. Readings carry a signed expiry, the last trusted one is kept on disk, and after a
restart the region's time is never earlier than it.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest

from linli.gateway.uplink.component import Uplink
from linli.wire import topics
from linli.wire.signing import Signer
from tests import regional
from tests.brokers import settle
from tests.regional import REGION, add_tv, publish_down, tv_profiles, uplink_config

region_broker = regional.region_broker
DAY = 86400.0
CLOCK_TOPIC = topics.down_topic(REGION, topics.ALL, topics.CLOCK)
ALL_TOPIC = topics.down_topic(REGION, topics.ALL)


def reading(issued: float, ttl: float = 300.0) -> dict[str, Any]:
    return {"kind": "clock", "region": REGION, "issued_at": issued, "expires_at": issued + ttl, "id": "clock"}


def broadcast(ident: str, issued: float) -> dict[str, Any]:
    return {
        "id": ident,
        "kind": "emergency",
        "region": REGION,
        "targets": "*",
        "title": "紧急通知",
        "body": "Flood warning: move vehicles out of the underground car park now.",
        "issued_at": issued,
        "expires_at": issued + 3600,
    }


def announcements_kept(gateway: Any) -> int:
    with sqlite3.connect(gateway.store.path) as db:
        return int(db.execute("SELECT count(*) FROM uplink_announcements").fetchone()[0])


@pytest.mark.slow
async def test_a_day_old_clock_reading_is_refused_and_the_day_old_broadcast_not_shown(
    make_gateway, region_broker, tmp_path
) -> None:
    # given a gateway with a right clock that has not yet heard the region's time, and its TV
    region = Signer.generate()
    gateway = await make_gateway(
        components=[],
        uplink=uplink_config(region_broker.port, region),
        profiles={"paths": tv_profiles(tmp_path / "profiles")},
    )
    uplink = gateway.components["uplink"]
    await uplink.relay.async_wait_connected(10)
    shown = await add_tv(gateway)
    # when a genuine reading signed a day ago is published again, and then a broadcast of that day
    day_ago = time.time() - DAY
    await publish_down(region_broker.port, CLOCK_TOPIC, region.sign(reading(day_ago)), retain=True)
    await settle(lambda: uplink.rejections.get("expired") == 1, timeout=5)
    await publish_down(region_broker.port, ALL_TOPIC, region.sign(broadcast("old-1", day_ago - 600)))
    # then the reading is refused as expired, the gateway keeps its own time, and the broadcast
    # is refused as expired too: nothing reaches the TV
    await settle(lambda: uplink.rejections.get("expired") == 2, timeout=5)
    assert uplink.clock_offset_s == 0.0 and uplink.stats()["clock_issued"] == 0.0
    assert uplink.announcements == 0 and announcements_kept(gateway) == 0 and shown == []
    # and a current reading is still taken
    now = time.time()
    await publish_down(region_broker.port, CLOCK_TOPIC, region.sign(reading(now)), retain=True)
    await settle(lambda: uplink.stats()["clock_issued"] == now, timeout=5)


@pytest.mark.slow
async def test_a_reading_signed_for_too_long_or_without_an_expiry_is_refused(
    make_gateway, region_broker
) -> None:
    region = Signer.generate()
    gateway = await make_gateway(uplink=uplink_config(region_broker.port, region))
    uplink = gateway.components["uplink"]
    await uplink.relay.async_wait_connected(10)
    now = time.time()
    # when a reading valid for a day, and one with no expiry, arrive
    await publish_down(region_broker.port, CLOCK_TOPIC, region.sign(reading(now, ttl=DAY)))
    no_expiry = reading(now)
    del no_expiry["expires_at"]
    await publish_down(region_broker.port, CLOCK_TOPIC, region.sign(no_expiry))
    # then neither is trusted, each with its reason
    await settle(lambda: sum(uplink.rejections.values()) == 2, timeout=5)
    assert uplink.rejections == {"ttl_too_long": 1, "malformed": 1}
    assert uplink.stats()["clock_issued"] == 0.0


@pytest.mark.slow
async def test_after_a_restart_with_its_clock_set_back_the_last_trusted_reading_still_rules(
    make_gateway, region_broker, tmp_path, monkeypatch
) -> None:
    # given a gateway that trusted two readings of the region's clock (the offset barely moved)
    region = Signer.generate()
    data_dir = tmp_path / "gw"
    config = {
        "components": [],
        "uplink": uplink_config(region_broker.port, region),
        "profiles": {"paths": tv_profiles(tmp_path / "profiles")},
    }
    gateway = await make_gateway(data_dir=data_dir, **config)
    uplink = gateway.components["uplink"]
    await uplink.relay.async_wait_connected(10)
    await add_tv(gateway)
    first = time.time() - 10
    await publish_down(region_broker.port, CLOCK_TOPIC, region.sign(reading(first)), retain=True)
    await settle(lambda: uplink.stats()["clock_issued"] == first, timeout=5)
    last = time.time()
    await publish_down(region_broker.port, CLOCK_TOPIC, region.sign(reading(last)), retain=True)
    await settle(lambda: uplink.stats()["clock_issued"] == last, timeout=5)
    await gateway.async_stop()

    # when, while it is down, a genuine reading signed a day ago is published again and a day-old
    # broadcast is queued for it, and it restarts with its own clock a day behind (a flat RTC battery)
    # — the broker still holds the last reading retained, and hands it over again on reconnect
    day_ago = time.time() - DAY
    await publish_down(region_broker.port, CLOCK_TOPIC, region.sign(reading(day_ago - 60)))
    await publish_down(region_broker.port, ALL_TOPIC, region.sign(broadcast("old-2", day_ago - 600)))
    monkeypatch.setattr(Uplink.__init__, "__defaults__", (lambda: time.time() - DAY,))
    gateway = await make_gateway(data_dir=data_dir, **config)
    uplink = gateway.components["uplink"]
    assert uplink.clock() < time.time() - DAY + 5

    # then it starts from the last reading it trusted, refuses the old reading as older than that,
    # and refuses the broadcast as expired by the region's time it last knew — nothing is shown
    assert uplink.stats()["clock_issued"] == last
    await settle(lambda: sum(uplink.rejections.values()) >= 2, timeout=10)
    assert uplink.rejections == {"stale_clock": 1, "expired": 1}  # the retained last one is no rejection
    assert uplink.stats()["clock_issued"] == last and abs(uplink.clock_offset_s) < 5
    assert uplink.announcements == 0 and announcements_kept(gateway) == 0
