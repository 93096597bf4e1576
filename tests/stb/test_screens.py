"""Multi-screen: the household's phone and the gateway reach its TV, whichever operator's box it is."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from linli.gateway.context import Context
from linli.gateway.notify import Audience, Outcome
from linli.sim.box import SimBox
from linli.sim.layout import layout
from linli.sim.televisions import SimTelevisions
from linli.sim.thunder_box import ThunderBox
from tests.brokers import settle
from tests.homes import add_home
from tests.portal_accounts import add_account, api_token
from tests.stb.boxes import OPERATORS, home_with_tv, stb_gateway


async def portal_gateway(make_gateway, **kw):  # type: ignore[no-untyped-def]
    gateway = await stb_gateway(
        make_gateway,
        components=[
            "linli.portal.app:Portal",
            "linli.gateway.plugins.host:AdapterHost",
            "linli.services.screens.screens:Screens",
        ],
        portal={"enabled": True},
        **kw,
    )
    return gateway, gateway.components["portal"].url.rstrip("/")


async def signed_in(gateway, name: str, role: str, household: str | None = None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The Authorization header of a new account's API token (the portal needs a signed-in caller)."""
    await add_account(gateway, name, role, household)
    return {"Authorization": f"Bearer {await api_token(gateway, name)}"}


@pytest.mark.parametrize("operator", OPERATORS)
async def test_phone_sends_a_message_a_stream_a_channel_and_the_portal_to_the_tv(
    make_gateway, boxes, operator
) -> None:
    # given a household whose TV box is this operator's
    gateway, base = await portal_gateway(make_gateway)
    box: SimBox = await boxes(operator, "h1-tv")
    await home_with_tv(gateway, "h1", box)
    tv = f"{base}/api/v1/households/h1/screens/tv"
    async with aiohttp.ClientSession(
        headers=await signed_in(gateway, "li.resident", "resident", "h1")
    ) as http:
        # when the phone sends a message, then the TV shows it as an overlay
        async with http.post(f"{tv}/notify", json={"text": "晚饭好了", "title": "家", "level": "info"}) as r:
            assert r.status == 200, await r.text()
            answer = await r.json()
        assert box.screen.overlay == {"text": "晚饭好了", "title": "家", "level": "info"}
        assert answer["state"]["text"] == "晚饭好了" and answer["latency_ms"] > 0
        # a stream: it plays, with its title
        url = "http://127.0.0.1:9/family/video.mp4"
        async with http.post(f"{tv}/play", json={"url": url, "title": "孙子的生日"}) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["state"] == {"state": "playing", "url": url, "title": "孙子的生日"}
        assert (box.screen.media_url, box.screen.media_state) == (url, "playing")
        # a channel by its number: the same programme on either network
        async with http.post(f"{tv}/play", json={"lcn": 5}) as r:
            assert r.status == 200, await r.text()
        assert box.screen.channel is not None and box.screen.channel["name"] == "CCTV-5 体育"
        # the Linli portal, and then any web page
        async with http.post(f"{tv}/open", json={}) as r:
            assert r.status == 200, await r.text()
        # (the portal, paired already: a one-time grant the TV page trades for its screen credential)
        assert box.screen.portal_url.startswith(f"{base}/tv/?grant=")
        async with http.get(box.screen.portal_url, allow_redirects=False) as r:
            assert r.status in (302, 303) and "linli_screen" in r.cookies, await r.text()
        async with http.get(box.screen.portal_url, allow_redirects=False) as r:
            assert "linli_screen" not in r.cookies  # once only
        async with http.post(f"{tv}/open", json={"url": "https://example.org/menu"}) as r:
            assert r.status == 200
        assert box.screen.portal_url == "https://example.org/menu"
        # and the message comes off the screen
        async with http.delete(f"{tv}/notify") as r:
            assert r.status == 200
        assert box.screen.overlay is None
        async with http.get(f"{base}/api/v1/households/h1/screens") as r:
            listed = await r.json()
        assert listed["tv"]["id"] == "h1-tv"


