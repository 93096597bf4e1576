"""The inbox's decisions, over REST and the Python API: nothing joins a home unasked."""

from __future__ import annotations

import json
import sqlite3

import pytest

from linli.gateway.discovery import InboxError, InboxStatus
from linli.gateway.discovery.events import InboxChanged
from linli.sim import discovery_payloads as payloads
from tests.brokers import settle
from tests.discovering import (
    COMPONENTS,
    discovery_config,
    inbox_of,
    item_for,
    portal_client,
    publish_retained,
    start,
    status_of,
)
from tests.homes import add_home, publish

RADAR = "fr60-7a21"
RADAR_KEY = f"linli:{RADAR}"


async def _household(gateway, household: str = "h1") -> None:
    """An empty home: building b1, a unit, the household."""
    registry = gateway.registry
    await registry.async_add_building("b1", "1号楼")
    await registry.async_add_unit(f"u-{household}", "b1", "101")
    await registry.async_add_household(household, f"u-{household}", f"{household} home")


async def test_approved_device_joins_the_household_and_its_telemetry_flows(make_gateway, broker) -> None:
    # given a native fall radar announcing itself, and a household
    gateway = await start(make_gateway, "mqtt")
    await _household(gateway)
    await publish_retained(broker.port, payloads.linli_native(RADAR, "FR-60", firmware="2.0.3"))
    item = await item_for(inbox_of(gateway), RADAR_KEY)
    assert item.profile_id == "linli/fall-radar"
    # when the property manager approves it into the household, with room and name
    async with portal_client(gateway, "wang.manager") as client:
        response = await client.post(
            f"/api/v1/inbox/{item.id}/approve",
            json={"household_id": "h1", "room": "bathroom", "name": "卫生间跌倒雷达"},
        )
        assert response.status == 200, await response.text()
        body = await response.json()
        detail = await (await client.get(f"/api/v1/inbox/{item.id}")).json()
    # then it is a registry device of that household, with the matched profile
    device = gateway.registry.device(body["device"]["id"])
    assert (device.household_id, device.room, device.name) == ("h1", "bathroom", "卫生间跌倒雷达")
    assert (device.profile.id, device.firmware, device.topic) == (
        "linli/fall-radar",
        "2.0.3",
        f"linli/v1/discovery/{RADAR}",
    )
    assert body["item"]["status"] == "approved"
    # and the decision is recorded with who made it
    approved = [d for d in detail["decisions"] if d["action"] == "approved"]
    assert approved[0]["by"] == "wang.manager" and approved[0]["household_id"] == "h1"
    # and the device's telemetry now reaches its household
    await publish(broker.port, [(device.topic, {"fall": "none", "presence": 1})])
    await settle(lambda: "presence" in device.states)
    assert device.available


async def test_decisions_need_an_actor_and_errors_are_json(make_gateway, broker) -> None:
    gateway = await start(make_gateway, "mqtt")
    await _household(gateway)
    await publish_retained(
        broker.port,
        # (a native device of a model no profile knows, and that says nothing else about itself)
        payloads.linli_native(RADAR, "FR-60") + payloads.linli_native("zz-0001", "ZZ-UNKNOWN"),
    )
    inbox = inbox_of(gateway)
    radar = await item_for(inbox, RADAR_KEY)
    unknown = await item_for(inbox, "linli:zz-0001")
    async with portal_client(gateway, None) as anonymous:
        # nobody signed in: refused, whatever actor the request names
        for headers, body in [({"X-Linli-User": "li.installer"}, {}), ({}, {"by": "li.installer"})]:
            response = await anonymous.post(
                f"/api/v1/inbox/{radar.id}/approve", json={"household_id": "h1", **body}, headers=headers
            )
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "unauthenticated"
    async with portal_client(gateway, "li.installer", "installer") as client:

        async def error(path: str, body: dict) -> tuple[int, str]:
            response = await client.post(path, json=body)
            return response.status, (await response.json())["error"]["code"]

        assert await error("/api/v1/inbox/nope/approve", {"household_id": "h1"}) == (404, "not_found")
        assert await error(f"/api/v1/inbox/{radar.id}/approve", {}) == (400, "bad_request")
        assert await error(f"/api/v1/inbox/{radar.id}/approve", {"household_id": "h9"}) == (
            409,
            "no_household",
        )
        assert await error(f"/api/v1/inbox/{unknown.id}/approve", {"household_id": "h1"}) == (
            409,
            "no_profile",
        )
        bad_json = await client.post(f"/api/v1/inbox/{radar.id}/reject", data=b"{nope")
        assert bad_json.status == 400
        listing = await client.get("/api/v1/inbox", params={"status": "sideways"})
        assert listing.status == 400
    assert radar.status is InboxStatus.PENDING  # nothing was decided
    assert gateway.registry.household_devices("h1") == []


