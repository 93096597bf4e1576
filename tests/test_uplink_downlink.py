"""The downlink: only what the region signed, for this community, current by the region's clock, is shown."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import orjson
import pytest

from linli.gateway.bus import E, Subscription
from linli.gateway.events import AnnouncementReceived, DownlinkRejected
from linli.wire import topics
from linli.wire.signing import Signer
from tests import regional
from tests.brokers import settle
from tests.portal_accounts import add_account, portal, sign_in
from tests.regional import REGION, add_tv, listening, publish_down, tv_profiles, uplink_config

region_broker = regional.region_broker


async def collect(subscription: Subscription[E], count: int, timeout: float = 5.0) -> list[E]:
    async with asyncio.timeout(timeout):
        return [await subscription.get() for _ in range(count)]


def announcement(
    ident: str, *, targets: Any = "*", kind: str = "emergency", issued: float | None = None
) -> dict:
    issued = time.time() if issued is None else issued
    return {
        "id": ident,
        "kind": kind,
        "region": REGION,
        "targets": targets,
        "title": "紧急通知",
        "body": "Flood warning: move vehicles out of the underground car park now.",
        "issued_at": issued,
        "expires_at": issued + 3600,
    }


async def start(make_gateway, region_broker, tmp_path, signer: Signer):  # type: ignore[no-untyped-def]
    """A community with one household and one TV that records what it was told to show."""
    gateway = await make_gateway(
        components=[],
        uplink=uplink_config(region_broker.port, signer),
        profiles={"paths": tv_profiles(tmp_path / "profiles")},
    )
    await gateway.components["uplink"].relay.async_wait_connected(10)
    shown = await add_tv(gateway)
    return gateway, shown


@pytest.mark.slow
async def test_only_a_correctly_signed_announcement_reaches_the_tv(
    make_gateway, region_broker, tmp_path
) -> None:
    # given a community gateway that trusts the region's key, and its TV
    region, intruder = Signer.generate(), Signer.generate()
    gateway, shown = await start(make_gateway, region_broker, tmp_path, region)
    received = gateway.bus.subscribe(AnnouncementReceived)
    rejected = gateway.bus.subscribe(DownlinkRejected)
    own_topic = topics.down_topic(REGION, "community")
    all_topic = topics.down_topic(REGION, topics.ALL)
    async with listening(region_broker.port) as region_side:
        # when the region broadcasts an emergency
        good = region.sign(announcement("a-1"))
        await publish_down(region_broker.port, all_topic, good)
        # then it is on the TV as an alarm, and the region hears it was shown
        await settle(lambda: len(shown) == 1, timeout=5)
        assert shown[0]["action"] == "show" and shown[0]["level"] == "alarm"
        assert shown[0]["text"].startswith("Flood warning")
        await settle(
            lambda: any(e.data.get("state") == "shown" for e in region_side.of_kind("receipt")), timeout=5
        )
        receipt = next(e for e in region_side.of_kind("receipt") if e.data["state"] == "shown")
        assert (receipt.data["announcement_id"], receipt.data["tvs_shown"], receipt.data["tvs_total"]) == (
            "a-1",
            1,
            1,
        )

        # when forged, tampered, unsigned, replayed and misdirected messages arrive
        forged = intruder.sign(announcement("a-2"))
        doc = orjson.loads(region.sign(announcement("a-3")))
        doc["payload"] = base64.b64encode(
            orjson.dumps(announcement("a-3") | {"body": "Evacuate to the river"})
        ).decode()
        tampered = orjson.dumps(doc)
        unsigned = orjson.dumps(announcement("a-4"))
        elsewhere = region.sign(announcement("a-5", targets=["west-garden"]))
        other_region = region.sign(announcement("a-6") | {"region": "hunan"})
        for topic, message in (
            (all_topic, forged),
            (all_topic, tampered),
            (own_topic, unsigned),
            (all_topic, good),
            (own_topic, elsewhere),
            (all_topic, other_region),
            (own_topic, b"\x00not json"),
        ):
            await publish_down(region_broker.port, topic, message)
        # then each is rejected with its reason and reported to the region — and none is shown
        reasons = [e.reason for e in await collect(rejected, 7)]
        assert reasons == [
            "unknown_key",
            "bad_signature",
            "unsigned",
            "replayed",
            "not_targeted",
            "wrong_region",
            "malformed",
        ]
        await settle(lambda: len(region_side.of_kind("rejected")) >= 7, timeout=5)
        assert [e.data["reason"] for e in region_side.of_kind("rejected")] == reasons
    assert len(shown) == 1
    assert [e.announcement_id for e in [received.get_nowait()] if e] == ["a-1"]
    assert received.get_nowait() is None


async def test_gateway_with_a_wrong_clock_judges_by_the_regions_clock(
    make_gateway, region_broker, tmp_path
) -> None:
    # given a gateway whose clock is two days behind
    region = Signer.generate()
    gateway, shown = await start(make_gateway, region_broker, tmp_path, region)
    uplink = gateway.components["uplink"]
    uplink.clock = lambda: time.time() - 2 * 86400
    rejected = gateway.bus.subscribe(DownlinkRejected)
    all_topic = topics.down_topic(REGION, topics.ALL)
    # when an announcement arrives before the gateway knows the region's time
    await publish_down(region_broker.port, all_topic, region.sign(announcement("c-1", kind="announcement")))
    # then it looks issued in the future, and is refused with a reason that names the clock
    [event] = await collect(rejected, 1)
    assert event.reason == "from_the_future" and "clock" in event.detail
    # when the region's signed time arrives (retained, as the region publishes it)
    now = time.time()
    clock = region.sign(
        {"kind": "clock", "region": REGION, "issued_at": now, "expires_at": now + 300, "id": "clock"}
    )
    await publish_down(
        region_broker.port, topics.down_topic(REGION, topics.ALL, topics.CLOCK), clock, retain=True
    )
    await settle(lambda: abs(uplink.clock_offset_s - 2 * 86400) < 30, timeout=5)
    # then the next announcement is judged by the region's clock and shown, at the "info" level
    await publish_down(region_broker.port, all_topic, region.sign(announcement("c-2", kind="announcement")))
    await settle(lambda: len(shown) == 1, timeout=5)
    assert shown[0]["level"] == "info"
    # and an expired one is still refused
    stale = announcement("c-3", issued=time.time() - 7200)
    await publish_down(region_broker.port, all_topic, region.sign(stale))
    [event] = await collect(rejected, 1)
    assert event.reason == "expired"


async def test_a_regional_broadcast_is_on_the_residents_phones_and_listed_like_a_local_one(
    make_gateway, region_broker, tmp_path
) -> None:
    # given a resident of h1 signed in on her phone, with the live socket open
    region = Signer.generate()
    gateway, _ = await start(make_gateway, region_broker, tmp_path, region)
    password = await add_account(gateway, "li.resident", "resident", "h1")
    async with portal(gateway) as client:
        await sign_in(client, "li.resident", password)
        async with client.ws_connect("/api/v1/ws") as socket:
            # when the region broadcasts an emergency to every community
            await publish_down(
                region_broker.port, topics.down_topic(REGION, topics.ALL), region.sign(announcement("a-9"))
            )
            # then her phone is told at once, as an emergency from the region
            async with asyncio.timeout(5):
                while (message := await socket.receive_json())["type"] != "announcement":
                    pass
            pushed = message["announcement"]
            assert (pushed["source"], pushed["kind"], pushed["title"]) == ("region", "emergency", "紧急通知")
        # and it is in her list (and the TV page's) until it expires
        listed = (await (await client.get("/api/v1/announcements")).json())["items"]
        assert [(a["id"], a["source"]) for a in listed] == [("region-a-9", "region")]
        assert listed[0]["expires"] == pytest.approx(listed[0]["starts"] + 3600, abs=5)