@pytest.mark.slow
async def test_screen_routes_say_what_is_wrong(make_gateway, boxes) -> None:
    gateway, base = await portal_gateway(make_gateway)
    box = await boxes("broadcast", "h1-tv")
    await home_with_tv(gateway, "h1", box)
    await add_home(gateway, "h2", devices={})
    async with aiohttp.ClientSession(headers=await signed_in(gateway, "wang.manager", "manager")) as http:
        cases = [
            ("h9", "notify", {"text": "x"}, 404, "not_found"),
            ("h2", "notify", {"text": "x"}, 409, "no_screen"),
            ("h1", "notify", {"text": ""}, 400, "bad_request"),
            ("h1", "notify", {"text": "x", "level": "panic"}, 400, "invalid_command"),
            ("h1", "play", {}, 400, "bad_request"),
            ("h1", "play", {"lcn": 999}, 400, "invalid_command"),
            ("h1", "open", {"url": "javascript:alert(1)"}, 400, "invalid_command"),
        ]
        for household, verb, body, status, code in cases:
            async with http.post(f"{base}/api/v1/households/{household}/screens/tv/{verb}", json=body) as r:
                assert r.status == status, (household, verb, body, await r.text())
                assert (await r.json())["error"]["code"] == code
        async with http.post(f"{base}/api/v1/households/h1/screens/tv/notify", data=b"{nope") as r:
            assert r.status == 400
        # a box that is off: 503, with when it was last seen
        await box.async_power_off()
        async with http.post(f"{base}/api/v1/households/h1/screens/tv/notify", json={"text": "x"}) as r:
            error = (await r.json())["error"]
        assert r.status == 503 and error["code"] == "unavailable"
        assert error["last_seen"] is not None and "last seen" in error["message"]
        # the overlay page is one static file: what it is asked to show never becomes its HTML
        # (its script sets the query as text: tests/test_portal_browser.py shows it on screen)
        pages = []
        for text in ("<script>x</script>", "晚饭好了"):
            async with http.get(f"{base}/screens/overlay", params={"text": text, "title": text}) as r:
                assert (r.status, r.content_type) == (200, "text/html")
                pages.append(await r.text())
        assert pages[0] == pages[1] and "<script>x" not in pages[0]


async def test_an_alert_appears_on_the_tv_of_its_household_and_goes_when_acknowledged(
    make_gateway, boxes
) -> None:
    # given two households, one with each operator's box, and a third without a TV
    gateway = await stb_gateway(
        make_gateway,
        components=[
            "linli.gateway.plugins.host:AdapterHost",
            "linli.services.screens.screens:Screens",
            "linli.services.alerts:AlertEngine",
        ],
    )
    carrier, cable = await boxes("carrier", "h1-tv"), await boxes("broadcast", "h2-tv")
    await home_with_tv(gateway, "h1", carrier)
    await home_with_tv(gateway, "h2", cable)
    await add_home(gateway, "h3", devices={})
    engine = gateway.components["alerts"]
    # when an SOS is raised in each
    first = await engine.async_raise(
        kind="sos", household_id="h1", title="SOS 紧急呼叫", detail="王奶奶按了呼叫器"
    )
    second = await engine.async_raise(kind="sos", household_id="h2", title="SOS 紧急呼叫", detail="李爷爷")
    await engine.async_raise(kind="sos", household_id="h3", title="SOS")
    # then each household's TV shows its own alert, in the alarm style
    await settle(lambda: carrier.screen.overlay is not None and cable.screen.overlay is not None)
    assert carrier.screen.overlay == {
        "text": "SOS 紧急呼叫 — 王奶奶按了呼叫器",
        "title": "SOS 紧急呼叫",
        "level": "alarm",
    }
    assert cable.screen.overlay is not None and cable.screen.overlay["text"] == "SOS 紧急呼叫 — 李爷爷"
    # and when a person acknowledges the first, it leaves that TV only
    await engine.async_acknowledge(first.id, "h1.resident")
    await settle(lambda: carrier.screen.overlay is None)
    assert cable.screen.overlay is not None
    assert second.id != first.id


async def test_tv_channel_outcomes(make_gateway, boxes) -> None:
    gateway = await stb_gateway(make_gateway)
    box = await boxes("carrier", "h1-tv")
    await home_with_tv(gateway, "h1", box)
    await add_home(gateway, "h2", devices={})
    channel = next(c for c in gateway.notifier.channels if c.name == "tv")
    alert = {"id": 7, "kind": "smoke", "severity": "critical", "household_id": "h1", "title": "烟雾报警"}
    step = Context(household="h1", origin="alerts")  # the escalation step's, as the engine gives it
    # the household's own screens: delivered to the overlay
    delivered = await channel.async_deliver(alert, Audience.HOUSEHOLD, context=step)
    assert delivered.outcome is Outcome.DELIVERED and "h1-tv" in delivered.detail
    assert box.screen.overlay is not None and box.screen.overlay["text"] == "烟雾报警"
    # carers and the duty desk do not sit in front of this TV
    assert (
        await channel.async_deliver(alert, Audience.DUTY_DESK, context=step)
    ).outcome is Outcome.NO_RECIPIENT
    # a household without a box: nobody to tell on this channel
    other = {**alert, "household_id": "h2"}
    assert (
        await channel.async_deliver(other, Audience.HOUSEHOLD, context=step)
    ).outcome is Outcome.NO_RECIPIENT
    # a box that is off: failed, so that the alert engine tries again
    await box.async_power_off()
    failed = await channel.async_deliver(alert, Audience.HOUSEHOLD, context=step)
    assert failed.outcome is Outcome.FAILED and "unavailable" in failed.detail


