"""Boxes from outside the project: adopted with what they have, and never taking their adapter down.

Issue #15, item 1. Real devices are not the project's simulated cable box:

* a plain DLNA MediaRenderer (a smart TV, a renderer app) has no DIAL server —
  approving one used to be refused ("no DIAL server") while leaving the device
  behind, and the next poll crashed `stb_broadcast` for good, with
  "coroutine … was never awaited" warnings;
* many DIAL servers answer their SSDP LOCATION with 404 — DIAL only asks that
  answer to carry the `Application-URL` header;
* a box that fails in any way is that box's problem, never its adapter's; an
  adapter that does fail is restarted with backoff, its state and reason shown.

Every box here speaks its protocols for real on 127.0.0.1 (linli/sim/dial_box.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from linli import cli
from linli.gateway.commands import CommandError
from linli.gateway.discovery import InboxStatus
from linli.gateway.plugins import host as host_module
from linli.gateway.plugins.host import AdapterState
from linli.gateway.stb.fleet import degraded_kinds
from linli.sim.box_announcer import BoxAnnouncer
from linli.sim.dial_box import DialBox
from tests.brokers import settle
from tests.discovering import DISCOVERY, discovery_config, inbox_of
from tests.homes import add_home
from tests.portal_accounts import add_account, api_token
from tests.stb.boxes import STB_COMPONENTS, stb_settings

COMPONENTS = [*DISCOVERY, *STB_COMPONENTS]
MEDIA = "http://127.0.0.1:9/clip.mp4"


@pytest.fixture
async def sim_boxes() -> AsyncIterator[Callable[..., Any]]:
    """Start a simulated box with these options (announced over SSDP when given a port); all stopped after."""
    started: list[tuple[DialBox, BoxAnnouncer | None]] = []

    async def factory(ssdp_port: int | None = None, **options: Any) -> DialBox:
        box = DialBox(name=f"real-{uuid.uuid4().hex[:8]}", **options)
        await box.async_start()
        announcer = BoxAnnouncer(box, ssdp_port=ssdp_port) if ssdp_port else None
        if announcer is not None:
            await announcer.async_start()
        started.append((box, announcer))
        return box

    yield factory
    for box, announcer in started:
        if announcer is not None:
            await announcer.async_stop()
        await box.async_stop()


def cable(gateway: Any) -> Any:
    return gateway.components["adapters"].adapter("stb_broadcast")


async def refused(gateway: Any, device_id: str, capability: str, value: dict[str, Any]) -> str:
    """The error code a command gets (the test fails if it is carried out)."""
    with pytest.raises(CommandError) as error:
        await gateway.commands.async_send(device_id, capability, value)
    return str(error.value.code)


@pytest.mark.slow
async def test_a_plain_dlna_renderer_approved_from_the_inbox_is_adopted_with_what_it_has(
    make_gateway, sim_boxes
) -> None:
    # given a gateway that polls its cable boxes every second, and a DLNA renderer without DIAL
    # announcing its MediaRenderer over SSDP
    gateway = await make_gateway(
        components=COMPONENTS, adapters=stb_settings(poll_s=1), discovery=discovery_config("ssdp")
    )
    await add_home(gateway, "h1", devices={})
    renderer = await sim_boxes(gateway.config["discovery"]["ssdp"]["port"], dial=False)
    key = "uuid:" + renderer.udn.removeprefix("uuid:").replace("-", "")
    await settle(lambda: inbox_of(gateway).find(key) is not None, 8.0)
    item = inbox_of(gateway).find(key)
    assert item is not None and inbox_of(gateway).adopter_for(item) == "stb_broadcast"
    # when an installer approves it into h1
    device = await inbox_of(gateway).async_approve(item.id, household_id="h1", by="li.installer")
    # then it is h1's TV, reached over UPnP AV alone
    assert inbox_of(gateway).get(item.id).status is InboxStatus.APPROVED  # type: ignore[union-attr]
    [box] = cable(gateway).status()
    assert (box["device_id"], box["protocols"]) == (device.id, ["upnp-av"])
    # and what it has works: AVTransport plays and stops, RenderingControl sets volume and mute
    played = await gateway.commands.async_send(device.id, "media", {"action": "play", "url": MEDIA})
    assert played["state"]["state"] == "playing" and renderer.screen.media_url == MEDIA
    await gateway.commands.async_send(device.id, "media", {"action": "stop"})
    assert renderer.screen.media_state == "stopped"
    await gateway.commands.async_send(device.id, "volume", {"action": "set", "level": 42})
    await gateway.commands.async_send(device.id, "volume", {"action": "mute", "muted": True})
    assert (renderer.screen.volume, renderer.screen.muted) == (42, True)
    # while what needs DIAL is not supported, saying so — no DIAL apps, overlay, portal or power-off
    for capability, value in (
        ("app", {"action": "launch", "app": "YouTube"}),
        ("notify", {"action": "show", "text": "快递到了"}),
        ("portal", {"action": "open"}),
        ("power", {"action": "off"}),
    ):
        assert await refused(gateway, device.id, capability, value) == "not_supported", capability
    # and the household's screens fall back honestly: a TV message is not shown, and says why
    with pytest.raises(CommandError) as no_overlay:
        await gateway.components["screens"].async_notify("h1", "快递到了")
    assert no_overlay.value.code == "not_supported"
    # and after several polls the adapter still runs and the renderer is still driven
    host = gateway.components["adapters"]
    polled = renderer.soap_actions["GetStateVariables"]
    await settle(lambda: renderer.soap_actions["GetStateVariables"] >= polled + 2, 6.0)
    assert host.slots["stb_broadcast"].state is AdapterState.RUNNING
    await gateway.commands.async_send(device.id, "volume", {"action": "set", "level": 7})
    assert renderer.screen.volume == 7
    assert gateway.registry.device(device.id).available  # type: ignore[union-attr]


@pytest.mark.slow
async def test_a_dial_device_whose_description_answers_404_is_adopted_over_dial(
    make_gateway, sim_boxes
) -> None:
    # given a DIAL box whose LOCATION answers 404 with the DIAL headers (Application-URL, WAKEUP)
    gateway = await make_gateway(components=STB_COMPONENTS, adapters=stb_settings(poll_s=1))
    await add_home(gateway, "h1", devices={})
    box = await sim_boxes(description_status=404)
    async with aiohttp.ClientSession() as http, http.get(box.url) as answer:
        assert answer.status == 404 and answer.headers["Application-URL"].endswith("/apps/")
    # when it is adopted at that address
    device = await cable(gateway).async_adopt(
        "h1", box.url, wake_address="127.0.0.1", wake_port=box.wake_port
    )
    # then it is h1's TV over DIAL, known by the MAC its WAKEUP header names
    assert device.unique_id == "mac:" + box.mac.replace(":", "")
    [status] = cable(gateway).status()
    assert status["protocols"] == ["dial"]
    # and its DIAL apps, the operator's overlay and power-off work
    launched = await gateway.commands.async_send(
        device.id, "app", {"action": "launch", "app": "YouTube", "url": "https://www.youtube.com/tv"}
    )
    assert launched["state"]["running"] == "YouTube" and box.screen.app == "YouTube"
    shown = await gateway.components["screens"].async_notify("h1", "燃气报警", level="alarm")
    assert shown["state"]["text"] == "燃气报警" and box.screen.overlay["text"] == "燃气报警"  # type: ignore[index]
    # while what needs UPnP AV is not supported (the box never described its services)
    assert await refused(gateway, device.id, "media", {"action": "play", "url": MEDIA}) == "not_supported"
    assert await refused(gateway, device.id, "volume", {"action": "set", "level": 9}) == "not_supported"
    # and polling it keeps the adapter running
    requests = box.requests
    await settle(lambda: box.requests >= requests + 2, 6.0)
    assert gateway.components["adapters"].slots["stb_broadcast"].state is AdapterState.RUNNING
    off = await gateway.commands.async_send(device.id, "power", {"action": "off"})
    assert off["state"] == {"on": False} and not box.powered


async def test_a_dial_box_whose_description_answers_404_reaches_the_inbox_and_is_approved(
    make_gateway, sim_boxes
) -> None:
    # given a DIAL box announcing itself over SSDP whose description URL answers 404
    gateway = await make_gateway(
        components=COMPONENTS, adapters=stb_settings(poll_s=1), discovery=discovery_config("ssdp")
    )
    await add_home(gateway, "h1", devices={})
    box = await sim_boxes(gateway.config["discovery"]["ssdp"]["port"], description_status=404)
    key = "uuid:" + box.udn.removeprefix("uuid:").replace("-", "")
    # then it is in the inbox (not refused), claimed by the cable adapter, said to be a DIAL server
    await settle(lambda: inbox_of(gateway).find(key) is not None, 8.0)
    item = inbox_of(gateway).find(key)
    assert item is not None and inbox_of(gateway).adopter_for(item) == "stb_broadcast"
    assert "404" in (item.as_dict()["sources"]["ssdp"]["details"].get("model_description") or "")
    # and approving it makes it h1's TV over DIAL
    device = await inbox_of(gateway).async_approve(item.id, household_id="h1", by="li.installer")
    [status] = cable(gateway).status()
    assert (status["device_id"], status["protocols"]) == (device.id, ["dial"])
    launched = await gateway.commands.async_send(device.id, "app", {"action": "launch", "app": "YouTube"})
    assert launched["state"]["running"] == "YouTube" and box.screen.app == "YouTube"


@pytest.mark.slow
async def test_a_box_that_answers_nonsense_never_takes_its_adapter_down(make_gateway, sim_boxes) -> None:
    # given two cable boxes in two homes, polled every second
    gateway = await make_gateway(components=STB_COMPONENTS, adapters=stb_settings(poll_s=1))
    await add_home(gateway, "h1", devices={})
    await add_home(gateway, "h2", devices={})
    bad, good = await sim_boxes(), await sim_boxes()
    adapter = cable(gateway)
    bad_tv = await adapter.async_adopt("h1", bad.url)
    good_tv = await adapter.async_adopt("h2", good.url)
    # when one box starts answering broken XML, then SOAP faults, then nothing it can finish
    host = gateway.components["adapters"]
    for mode in ("malformed", "fault", "huge"):
        bad.misbehave = mode
        seen = bad.requests
        await settle(lambda seen=seen: bad.requests >= seen + 2, 8.0)
        # then the adapter runs on, the other home's box takes commands, and the bad one says why
        assert host.slots["stb_broadcast"].state is AdapterState.RUNNING, mode
        result = await gateway.commands.async_send(good_tv.id, "volume", {"action": "set", "level": 33})
        assert result["state"]["level"] == 33 and good.screen.volume == 33
    box = next(b for b in adapter.status() if b["device_id"] == bad_tv.id)
    assert box["last_error"]
    # and once it behaves again it is driven again
    bad.misbehave = None
    result = await gateway.commands.async_send(bad_tv.id, "volume", {"action": "set", "level": 12})
    assert result["state"]["level"] == 12 and bad.screen.volume == 12


async def test_a_cable_box_without_the_operators_app_reports_the_degraded_mode(
    make_gateway, sim_boxes
) -> None:
    # given a cable box with DIAL and DLNA but without the operator's Linli app
    gateway = await make_gateway(components=STB_COMPONENTS, adapters=stb_settings())
    await add_home(gateway, "h1", devices={})
    box = await sim_boxes(companion=False)
    device = await cable(gateway).async_adopt("h1", box.url)
    # when the household's TV is sent a message
    with pytest.raises(CommandError) as error:
        await gateway.commands.async_send(device.id, "notify", {"action": "show", "text": "有访客"})
    # then it is not supported, naming the app the operator must install
    assert error.value.code == "not_supported" and "Linli" in str(error.value)
    # and the adapter says which kinds are degraded and why (what certification reports)
    degraded = degraded_kinds(cable(gateway), device.id)
    assert degraded == cable(gateway).status()[0]["degraded"]
    assert set(degraded) == {"notify", "portal", "power"}
    assert all("needs the operator's Linli app" in reason for reason in degraded.values())
    # while channels, media and volume work as on any cable box
    tuned = await gateway.commands.async_send(device.id, "channel", {"action": "tune", "lcn": 5})
    assert tuned["state"]["lcn"] == 5
    # a box with the app is not degraded
    full = await sim_boxes()
    await add_home(gateway, "h2", devices={})
    await cable(gateway).async_adopt("h2", full.url)
    assert [b["degraded"] for b in cable(gateway).status() if b["household_id"] == "h2"] == [{}]


@pytest.mark.slow
async def test_a_crashed_adapter_is_restarted_with_backoff_and_shows_why(
    make_gateway, monkeypatch, capsys
) -> None:
    # given restarts that back off from 2 s (5 s in service), and a gateway running the cable adapter
    monkeypatch.setattr(host_module, "RESTART_BASE_S", 2.0)
    monkeypatch.setattr(host_module, "RESTART_CAP_S", 4.0)
    gateway = await make_gateway(
        components=["linli.portal.app:Portal", *STB_COMPONENTS],
        portal={"enabled": True},
        adapters=stb_settings(),
    )
    host = gateway.components["adapters"]
    slot = host.slots["stb_broadcast"]
    first = cable(gateway)

    async def boom() -> None:
        raise RuntimeError("lost the box network")

    # when a background job of the adapter raises
    slot.api.spawn(boom(), "boom")
    # then it is crashed, with the reason and when it will be tried again
    await settle(lambda: slot.state is AdapterState.CRASHED and slot.retry_at is not None, 2.0)
    item = next(i for i in host.status() if i["id"] == "stb_broadcast")
    assert item["reason"] == "crashed: RuntimeError: lost the box network"
    assert item["retry_at"] is not None and item["restarts"] == 1
    # which `linli adapters` shows, asking the running gateway
    url = gateway.components["portal"].url.rstrip("/")
    await add_account(gateway, "installer", "installer")
    token = await api_token(gateway, "installer")
    status = await asyncio.to_thread(cli.main, ["adapters", "--url", url, "--token", token])
    out = capsys.readouterr().out
    assert status == 1 and "crashed: RuntimeError: lost the box network" in out and "restart in" in out
    # and it is running again by itself, a new instance, taking boxes
    await settle(lambda: slot.state is AdapterState.RUNNING, 5.0)
    assert cable(gateway) is not first and slot.starts == 2
    assert next(i for i in host.status() if i["id"] == "stb_broadcast")["retry_at"] is None


async def test_the_manager_page_shows_a_crashed_adapter_and_its_restart(
    make_gateway, monkeypatch, tmp_path
) -> None:
    from tests.test_portal_browser import browser_page, portal_gateway, sign_in

    # given a gateway with the portal whose cable adapter has crashed, restarting in 30 s
    monkeypatch.setattr(host_module, "RESTART_BASE_S", 30.0)
    gateway, base = await portal_gateway(make_gateway, *STB_COMPONENTS, adapters=stb_settings())
    host = gateway.components["adapters"]
    slot = host.slots["stb_broadcast"]

    async def boom() -> None:
        raise RuntimeError("lost the box network")

    slot.api.spawn(boom(), "boom")
    await settle(lambda: slot.retry_at is not None, 2.0)
    password = await add_account(gateway, "wang.manager", "manager")
    async with browser_page(tmp_path, {"width": 1366, "height": 900}) as page:
        # when the manager opens the device inventory of /manage
        await sign_in(page, base, "wang.manager", password, "/manage")
        await page.click("#sections button[data-section=inventory]")
        row = page.locator('tr[data-adapter="stb_broadcast"]')
        await row.wait_for()
        # then the adapter is shown crashed, with the reason and when it restarts by itself
        assert await row.get_attribute("data-state") == "crashed"
        text = await row.inner_text()
        assert "已崩溃" in text and "crashed: RuntimeError: lost the box network" in text
        assert "后自动重启（第 1 次）" in await row.locator(".adapter-retry").inner_text()
        # and the carrier adapter, untouched, as running
        carrier = page.locator('tr[data-adapter="stb_carrier"]')
        assert (
            await carrier.get_attribute("data-state") == "running" and "运行中" in await carrier.inner_text()
        )
