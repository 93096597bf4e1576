"""The community page's discovery inbox section, rendered by a real headless Chromium."""

from __future__ import annotations

from linli.sim import discovery_payloads as payloads
from tests.brokers import free_port
from tests.discovering import COMPONENTS, discovery_config, inbox_of, item_for, publish_retained
from tests.portal_accounts import add_account
from tests.test_portal_browser import browser_page, sign_in


async def test_page_lists_pending_devices_of_the_discovery_inbox(make_gateway, broker, tmp_path) -> None:
    # given a gateway with its portal, and two new devices announcing themselves
    port = free_port()
    gateway = await make_gateway(
        portal={"enabled": True, "port": port},
        components=[*COMPONENTS, "linli.portal.app:Portal"],
        discovery=discovery_config("mqtt"),
    )
    await publish_retained(
        broker.port,
        payloads.linli_native("fr60-7a21", "FR-60", firmware="2.0.3", name="卫生间跌倒雷达")
        + payloads.tasmota_plug("3C71BF4A1B2C", "tasmota_4A1B2C", "电饭煲插座"),
    )
    inbox = inbox_of(gateway)
    radar = await item_for(inbox, "linli:fr60-7a21")
    plug = await item_for(inbox, "mac:3c71bf4a1b2c")
    password = await add_account(gateway, "wang.manager", "manager")
    # when a property manager signs in and opens the page
    async with browser_page(tmp_path, {"width": 1280, "height": 900}) as page:
        await sign_in(page, f"http://127.0.0.1:{port}", "wang.manager", password, "/")
        await page.wait_for_selector(f'[data-inbox="{plug.id}"]', timeout=10_000)
        dom = await page.content()
    # then the inbox section lists both, with their matched profile or "no profile"
    assert "待确认设备 · Discovery inbox" in dom
    assert "2 待确认 pending" in dom
    assert f'data-inbox="{radar.id}"' in dom and f'data-inbox="{plug.id}"' in dom
    assert "卫生间跌倒雷达" in dom and "linli/fall-radar" in dom
    assert "电饭煲插座" in dom and "无匹配 no profile" in dom
