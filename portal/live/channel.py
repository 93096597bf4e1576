"""The `ws` delivery channel: an escalation step's audience, on their open phones, tablets, consoles.

The only road an alert takes to a WebSocket. When a step starts, its audience gets
`{"type": "alert", "audience", "step", "context_id", "alert"}`; each later change
(repeated, escalated, acknowledged, resolved, cancelled) reaches the audiences a
step has already reached as `{"type": "alert_changed", "transition", "context_id",
"alert"}`. One message per screen per change; `context_id` is the delivery's
context, listed in the alert's trace (`GET /api/v1/alerts/{id}`).

`DELIVERED` once at least one of the audience's connections has the alert
written to its socket; `NO_RECIPIENT` when none of them is connected (the
engine then relies on the other channels and the next step). A slow client
never holds the delivery back: the first connection that has it is enough.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from linli.gateway.context import Context
from linli.gateway.notify import Audience, Delivery, Outcome
from linli.portal.api.shapes import alert_for
from linli.portal.live.hub import Connection, Hub

WAIT_S: Final = 2.0


class WsChannel:
    name = "ws"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.delivered = 0

    def _audience(self, alert: dict[str, Any], audience: Audience) -> list[Connection]:
        household = alert["household_id"]
        if audience is Audience.HOUSEHOLD:
            return self.hub.household_members(household)
        if audience is Audience.CARERS:
            return self.hub.household_carers(household)
        if audience is Audience.DUTY_DESK:
            return self.hub.duty_desk()
        return []

    async def async_deliver(self, alert: dict[str, Any], audience: Audience, *, context: Context) -> Delivery:
        return await self.deliver_now(alert, audience, context=context)

    def deliver_now(
        self, alert: dict[str, Any], audience: Audience, *, context: Context
    ) -> asyncio.Future[Delivery]:
        """Write the alert to the audience's sockets now; the future says whether any took it."""
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[Delivery] = loop.create_future()
        targets = self._audience(alert, audience)
        if not targets:
            outcome.set_result(
                Delivery(outcome=Outcome.NO_RECIPIENT, detail=f"no {audience.value} connected")
            )
            return outcome
        framed = self.hub.frames_per_reader(  # each reader's own view of it, as the REST API's
            targets,
            lambda p: {
                "type": "alert",
                "audience": audience.value,
                "step": alert.get("step"),
                "context_id": str(context.id),
                "alert": alert_for(alert, p, self.hub.gateway),
            },
        )
        waiters: list[asyncio.Future[bool]] = []
        for connection, data in framed:
            waiter: asyncio.Future[bool] = loop.create_future()
            if connection.offer(data, waiter):
                waiters.append(waiter)
        untaken = Delivery(outcome=Outcome.NO_RECIPIENT, detail=f"no {audience.value} connection took it")

        def settle(_: object = None) -> None:
            if outcome.done():
                return
            if any(w.done() and w.result() for w in waiters):
                # the first connection that has it is enough: a slow client never holds it back
                self.delivered += 1
                timer.cancel()
                detail = f"{audience.value}: {len(waiters)} screen(s)"
                outcome.set_result(Delivery(outcome=Outcome.DELIVERED, detail=detail))
            elif all(w.done() for w in waiters):
                timer.cancel()
                outcome.set_result(untaken)

        timer = loop.call_later(WAIT_S, lambda: outcome.done() or outcome.set_result(untaken))
        for waiter in waiters:
            waiter.add_done_callback(settle)
        settle()
        return outcome

    async def async_follow(
        self, alert: dict[str, Any], audience: Audience, transition: str, *, context: Context
    ) -> None:
        """A change of an alert this audience was shown: one message to each of its screens."""
        targets = self._audience(alert, audience)
        if targets:
            self.hub.send_per_reader(
                targets,
                lambda p: {
                    "type": "alert_changed",
                    "transition": transition,
                    "context_id": str(context.id),
                    "alert": alert_for(alert, p, self.hub.gateway),
                },
            )
