"""mDNS / DNS-SD with real python-zeroconf registrations on 127.0.0.1.

TXT shapes: Linli's own `_linli._tcp` (id, model, fw), and a Chromecast's
`_googlecast._tcp` (id = its UUID without dashes, md, fn, ve, ca, st, rs — as
cast devices publish them; the same UUID is the UDN of its DIAL server).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from linli.gateway.discovery import InboxError, InboxStatus
from linli.sim.upnp_box import SimUpnpDevice
from tests.brokers import settle
from tests.discovering import inbox_of, item_for, portal_client, rejected_view, start


@pytest.fixture
async def mdns() -> AsyncIterator[AsyncZeroconf]:
    """A device-side mDNS responder on loopback only."""
    responder = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    yield responder
    await responder.async_close()


def service(service_type: str, instance: str, properties: dict, port: int = 8883) -> AsyncServiceInfo:
    return AsyncServiceInfo(
        service_type,
        f"{instance}.{service_type}",
        addresses=[socket.inet_aton("127.0.0.1")],
        port=port,
        properties=properties,
        server=f"{instance.lower().replace(' ', '-')}.local.",
    )


@pytest.mark.slow
async def test_linli_pendant_registered_on_loopback_is_in_the_inbox_within_two_seconds(
    make_gateway, mdns
) -> None:
    gateway = await start(make_gateway, "zeroconf")
    inbox = inbox_of(gateway)
    device_id = f"sos-{uuid.uuid4().hex[:8]}"
    # when a pendant registers its service (probing, then announcing, as real responders do)
    started = time.monotonic()
    await mdns.async_register_service(
        service(
            "_linli._tcp.local.",
            f"SOS pendant {device_id}",
            {"id": device_id, "model": "SOS-P1", "fw": "1.4.0"},
        )
    )
    item = await item_for(inbox, f"linli:{device_id}", timeout=2.0)
    assert time.monotonic() - started < 2.0
    # then it is pending, matched by its TXT record to the pendant's profile, ready to adopt
    assert item.status is InboxStatus.PENDING
    assert (item.model, item.firmware, item.profile_id) == ("SOS-P1", "1.4.0", "linli/sos-pendant")
    assert item.address.startswith("127.0.0.1:8883")
    assert item.topic == f"linli/v1/discovery/{device_id}"
    assert {c.kind for c in item.capabilities} == {"sos_button", "battery"}


@pytest.mark.slow
async def test_txt_record_with_binary_junk_is_rejected_and_discovery_goes_on(
    make_gateway, mdns, caplog
) -> None:
    gateway = await start(make_gateway, "zeroconf")
    inbox = inbox_of(gateway)
    junk_name, good_id = f"Junk {uuid.uuid4().hex[:8]}", f"sos-{uuid.uuid4().hex[:8]}"
    # when one service's TXT record carries binary junk where the model should be, and another is fine
    await asyncio.gather(
        mdns.async_register_service(
            service("_linli._tcp.local.", junk_name, {b"id": b"junk-1", b"model": b"\xff\xfe\x00\x89PNG\r\n"})
        ),
        mdns.async_register_service(
            service("_linli._tcp.local.", f"Pendant {good_id}", {"id": good_id, "model": "SOS-P1"}, port=8884)
        ),
    )
    # then the good one is pending, and the junk is in the rejected view with the reason, and logged
    await item_for(inbox, f"linli:{good_id}")
    await settle(lambda: inbox.find(f"zeroconf:{junk_name.lower()}._linli._tcp.local.") is not None)
    rejected = await rejected_view(gateway)
    reasons = [r["reason"] for r in rejected if junk_name in r["reason"]]
    assert reasons and "TXT model: bytes ff fe 00 89" in reasons[0] and "binary junk" in reasons[0]
    assert any("binary junk" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


@pytest.mark.slow
async def test_service_goodbye_makes_the_item_unavailable_not_deleted(make_gateway, mdns) -> None:
    gateway = await start(make_gateway, "zeroconf")
    inbox = inbox_of(gateway)
    device_id = f"fr-{uuid.uuid4().hex[:8]}"
    info = service("_linli._tcp.local.", f"Radar {device_id}", {"id": device_id, "model": "FR-60"})
    await mdns.async_register_service(info)
    item = await item_for(inbox, f"linli:{device_id}")
    await mdns.async_unregister_service(info)
    await settle(lambda: not item.available)
    assert inbox.get(item.id) is item
    assert item.sources["zeroconf"].gone_reason == "service removed (mDNS goodbye)"


@pytest.mark.slow
async def test_same_box_over_ssdp_and_zeroconf_is_one_inbox_entry(make_gateway, mdns) -> None:
    # given a set-top box with a built-in cast receiver: DIAL over SSDP, _googlecast over mDNS
    gateway = await start(make_gateway, "zeroconf", "ssdp")
    inbox = inbox_of(gateway)
    box_uuid = uuid.uuid4()
    box = SimUpnpDevice(
        udn=f"uuid:{box_uuid}",
        device_type="urn:schemas-upnp-org:device:MediaRenderer:1",
        friendly_name="客厅机顶盒",
        manufacturer="Acme Cable",
        model_name="DVB-C 9",
        dial=True,
        ssdp_port=gateway.config["discovery"]["ssdp"]["port"],
    )
    async with contextlib.AsyncExitStack() as stack:
        await box.async_start()
        stack.push_async_callback(box.async_stop)
        await mdns.async_register_service(
            service(
                "_googlecast._tcp.local.",
                f"Acme-Box-{box_uuid.hex}",
                {
                    "id": box_uuid.hex,
                    "md": "DVB-C 9",
                    "fn": "客厅机顶盒",
                    "ve": "05",
                    "ca": "201221",
                    "st": "0",
                    "rs": "",
                },
                port=8009,
            )
        )
        key = f"uuid:{box_uuid.hex}"
        await settle(lambda: (i := inbox.find(key)) is not None and len(i.sources) == 2, timeout=5)
    item = inbox.find(key)
    # then it is one entry, known to both sources, recognised as a set-top box
    assert sorted(item.sources) == ["ssdp", "zeroconf"]
    assert [i for i in inbox.list_items(None) if key in i.keys] == [item]
    assert item.category == "set_top_box"
    assert item.sources["ssdp"].announcement.details["application_url"].endswith("/apps/")


@pytest.mark.slow
async def test_chromecast_and_homekit_say_what_they_are_and_why_they_cannot_be_adopted(
    make_gateway, mdns
) -> None:
    # given a household with a Chromecast and a HomeKit accessory announcing themselves
    # (TXT keys as each family publishes them: cast `id`/`md`/`fn`, HAP `id`/`md`/`c#`/`ci`/`sf`)
    gateway = await start(make_gateway, "zeroconf")
    await gateway.registry.async_add_building("b1", "1号楼")
    await gateway.registry.async_add_unit("u1", "b1", "101")
    await gateway.registry.async_add_household("h1", "u1", "h1 home")
    inbox = inbox_of(gateway)
    cast_id = uuid.uuid4().hex
    await asyncio.gather(
        mdns.async_register_service(
            service(
                "_googlecast._tcp.local.",
                f"Chromecast-{cast_id}",
                {"id": cast_id, "md": "Chromecast", "fn": "客厅电视", "ve": "05", "ca": "4101", "st": "0"},
                port=8009,
            )
        ),
        mdns.async_register_service(
            service(
                "_hap._tcp.local.",
                f"Hue Bridge {cast_id[:6]}",
                {"id": "AA:BB:CC:DD:EE:01", "md": "BSB002", "c#": "3", "s#": "1", "ci": "2", "sf": "1"},
                port=8080,
            )
        ),
    )
    cast = await item_for(inbox, f"uuid:{cast_id}")
    hap = await item_for(inbox, "mac:aabbccddee01")
    # then each says, in the inbox, what it is and why it cannot be adopted — not a bare "no profile"
    assert cast.as_dict()["profile_note"].startswith("Chromecast (Google Cast): Linli cannot control Cast")
    assert hap.as_dict()["profile_note"].startswith("HomeKit accessory: ")
    refusal = cast.as_dict()["sources"]["zeroconf"]["details"]["refusal"]
    assert refusal["code"] == "not_adoptable"
    assert refusal["what"]["zh-CN"].startswith("Chromecast") and "投屏" in refusal["what"]["zh-CN"]
    assert "邻里" in refusal["message"]["zh-CN"]
    # and the inbox's REST list carries the refusal in both languages, for the page to say it in its reader's
    async with portal_client(gateway, "wang.manager") as client:
        listed = {i["id"]: i for i in (await (await client.get("/api/v1/inbox")).json())["items"]}
    assert listed[cast.id]["refusal"]["message"]["zh-CN"] == refusal["message"]["zh-CN"]
    assert listed[hap.id]["refusal"]["message"]["en"].startswith("HomeKit accessory: ")
    # and approving one answers not_adoptable with the same sentence, and nothing is added
    with pytest.raises(InboxError) as refused:
        await inbox.async_approve(cast.id, household_id="h1", by="li.installer")
    assert refused.value.code == "not_adoptable"
    assert "Chromecast (Google Cast)" in str(refused.value)
    assert gateway.registry.household_devices("h1") == []


def test_every_default_browsed_type_but_linli_own_is_explained() -> None:
    from linli.adapters.discovery.zeroconf import DEFAULT_TYPES, NATIVE_TYPE
    from linli.gateway.discovery.refusals import refusal_for_service

    unexplained = [t for t in DEFAULT_TYPES if t != NATIVE_TYPE and refusal_for_service(t) is None]
    # ESPHome's type is adopted by its adapter, not refused
    assert [t for t in unexplained if not t.startswith("_esphomelib.")] == []
    for service_type in (
        "_ipp._tcp.local.",
        "_sonos._tcp.local.",
        "_airplay._tcp.local.",
        "_miio._udp.local.",
    ):
        refusal = refusal_for_service(service_type)
        assert refusal is not None and refusal.what["zh-CN"] and refusal.why["en"] and refusal.advice["zh-CN"]