async def test_the_demo_gives_half_the_households_a_carrier_box_and_half_a_cable_box(make_gateway) -> None:
    # given the demo community's first four homes
    gateway = await stb_gateway(make_gateway)
    await gateway.registry.async_import(**layout(4))
    televisions = SimTelevisions()
    try:
        # when the demo starts their TVs
        await televisions.async_start(gateway, 4)
        # then odd homes have the carrier's IPTV box, even homes the cable box, each adopted
        profiles = {
            hid: next(d.profile.id for d in gateway.registry.household_devices(hid) if d.id.endswith("-tv"))
            for hid in ("h0001", "h0002", "h0003", "h0004")
        }
        assert profiles == {
            "h0001": "rdk/thunder-stb",
            "h0002": "dvb/dial-dlna-stb",
            "h0003": "rdk/thunder-stb",
            "h0004": "dvb/dial-dlna-stb",
        }
        # and the same call reaches every one of them
        screens = gateway.components["screens"]
        for hid in profiles:
            await screens.async_notify(hid, f"社区通知 {hid}")
        assert [televisions.boxes[h].screen.overlay["text"] for h in profiles] == [
            f"社区通知 {h}" for h in profiles
        ]
    finally:
        await televisions.async_stop()


@pytest.mark.slow
async def test_the_demo_residents_use_their_own_remotes_and_the_gateway_follows(make_gateway) -> None:
    # given the demo's first four homes, two with each operator's box, and no polling
    gateway = await stb_gateway(make_gateway)
    await gateway.registry.async_import(**layout(4))
    televisions = SimTelevisions(remote_per_hour=0)
    try:
        await televisions.async_start(gateway, 4)
        await asyncio.sleep(1.1)  # past the echo window of the adoptions' own reads
        # when the residents zap and turn the volume on the boxes themselves for a while
        televisions.start_remotes(20 * 3600)  # 20 presses a second per TV
        await asyncio.sleep(1.5)
        await televisions.async_stop_remotes()
        assert televisions.presses > 40

        # then each household's TV state in the gateway is what its box shows, learnt from events only
        def followed(hid: str) -> bool:
            screen = televisions.boxes[hid].screen
            states = gateway.registry.devices[f"{hid}-tv"].states
            channel = states["channel"].value or {}
            return states["volume"].value["level"] == screen.volume and channel.get("lcn") == (
                screen.channel or {}
            ).get("lcn")

        for hid in ("h0001", "h0002", "h0003", "h0004"):
            await settle(lambda hid=hid: followed(hid), timeout=2)  # type: ignore[misc]
    finally:
        await televisions.async_stop()


async def test_a_carrier_box_with_dial_launches_its_dial_apps_the_dial_way(make_gateway) -> None:
    # given a carrier box that also has a DIAL server
    gateway = await stb_gateway(make_gateway)
    box = ThunderBox(name="h1-tv", dial=True)
    await box.async_start()
    try:
        await add_home(gateway, "h1", devices={})
        carrier = gateway.components["adapters"].adapter("stb_carrier")
        device = await carrier.async_adopt("h1", box.url, dial_url=box.dial.application_url)
        # when the phone launches an app the box lists in DIAL, then one it does not
        state = await gateway.commands.async_send(
            device.id, "app", {"action": "launch", "app": "YouTube", "url": "https://www.youtube.com/tv"}
        )
        assert state["state"] == {"running": "YouTube", "url": "https://www.youtube.com/tv"}
        assert "YouTube" in box.dial.running and "YouTube" not in box.runtimes  # over DIAL, not RDKShell
        await gateway.commands.async_send(device.id, "app", {"action": "stop", "app": "YouTube"})
        assert "YouTube" not in box.dial.running
        await gateway.commands.async_send(device.id, "app", {"action": "launch", "app": "Cobalt"})
        assert "Cobalt" in box.runtimes  # RDKShell
        assert device.states["meta"].value["protocols"] == ["thunder-jsonrpc", "dial"]
    finally:
        await box.async_stop()
