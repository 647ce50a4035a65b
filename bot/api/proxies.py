"""Who is calling and over what, behind reverse proxies: the one place `X-Forwarded-For`,
`X-Real-IP` and `X-Forwarded-Proto` are read (the REST API's per-address limits, the console's
Secure cookies and its sign-in address).

The headers are believed only when the connecting peer is a trusted proxy
(`LARKOPS_TRUSTED_PROXIES`, addresses or networks; empty: none). Then the client is the
right-most `X-Forwarded-For` hop that is not itself a trusted proxy (every hop to its right was
added by a proxy we trust; the ones to its left are whatever the client sent), else
`X-Real-IP`; and the scheme is the proxy's `X-Forwarded-Proto`. From anyone else the headers
change nothing: the peer is the client, the connection's scheme the scheme.

    proxies = Proxies.of(("10.0.0.0/8",))
    proxies.client(request)    # "203.0.113.7" behind 10.0.0.5; the peer itself otherwise
    proxies.scheme(request)    # "https" when 10.0.0.5 says so
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN = "unknown"


def _address(value: str) -> Address | None:
    """The IP address of a header's hop (`1.2.3.4`, `1.2.3.4:5678`, `[::1]:80`, `::1`)."""
    text = value.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class Proxies:
    def __init__(self, trusted: Sequence[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in trusted
        )

    @staticmethod
    @functools.lru_cache(maxsize=8)
    def of(trusted: tuple[str, ...]) -> Proxies:
        """The rule for this list (made once per list: requests only look it up)."""
        return Proxies(trusted)

    def trusts(self, host: str | Address | None) -> bool:
        found = _address(host) if isinstance(host, str) else host
        return found is not None and any(found in network for network in self.networks)

    def _from_proxy(self, connection: HTTPConnection) -> bool:
        peer = connection.client.host if connection.client else None
        return bool(self.networks) and self.trusts(peer)

    def client(self, connection: HTTPConnection) -> str:
        """The client's address, as far as trusted proxies vouch for it."""
        peer = connection.client.host if connection.client else UNKNOWN
        if not self._from_proxy(connection):
            return peer
        hops = [
            hop.strip()
            for header in connection.headers.getlist("x-forwarded-for")
            for hop in header.split(",")
            if hop.strip()
        ]
        for hop in reversed(hops):
            found = _address(hop)
            if found is None:  # not an address: what the last trusted proxy was told
                return hop[:64]
            if not self.trusts(found):
                return str(found)
        if hops:  # every hop is a trusted proxy: the first is the client
            found = _address(hops[0])
            return str(found) if found is not None else hops[0][:64]
        real = _address(connection.headers.get("x-real-ip", ""))
        return str(real) if real is not None else peer

    def scheme(self, connection: HTTPConnection) -> str:
        """`https` or `http` as the client reached the proxy (the connection's own otherwise)."""
        own = connection.url.scheme
        if not self._from_proxy(connection):
            return own
        said = connection.headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
        return said if said in ("http", "https") else own