async def test_rejected_device_stays_hidden_across_restarts_until_it_changes(
    make_gateway, broker, tmp_path
) -> None:
    # given a device someone rejected ("it's the neighbour's")
    data_dir = tmp_path / "gw"
    gateway = await start(make_gateway, "mqtt", data_dir=data_dir)
    await publish_retained(broker.port, payloads.linli_native(RADAR, "FR-60", firmware="2.0.3"))
    inbox = inbox_of(gateway)
    item = await item_for(inbox, RADAR_KEY)
    async with portal_client(gateway, "li.installer", "installer") as client:
        # (what the request claims about who decides is ignored: the signed-in installer decides)
        response = await client.post(
            f"/api/v1/inbox/{item.id}/reject",
            json={"reason": "邻居家的 neighbour's", "by": "anon"},
            headers={"X-Linli-User": "anon"},
        )
        assert response.status == 200
        assert (await client.get("/api/v1/inbox")).status == 200
        pending = await (await client.get("/api/v1/inbox")).json()
    assert pending["total"] == 0
    # when the gateway restarts and the device announces itself again, unchanged
    await gateway.async_stop()
    gateway = await start(make_gateway, "mqtt", data_dir=data_dir)
    inbox = inbox_of(gateway)
    item = await item_for(inbox, RADAR_KEY)
    await settle(lambda: item.sources["mqtt"].last_seen > item.decided_at)
    # then it is still rejected, with the reason and who decided
    assert item.status is InboxStatus.REJECTED
    assert (item.decided_by, item.reason) == ("li.installer", "邻居家的 neighbour's")
    # when the device changes (new firmware), it is shown again
    await publish_retained(broker.port, payloads.linli_native(RADAR, "FR-60", firmware="2.1.0"))
    await status_of(inbox, RADAR_KEY, InboxStatus.PENDING)
    actions = [(d.action, d.by) for d in await inbox.async_decisions(item.id)]
    assert actions == [("rejected", "li.installer"), ("reopened", "discovery")]


async def test_ignored_device_stays_hidden_whatever_it_does_until_restored(make_gateway, broker) -> None:
    gateway = await start(make_gateway, "mqtt")
    await publish_retained(broker.port, payloads.linli_native(RADAR, "FR-60", firmware="2.0.3"))
    inbox = inbox_of(gateway)
    item = await item_for(inbox, RADAR_KEY)
    await inbox.async_ignore(item.id, by="li.installer")
    await publish_retained(broker.port, payloads.linli_native(RADAR, "FR-60", firmware="2.1.0"))
    await settle(lambda: item.firmware == "2.1.0")
    assert item.status is InboxStatus.IGNORED
    assert inbox.list_items() == []
    await inbox.async_restore(item.id, by="li.installer")
    assert inbox.list_items() == [item]


async def test_rediscovered_adopted_device_gets_its_new_firmware(make_gateway, broker) -> None:
    gateway = await start(make_gateway, "mqtt")
    await _household(gateway)
    await publish_retained(broker.port, payloads.linli_native(RADAR, "FR-60", firmware="2.0.3"))
    inbox = inbox_of(gateway)
    item = await item_for(inbox, RADAR_KEY)
    device = await inbox.async_approve(item.id, household_id="h1", by="li.installer", room="bathroom")
    # when the radar is updated and announces itself again
    await publish_retained(broker.port, payloads.linli_native(RADAR, "FR-60", firmware="2.1.0"))
    await settle(lambda: device.firmware == "2.1.0")
    # then the registry has the new firmware, on disk too, and the inbox recorded who did it
    await inbox.async_flush()
    row = (
        sqlite3.connect(gateway.store.path)
        .execute("SELECT firmware FROM devices WHERE id = ?", (device.id,))
        .fetchone()
    )
    assert row == ("2.1.0",)
    updates = [d for d in await inbox.async_decisions(item.id) if d.action == "updated"]
    assert updates[0].by == "discovery" and updates[0].detail["firmware"] == ["2.0.3", "2.1.0"]
    assert item.status is InboxStatus.APPROVED


