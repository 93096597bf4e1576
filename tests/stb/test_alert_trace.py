"""An alert says what caused what: from the SOS button press to the overlay on the TV.

Every step on the road derives its context from its cause's (gateway/context.py), the alert
engine keeps each id with its parent, and `GET /api/v1/alerts/{id}` lists them as `trace`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from linli.gateway.context import Context
from tests.brokers import settle
from tests.homes import add_home, publish
from tests.portal_accounts import PORTAL_SERVICES, add_account, api_token, portal
from tests.stb.boxes import STB_COMPONENTS, adopt, stb_settings


async def test_the_alert_traces_the_tv_overlay_back_to_the_button_press(make_gateway, broker, boxes) -> None:
    # given a home with an SOS pendant and an adopted TV box, and its resident
    gateway = await make_gateway(components=[*PORTAL_SERVICES, *STB_COMPONENTS], adapters=stb_settings())
    topics = await add_home(gateway, "h1")
    box = await boxes("carrier", "h1-tv")
    tv = await adopt(gateway, "h1", box)
    await add_account(gateway, "li", "resident", "h1")
    # (what the box's `notify` commands were sent in: the command routing's own record)
    sent: list[tuple[str, Any, Context]] = []
    commands = gateway.commands
    send = commands.async_send

    async def recording_send(device_id: str, capability: str, value: Any, **kwargs: Any) -> Any:
        sent.append((device_id, value, kwargs["context"]))
        return await send(device_id, capability, value, **kwargs)

    commands.async_send = recording_send  # type: ignore[method-assign]
    # when the resident presses the pendant
    await publish(broker.port, [(topics["h1-sos"], {"sos": "idle"}), (topics["h1-sos"], {"sos": "pressed"})])
    # then the TV shows the alarm
    await settle(lambda: box.screen.overlay is not None, timeout=10)
    [alert] = gateway.components["alerts"].open_alerts("h1")
    async with portal(gateway) as client:
        token = await api_token(gateway, "li")
        async with asyncio.timeout(5):
            while True:  # until the deliveries' outcomes are recorded, once all channels answered
                response = await client.get(
                    f"/api/v1/alerts/{alert.id}", headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status == 200, await response.text()
                trace = (await response.json())["trace"]
                if any(e["where"].startswith("tv:") for e in trace):
                    break
                await asyncio.sleep(0.05)
    # and its trace leads from the press to the overlay, each link the child of the one before
    press = next(e for e in trace if e["what"] == "cause")
    assert press["where"] == "h1-sos/sos"
    chain = [press]
    for what, where in [
        ("requested", "eldercare"),
        ("raised", "alerts"),
        ("notifying", "step 0: household"),
        ("delivered", f"tv: overlay on {tv.id}"),
    ]:
        link = next(e for e in trace if e["parent_id"] == chain[-1]["context_id"] and e["what"] == what)
        assert link["where"] == where, link
        chain.append(link)
    assert [trace.index(e) for e in chain] == sorted(trace.index(e) for e in chain)  # in order
    assert press["when"] <= chain[1]["when"] <= chain[-1]["when"]
    # and the box's notify command was sent in the overlay's own context
    [(device, command, context)] = [s for s in sent if s[1].get("action") == "show"]
    assert (device, command["alert_id"]) == (tv.id, alert.id)
    assert (str(context.id), str(context.parent)) == (chain[-1]["context_id"], chain[-2]["context_id"])
