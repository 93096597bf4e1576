"""The installer's way to a TV: a box announces itself, waits in the inbox, is approved, and takes commands.

Real packets on loopback: the cable box announces its MediaRenderer over SSDP
(a private SSDP port per test), the carrier box its `_thunder._tcp` service over
mDNS. Approval goes through the inbox (what the portal's inbox route calls); the
adapter that owns the box (by what its manifest declares it discovers) takes it
over — the inbox never knows which adapter that is — and the household's TV
messages (what the portal's screens route calls) reach that box.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from linli.adapters.stb_carrier.adapter import THUNDER_PORT, CarrierAdapter
from linli.gateway.discovery import Adoption, InboxError, InboxItem, InboxStatus
from linli.gateway.discovery.adopters import found_device
from linli.gateway.registry import Device
from linli.sim.box import SimBox
from linli.sim.box_announcer import BoxAnnouncer
from linli.sim.dial_box import DialBox
from linli.sim.thunder_box import ThunderBox
from linli.sim.upnp_box import SimUpnpDevice
from tests.brokers import settle
from tests.discovering import DISCOVERY, discovery_config, inbox_of
from tests.homes import add_home
from tests.stb.boxes import ADAPTER, STB_COMPONENTS, stb_settings

SOURCE = {"broadcast": "ssdp", "carrier": "zeroconf"}
COMPONENTS = [*DISCOVERY, *STB_COMPONENTS]


@pytest.fixture
async def announced() -> AsyncIterator[Callable[..., Any]]:
    """Start a box and announce it; both stop at the end of the test."""
    started: list[tuple[SimBox, BoxAnnouncer]] = []

    async def factory(operator: str, name: str, ssdp_port: int) -> SimBox:
        name = f"{name}-{uuid.uuid4().hex[:8]}"  # mDNS on loopback is shared with whatever else runs
        box: SimBox = DialBox(name=name) if operator == "broadcast" else ThunderBox(name=name)
        await box.async_start()
        announcer = BoxAnnouncer(box, ssdp_port=ssdp_port)
        await announcer.async_start()
        started.append((box, announcer))
        return box

    yield factory
    for box, announcer in started:
        await announcer.async_stop()
        await box.async_stop()


async def discovering_gateway(make_gateway, operator: str):  # type: ignore[no-untyped-def]
    return await make_gateway(
        components=COMPONENTS,
        adapters=stb_settings(),
        discovery=discovery_config(SOURCE[operator]),
    )


def item_of(gateway, box: SimBox) -> InboxItem | None:  # type: ignore[no-untyped-def]
    """The inbox item of this box (its UDN for the cable box, its MAC for the carrier box)."""
    key = (
        "uuid:" + box.udn.removeprefix("uuid:").replace("-", "")
        if isinstance(box, DialBox)
        else "mac:" + box.mac.replace(":", "")
    )
    return inbox_of(gateway).find(key)


@pytest.mark.slow
@pytest.mark.parametrize("operator", ["broadcast", "carrier"])
async def test_a_discovered_box_approved_into_a_household_shows_its_messages(
    make_gateway, announced, operator
) -> None:
    # given a gateway that discovers, a household, and a box of this operator announcing itself
    gateway = await discovering_gateway(make_gateway, operator)
    await add_home(gateway, "h1", devices={})
    box = await announced(operator, f"disc-{operator}", gateway.config["discovery"]["ssdp"]["port"])
    await settle(lambda: item_of(gateway, box) is not None, 8.0)
    item = item_of(gateway, box)
    assert item is not None and item.status is InboxStatus.PENDING
    # the inbox already says which adapter would take it over (what its manifest declares)
    assert inbox_of(gateway).adopter_for(item) == ADAPTER[operator]
    # when an installer approves it into household h1, in the living room (what
    # POST /api/v1/inbox/{id}/approve does)
    device = await inbox_of(gateway).async_approve(
        item.id, household_id="h1", by="li.installer", room="客厅", name="客厅电视"
    )
    # then the owning adapter took it over: a TV of h1, on that adapter's profile
    assert (device.household_id, device.room, device.name) == ("h1", "客厅", "客厅电视")
    adapter = gateway.components["adapters"].adapter(ADAPTER[operator])
    assert [b["device_id"] for b in adapter.status()] == [device.id]
    assert inbox_of(gateway).get(item.id).status is InboxStatus.APPROVED  # type: ignore[union-attr]
    decision = next(d for d in await inbox_of(gateway).async_decisions(item.id) if d.action == "approved")
    assert (decision.by, decision.detail["adapter"]) == ("li.installer", ADAPTER[operator])
    # and a message for the household's TV (what POST /api/v1/households/h1/screens/tv/notify
    # does) appears on that very box
    screens = gateway.components["screens"]
    assert screens.tv("h1") is not None and screens.tv("h1").id == device.id  # type: ignore[union-attr]
    result = await screens.async_notify("h1", "快递到了", title="门卫", level="info")
    assert result["state"]["text"] == "快递到了"
    assert box.screen.overlay == {"text": "快递到了", "title": "门卫", "level": "info"}
    # the approval survives: the box is commanded like any adopted box
    result = await gateway.commands.async_send(device.id, "volume", {"action": "set", "level": 31})
    assert result["state"]["level"] == 31 and box.screen.volume == 31


async def test_a_box_that_cannot_be_reached_is_not_approved_and_says_why(make_gateway, announced) -> None:
    # given a cable box in the inbox that has since gone dark
    gateway = await discovering_gateway(make_gateway, "broadcast")
    await add_home(gateway, "h1", devices={})
    box = await announced("broadcast", "disc-dark", gateway.config["discovery"]["ssdp"]["port"])
    await settle(lambda: item_of(gateway, box) is not None, 8.0)
    item = item_of(gateway, box)
    assert item is not None
    await box.async_power_off()
    # when an installer approves it
    with pytest.raises(InboxError) as refused:
        await inbox_of(gateway).async_approve(item.id, household_id="h1", by="li.installer")
    # then it stays pending, and the reason names the adapter and the box
    assert refused.value.code == "adapter"
    assert "stb_broadcast" in refused.value.message and "cannot be adopted" in refused.value.message
    assert inbox_of(gateway).get(item.id).status is InboxStatus.PENDING  # type: ignore[union-attr]
    assert gateway.components["adapters"].adapter("stb_broadcast").status() == []


async def test_the_most_specific_declaration_claims_a_box(make_gateway, announced) -> None:
    # given a gateway running both operators' adapters, and a cable box in the inbox
    gateway = await discovering_gateway(make_gateway, "broadcast")
    box = await announced("broadcast", "disc-claim", gateway.config["discovery"]["ssdp"]["port"])
    await settle(lambda: item_of(gateway, box) is not None, 8.0)
    item = item_of(gateway, box)
    assert item is not None
    discovery = gateway.components["discovery"]
    adopted: list[str] = []

    async def adopt(found: Any) -> Device:
        adopted.append(found.item_id)
        raise RuntimeError("not this time")

    # when a third adapter declares exactly this maker's renderers (more fields than `st` alone)
    unregister = discovery.register_adopter(  # type: ignore[attr-defined]
        "stb_acme",
        {"ssdp": [{"st": "urn:schemas-upnp-org:device:MediaRenderer:2", "manufacturer": "Linli Sim Cable"}]},
        adopt,
    )
    # then it, not the generic cable-box adapter, is the one the approval goes to
    assert inbox_of(gateway).adopter_for(item) == "stb_acme"
    await add_home(gateway, "h1", devices={})
    with pytest.raises(InboxError, match="stb_acme cannot adopt"):
        await inbox_of(gateway).async_approve(item.id, household_id="h1", by="li.installer")
    assert adopted == [item.id]
    # and once it is gone, the broadcast adapter claims the box again
    unregister()
    assert inbox_of(gateway).adopter_for(item) == "stb_broadcast"


async def test_a_stopped_adapter_takes_no_box_over_until_it_runs_again(make_gateway, announced) -> None:
    # given a cable box in the inbox, claimed by the broadcast adapter
    gateway = await discovering_gateway(make_gateway, "broadcast")
    box = await announced("broadcast", "disc-restart", gateway.config["discovery"]["ssdp"]["port"])
    await settle(lambda: item_of(gateway, box) is not None, 8.0)
    item = item_of(gateway, box)
    assert item is not None and inbox_of(gateway).adopter_for(item) == "stb_broadcast"
    host = gateway.components["adapters"]
    # when the adapter is stopped, nothing claims the box (an approval would say so)
    await host.async_stop_adapter("stb_broadcast")  # type: ignore[attr-defined]
    assert inbox_of(gateway).adopter_for(item) is None
    await add_home(gateway, "h1", devices={})
    with pytest.raises(InboxError) as refused:
        await inbox_of(gateway).async_approve(item.id, household_id="h1", by="li.installer")
    assert refused.value.code == "no_profile"  # no adapter, and no MQTT profile fits a set-top box
    # and once it runs again, it claims the box and takes it over
    await host.async_start_adapter("stb_broadcast")  # type: ignore[attr-defined]
    assert inbox_of(gateway).adopter_for(item) == "stb_broadcast"
    device = await inbox_of(gateway).async_approve(item.id, household_id="h1", by="li.installer")
    assert device.profile.id == "dvb/dial-dlna-stb"


async def test_an_rdk_box_with_a_dial_server_goes_to_the_carrier_adapter_over_thunder(make_gateway) -> None:
    # given an RDK box announcing its DIAL server over SSDP (both adapters declare DIAL boxes)
    gateway = await discovering_gateway(make_gateway, "broadcast")
    rdk = SimUpnpDevice(
        udn=f"uuid:{uuid.uuid4()}",
        device_type="urn:dial-multiscreen-org:device:dial:1",
        friendly_name="IPTV box",
        manufacturer="RDK",
        model_name="RDK-STB",
        dial=True,
        ssdp_port=gateway.config["discovery"]["ssdp"]["port"],
    )
    await rdk.async_start()
    try:
        key = "uuid:" + rdk.udn.removeprefix("uuid:").replace("-", "")
        await settle(lambda: inbox_of(gateway).find(key) is not None, 8.0)
        item = inbox_of(gateway).find(key)
        assert item is not None
        # then the carrier adapter claims it (its rule names the maker too: the more specific one)
        assert inbox_of(gateway).adopter_for(item) == "stb_carrier"
        # and would reach it over Thunder on the DIAL server's host, keeping the DIAL address
        found = found_device(item, Adoption(household_id="h1", by="li.installer"))
        assert CarrierAdapter.thunder_url(found) == f"http://127.0.0.1:{THUNDER_PORT}"
        assert found.ssdp is not None and found.ssdp["application_url"].startswith("http://127.0.0.1:")
    finally:
        await rdk.async_stop()