async def test_adopted_device_that_disappears_is_unavailable_not_deleted(make_gateway, broker) -> None:
    gateway = await start(make_gateway, "mqtt")
    await _household(gateway)
    await publish_retained(broker.port, payloads.linli_native(RADAR, "FR-60"))
    inbox = inbox_of(gateway)
    item = await item_for(inbox, RADAR_KEY)
    device = await inbox.async_approve(item.id, household_id="h1", by="li.installer")
    await publish(broker.port, [(device.topic, {"fall": "none", "presence": 0})])
    await settle(lambda: device.available)
    # when its announcement is withdrawn (empty retained payload)
    await publish_retained(broker.port, [(f"linli/v1/discovery/{RADAR}/config", b"")])
    # then the device is unavailable, still in its household and in the inbox
    await settle(lambda: not device.available)
    assert gateway.registry.device(device.id) is device
    assert item.status is InboxStatus.APPROVED and not item.available


async def test_device_already_in_the_registry_is_not_offered_again(make_gateway, broker) -> None:
    gateway = await start(make_gateway, "mqtt")
    topics = await add_home(gateway, "h1", devices={"door": "aqara/mccgq11lm"})
    # the bridge announces a device the installer registered by hand before
    base, _, name = topics["h1-door"].rpartition("/")  # its hub publishes on the device's state topic
    await publish_retained(
        broker.port, payloads.zigbee2mqtt_contact_sensor("0x00158d0001a2b3c4", name, base=base)
    )
    item = await item_for(inbox_of(gateway), "ieee:00158d0001a2b3c4")
    assert item.status is InboxStatus.APPROVED
    assert (item.device_id, item.decided_by) == ("h1-door", "registry")
    assert inbox_of(gateway).list_items() == []


async def test_inbox_survives_a_restart(make_gateway, broker, tmp_path) -> None:
    data_dir = tmp_path / "gw"
    gateway = await start(make_gateway, "mqtt", data_dir=data_dir)
    await publish_retained(broker.port, payloads.esphome_climate("bedroom-climate", "a4cf12b3c4d5"))
    item = await item_for(inbox_of(gateway), "mac:a4cf12b3c4d5")
    await settle(lambda: len(item.capabilities) == 2)
    await gateway.async_stop()
    # the retained configs are gone; the inbox still remembers what it learned
    await publish_retained(
        broker.port, [(t, b"") for t, _ in payloads.esphome_climate("bedroom-climate", "x")]
    )
    gateway = await start(make_gateway, "mqtt", data_dir=data_dir)
    again = inbox_of(gateway).get(item.id)
    assert again is not None and again.as_dict()["capabilities"] == item.as_dict()["capabilities"]


async def test_approving_twice_is_refused(make_gateway, broker) -> None:
    gateway = await start(make_gateway, "mqtt")
    await _household(gateway)
    await publish_retained(broker.port, payloads.linli_native(RADAR, "FR-60"))
    inbox = inbox_of(gateway)
    item = await item_for(inbox, RADAR_KEY)
    await inbox.async_approve(item.id, household_id="h1", by="li.installer")
    try:
        await inbox.async_approve(item.id, household_id="h1", by="li.installer")
    except InboxError as exc:
        assert exc.code == "already_approved"
    else:
        raise AssertionError("a second approval went through")


# -- profiles as a library: firmware as reported, re-matching on a profile reload -------------


def _acme_profile(model: str) -> dict:
    """A profile an installer drops into the community's profile folder."""
    return {
        "id": f"acme/{model.lower()}",
        "vendor": "Acme",
        "model": model,
        "name": "Bed sensor",
        "names": {"zh-CN": "离床感应垫", "en": "Bed sensor"},
        "match": {"mqtt": {"model": model}},
        "capabilities": [
            {
                "key": "in_bed",
                "kind": "bed_occupancy",
                "source": "in_bed",
                "value_on": True,
                "value_off": False,
                "names": {"zh-CN": "在床", "en": "In bed"},
            }
        ],
    }


