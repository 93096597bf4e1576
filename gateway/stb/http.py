"""HTTP to a box, bounded in size and time.

A box is a device on a resident's network, not a trusted server: an answer is
read at most `max_bytes` and must be complete within `timeout_s`, or the
request fails with a message saying which. The same limits apply to the UPnP
descriptions and SOAP answers async-upnp-client fetches, through
`BoundedUpnpRequester`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import aiohttp
from async_upnp_client.client import UpnpRequester
from async_upnp_client.const import HttpRequest, HttpResponse
from async_upnp_client.utils import CaseInsensitiveDict

from linli.gateway.stb.errors import BoxAnswerError, BoxUnreachableError

DEFAULT_TIMEOUT_S: Final = 3.0
DEFAULT_MAX_BYTES: Final = 256 * 1024
_CHUNK: Final = 64 * 1024


@dataclass(slots=True, kw_only=True)
class Limits:
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_bytes: int = DEFAULT_MAX_BYTES


@dataclass(slots=True, kw_only=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


async def async_request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    limits: Limits,
    data: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """One request, its whole answer read within the limits.

    BoxUnreachableError when nothing answers in time (no connection, no
    headers); BoxAnswerError when the box starts answering but the answer is too
    big or never completes.
    """
    headers_seen = False
    try:
        async with asyncio.timeout(limits.timeout_s):
            async with session.request(
                method, url, data=data, headers=headers, allow_redirects=False
            ) as response:
                headers_seen = True
                length = response.content_length
                if length is not None and length > limits.max_bytes:
                    raise BoxAnswerError(
                        f"{method} {url}: the box announced a {length}-byte answer, over the "
                        f"{limits.max_bytes}-byte limit; answer not read"
                    )
                body = bytearray()
                async for chunk in response.content.iter_chunked(_CHUNK):
                    body += chunk
                    if len(body) > limits.max_bytes:
                        raise BoxAnswerError(
                            f"{method} {url}: answer over the {limits.max_bytes}-byte limit; stopped reading"
                        )
                return Answer(status=response.status, headers=dict(response.headers), body=bytes(body))
    except TimeoutError:
        if headers_seen:
            raise BoxAnswerError(
                f"{method} {url}: the box began answering but did not finish within "
                f"{limits.timeout_s:g} s; request abandoned"
            ) from None
        raise BoxUnreachableError(f"{method} {url}: no answer within {limits.timeout_s:g} s") from None
    except aiohttp.ClientConnectorError as exc:
        raise BoxUnreachableError(f"{method} {url}: cannot connect ({exc.os_error or exc})") from None
    except aiohttp.ServerDisconnectedError:
        if headers_seen:
            raise BoxAnswerError(f"{method} {url}: the box hung up mid-answer") from None
        raise BoxUnreachableError(f"{method} {url}: the box closed the connection") from None
    except aiohttp.ClientPayloadError as exc:
        raise BoxAnswerError(f"{method} {url}: broken answer ({exc})") from None
    except aiohttp.ClientError as exc:
        raise BoxUnreachableError(f"{method} {url}: {type(exc).__name__}: {exc}") from None


class BoundedUpnpRequester(UpnpRequester):
    """async-upnp-client's HTTP, through `async_request` and its limits."""

    def __init__(self, session: aiohttp.ClientSession, limits: Limits) -> None:
        self._session = session
        self._limits = limits
        self.last_headers: dict[str, Mapping[str, str]] = {}

    async def async_http_request(self, http_request: HttpRequest) -> HttpResponse:
        answer = await async_request(
            self._session,
            http_request.method,
            http_request.url,
            limits=self._limits,
            data=http_request.body.encode() if http_request.body is not None else None,
            headers=dict(http_request.headers),
        )
        if http_request.method == "GET":
            # DIAL's Application-URL arrives as a header of the description's answer.
            self.last_headers[http_request.url] = answer.headers
        try:
            text = answer.body.decode("utf-8")
        except UnicodeDecodeError:
            raise BoxAnswerError(f"{http_request.method} {http_request.url}: answer is not UTF-8") from None
        # The library looks headers up in lower case (GENA's SID and TIMEOUT).
        return HttpResponse(answer.status, CaseInsensitiveDict(answer.headers), text)
