"""A DIAL client (DIAL 2.x): app status, launch and stop on a box's DIAL server.

The server's base is the `Application-URL` header of its device description;
an app is `<Application-URL>/<name>`. Status is the small XML document of the
DIAL schema, read after the bounded read in gateway/stb/http.py and refused if
it has a DOCTYPE (so no entity can expand; adapters/upnp/soap.py `tree`);
`additionalData` carries app-defined state.

    GET    <app>        → 200 + <service>…<state>running</state>…</service>, 404 unknown app
    POST   <app>        → 201 Created + Location: <run URL> (body: the app's payload)
    DELETE <run URL>    → 200 stopped
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urljoin

import aiohttp

from linli.adapters.upnp.soap import SoapError, tree
from linli.gateway.commands import NotSupportedError
from linli.gateway.stb.errors import BoxAnswerError
from linli.gateway.stb.http import Limits, async_request

DIAL_NS: Final = "urn:dial-multiscreen-org:schemas:dial"
_NS: Final = {"d": DIAL_NS}
SEARCH_TARGET: Final = "urn:dial-multiscreen-org:service:dial:1"


@dataclass(slots=True, kw_only=True)
class DialApp:
    name: str
    state: str  # running | stopped | installable=<url> | hidden
    run_url: str | None = None
    additional: dict[str, str] = field(default_factory=dict)


def parse_status(body: bytes, app_url: str) -> DialApp:
    """A DIAL app status document; BoxAnswerError for anything else."""
    try:
        root = tree(body, "the DIAL status")
    except SoapError as exc:
        raise BoxAnswerError(f"GET {app_url}: DIAL status is not acceptable XML ({exc})") from None
    if root.tag != f"{{{DIAL_NS}}}service":
        raise BoxAnswerError(f"GET {app_url}: not a DIAL status document (root element {root.tag!r})")
    name = (root.findtext("d:name", default="", namespaces=_NS) or "").strip()
    state = (root.findtext("d:state", default="", namespaces=_NS) or "").strip()
    if not name or not state:
        raise BoxAnswerError(f"GET {app_url}: DIAL status without a name or state")
    link = root.find("d:link[@rel='run']", _NS)
    run_url = urljoin(app_url.rstrip("/") + "/", link.get("href", "")) if link is not None else None
    additional: dict[str, str] = {}
    data = root.find("d:additionalData", _NS)
    if data is not None:
        for child in list(data)[:32]:
            tag = child.tag.rpartition("}")[2]
            additional[tag] = (child.text or "")[:4096]
    return DialApp(name=name, state=state, run_url=run_url, additional=additional)


class DialClient:
    """The DIAL REST service of one box."""

    def __init__(self, session: aiohttp.ClientSession, limits: Limits, application_url: str) -> None:
        self._session = session
        self._limits = limits
        self.application_url = application_url.rstrip("/") + "/"

    def app_url(self, app: str) -> str:
        return self.application_url + app

    async def async_status(self, app: str) -> DialApp | None:
        """The app's status; None when the box has no such app (404)."""
        url = self.app_url(app)
        answer = await async_request(self._session, "GET", url, limits=self._limits)
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise BoxAnswerError(f"GET {url}: DIAL server answered HTTP {answer.status}")
        return parse_status(answer.body, url)

    async def async_launch(self, app: str, payload: str | None = None) -> str | None:
        """Start (or hand a new payload to) the app; returns its run URL when the box gives one."""
        url = self.app_url(app)
        answer = await async_request(
            self._session,
            "POST",
            url,
            limits=self._limits,
            data=(payload or "").encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        if answer.status == 404:
            raise NotSupportedError(f"the box has no DIAL app {app!r}")
        if answer.status == 413:
            raise BoxAnswerError(f"POST {url}: the box refused the payload as too large (HTTP 413)")
        if answer.status not in (200, 201):
            raise BoxAnswerError(f"POST {url}: DIAL server answered HTTP {answer.status}")
        location = answer.headers.get("Location") or answer.headers.get("location")
        return urljoin(url, location) if location else None

    async def async_stop(self, app: str, run_url: str | None = None) -> None:
        if run_url is None:
            status = await self.async_status(app)
            if status is None:
                raise NotSupportedError(f"the box has no DIAL app {app!r}")
            if status.state != "running":
                return
            run_url = status.run_url or self.app_url(app) + "/run"
        answer = await async_request(self._session, "DELETE", run_url, limits=self._limits)
        if answer.status == 405:
            raise NotSupportedError(f"the box does not let DIAL app {app!r} be stopped (HTTP 405)")
        if answer.status not in (200, 204, 404):
            raise BoxAnswerError(f"DELETE {run_url}: DIAL server answered HTTP {answer.status}")