async def _gateway_with_profile_folder(make_gateway, folder, data_dir=None):
    return await make_gateway(
        data_dir,
        components=COMPONENTS,
        discovery=discovery_config("mqtt"),
        profiles={"paths": [str(folder)]},
    )


async def test_door_sensor_reporting_firmware_as_zigbee2mqtt_does_is_matched_and_approved(
    make_gateway, broker
) -> None:
    # given an Aqara door sensor whose firmware Zigbee2MQTT reports as a build id, outside the
    # shipped profile's range (1.0-3.99)
    gateway = await start(make_gateway, "mqtt")
    await _household(gateway)
    messages = payloads.zigbee2mqtt_contact_sensor("0x00158d0001a2b3c5", "front_door")
    for _, config in messages:
        config["device"]["sw_version"] = "3000-0001"
    await publish_retained(broker.port, messages)
    inbox = inbox_of(gateway)
    item = await item_for(inbox, "ieee:00158d0001a2b3c5")
    # then it is matched to the door sensor profile anyway, with a note a person can read
    await settle(lambda: item.profile_id == "aqara/mccgq11lm")
    assert "3000-0001" in item.profile_note and "outside" in item.profile_note
    # when the manager approves it, naming the profile explicitly
    device = await inbox.async_approve(
        item.id, household_id="h1", by="wang.manager", profile_id="aqara/mccgq11lm"
    )
    # then it is a device of the household, and its contact maps right (true = closed)
    assert (device.profile.id, device.firmware) == ("aqara/mccgq11lm", "3000-0001")
    await publish(broker.port, [(device.topic, {"contact": False, "battery": 91})])
    await settle(lambda: device.states.get("door") is not None and device.states["door"].value is True)


@pytest.mark.slow
async def test_adding_a_profile_rematches_a_waiting_item_without_a_restart(
    make_gateway, broker, tmp_path
) -> None:
    # given a device announcing a model no profile knows, in a gateway following a profile folder
    folder = tmp_path / "profiles"
    folder.mkdir()
    gateway = await _gateway_with_profile_folder(make_gateway, folder)
    await _household(gateway)
    await publish_retained(broker.port, payloads.linli_native("bs9-0001", "BS-9"))
    inbox = inbox_of(gateway)
    item = await item_for(inbox, "linli:bs9-0001")
    assert item.profile_id is None
    with pytest.raises(InboxError) as refused:
        await inbox.async_approve(item.id, household_id="h1", by="li.installer")
    assert refused.value.code == "no_profile"
    changes: list[InboxChanged] = []
    gateway.bus.listen(InboxChanged, changes.append)
    # when an installer drops a profile for it into the folder (the gateway keeps running)
    (folder / "acme").mkdir()
    (folder / "acme" / "bs-9.json").write_text(json.dumps(_acme_profile("BS-9")), encoding="utf-8")
    # then the waiting item is matched within a few seconds, and the inbox says so
    await settle(lambda: item.profile_id == "acme/bs-9", 10.0)
    assert [c.key for c in item.capabilities] == ["in_bed"]
    assert any(c.item_id == item.id and c.change == "updated" for c in changes)
    # and it can be approved with it
    device = await inbox.async_approve(item.id, household_id="h1", by="li.installer")
    assert device.profile.id == "acme/bs-9"


async def test_a_profile_added_while_the_gateway_was_down_matches_at_start(
    make_gateway, broker, tmp_path
) -> None:
    # given a waiting item no profile matched, and a gateway that stops
    folder, data_dir = tmp_path / "profiles", tmp_path / "gw"
    folder.mkdir()
    gateway = await _gateway_with_profile_folder(make_gateway, folder, data_dir)
    await publish_retained(broker.port, payloads.linli_native("bs9-0002", "BS-9"))
    item = await item_for(inbox_of(gateway), "linli:bs9-0002")
    assert item.profile_id is None
    await gateway.async_stop()
    # when a profile for it is added before the next start (the device announces nothing new)
    (folder / "acme").mkdir()
    (folder / "acme" / "bs-9.json").write_text(json.dumps(_acme_profile("BS-9")), encoding="utf-8")
    gateway = await _gateway_with_profile_folder(make_gateway, folder, data_dir)
    # then the stored item is matched as soon as the inbox starts
    again = inbox_of(gateway).get(item.id)
    assert again is not None and again.profile_id == "acme/bs-9"
