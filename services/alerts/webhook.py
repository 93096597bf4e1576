"""Provider webhooks: an alert POSTed to a care centre's or provider's system.

Each request is signed: `X-Linli-Signature: sha256=<hex HMAC-SHA256 of
"<X-Linli-Timestamp>.<body>" with the webhook's secret>`, so the receiver can
check it came from this gateway and is fresh. `Idempotency-Key` is the same for
every retry of the same alert state to the same audience, so a receiver that
saw it already can answer 2xx and do nothing. `X-Linli-Context` is the
delivery's context id (a child of the escalation step's), which the alert's
trace in the API lists, so a provider's ticket can name what caused it. The
engine retries failures with backoff and records every attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import aiohttp
import orjson

from linli.gateway.context import Context
from linli.gateway.notify import Audience, Delivery, Outcome

MAX_RESPONSE_BYTES = 64 * 1024


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookChannel:
    """One provider endpoint, for the audiences it serves."""

    def __init__(
        self,
        *,
        webhook_id: str,
        url: str,
        secret: str,
        audiences: list[str],
        session: aiohttp.ClientSession,
        households: list[str] | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self.name = f"webhook:{webhook_id}"
        self.url = url
        self._secret = secret
        self.audiences = {Audience(a) for a in audiences}
        self.households = set(households) if households else None
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    def __repr__(self) -> str:  # never the secret
        return f"WebhookChannel({self.name} → {self.url})"

    async def async_deliver(self, alert: dict[str, Any], audience: Audience, *, context: Context) -> Delivery:
        if audience not in self.audiences:
            return Delivery(outcome=Outcome.NO_RECIPIENT)
        if self.households is not None and alert["household_id"] not in self.households:
            return Delivery(outcome=Outcome.NO_RECIPIENT)
        body = orjson.dumps({"alert": alert, "audience": audience.value})
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": f"{alert['id']}:{alert['step']}:{audience.value}",
            "X-Linli-Alert-Id": str(alert["id"]),
            "X-Linli-Context": str(context.id),
            "X-Linli-Timestamp": stamp,
            "X-Linli-Signature": sign(self._secret, stamp, body),
        }
        try:
            async with self._session.post(
                self.url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as response:
                await response.content.read(MAX_RESPONSE_BYTES)
                if 200 <= response.status < 300:
                    return Delivery(outcome=Outcome.DELIVERED, detail=f"{self.url} {response.status}")
                return Delivery(outcome=Outcome.FAILED, detail=f"{self.url} answered {response.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Delivery(outcome=Outcome.FAILED, detail=f"{self.url}: {type(exc).__name__} {exc}")
