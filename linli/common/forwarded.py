"""Who is really asking: the client's address and scheme, through trusted reverse proxies only.

Behind a reverse proxy (nginx, the carrier's TLS terminator) every request
comes from the proxy's address over plain HTTP. `portal.trusted_proxies` (the
gateway's portal) and `dashboard.trusted_proxies` (the regional dashboard) name
those proxies (addresses or networks, e.g. "127.0.0.1", "10.0.0.0/24"); only a
request whose peer is one of them is read for:

* `X-Forwarded-For`: walked from the right (the entry the nearest proxy
  appended) past every trusted proxy; the first address that is not one is the
  client — whatever a client wrote further left is its own claim and ignored;
* `X-Forwarded-Proto: https`: the client used TLS, so cookies are `Secure`.

From anyone else those headers are ignored: a client cannot choose the address
that audit entries and login throttles see, nor make a plain request look like
TLS. Without trusted proxies, the peer's address is the client's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from aiohttp import web

Network = IPv4Network | IPv6Network


def parse_networks(entries: Iterable[str], where: str = "portal.trusted_proxies") -> list[Network]:
    """The configured proxies as networks; ValueError naming the entry that is not one."""
    networks = []
    for index, entry in enumerate(entries):
        try:
            networks.append(ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"{where}[{index}]: {entry!r} is not an IP address or network "
                "(e.g. '10.0.0.5' or '10.0.0.0/24')"
            ) from None
    return networks


def _address(text: str) -> IPv4Address | IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ip_address(text.split("%")[0])
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(slots=True, frozen=True)
class Client:
    address: str | None
    secure: bool
    via_proxy: bool


class TrustedProxies:
    def __init__(self, entries: Iterable[str] = (), where: str = "portal.trusted_proxies") -> None:
        self.networks = parse_networks(entries, where)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: IPv4Address | IPv6Address | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def client(self, request: web.Request) -> Client:
        """The client's address and whether it used TLS, as far as a trusted proxy vouches for them."""
        peer = request.remote
        secure = request.secure
        if not self.networks or not self.trusts(_address(peer or "")):
            return Client(peer, secure, False)
        address = peer
        hops = [h for header in request.headers.getall("X-Forwarded-For", ()) for h in header.split(",")]
        for hop in reversed(hops):
            parsed = _address(hop)
            if parsed is None:
                break  # a malformed entry: nothing left of it is vouched for
            address = str(parsed)
            if not self.trusts(parsed):
                break
        protos = [
            p.strip().lower() for h in request.headers.getall("X-Forwarded-Proto", ()) for p in h.split(",")
        ]
        if protos and protos[-1]:
            secure = protos[-1] == "https"
        return Client(address, secure, True)


def as_the_client_made_it(proxies: TrustedProxies, request: web.Request) -> web.Request:
    """The request with the client's address and scheme, when a trusted proxy vouches for them."""
    if proxies:
        client = proxies.client(request)
        if client.via_proxy:
            return request.clone(remote=client.address or "?", scheme="https" if client.secure else "http")
    return request
