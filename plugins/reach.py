"""Where plugins may connect when the address comes from an alert, a chat or a model: the one
place that decides it (no server-side request forgery by default).

The allow-list (`LARKOPS_FETCH_ALLOW`, or `fetch_allow:` in the YAML) is a list of entries:

- `status.example.com`: that host, any port; `*.example.com`: its subdomains;
- `grafana.internal:3000`: that host on that port;
- `https://api.example.com/health`: URLs starting with that prefix (scheme and host compared
  without case, the path as written);
- `10.1.0.0/16`, `192.0.2.7`: addresses (the URL's host or what its name resolves to).

Once Lark credentials are set (a real deployment), a plugin reaches only what the list allows;
with no list it reaches nothing and start-up says so. Without credentials (the local sandbox)
and with no list, everything is reached except link-local (the cloud metadata service at
169.254.169.254), multicast and unspecified addresses. An address that is private, loopback,
link-local or a metadata address is refused unless an entry names it (its host, its URL or its
address). The check runs after DNS resolution: every address a name resolves to must pass.

Usage::

    reach = Reach.parse(["*.example.com", "10.0.0.0/8"], enforced=True)
    reach.refusal("https://a.example.com/x", ["93.184.216.34"])   # None: allowed
    reach.refusal("http://169.254.169.254/", ["169.254.169.254"]) # "not_allowed"
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
HOST = re.compile(rf"{LABEL}(\.{LABEL})*")  # a host name of the allow-list, lower case
# why a connection is refused (cards word it; see `Reach.refusal`)
Refusal = Literal["not_allowed", "no_allow_list", "private_address", "forbidden_address"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Rule:
    """One entry of the allow-list."""

    text: str
    host: str = ""  # exact host, or ".example.com" for subdomains
    port: int | None = None
    prefix: str = ""  # URL prefix (lower-cased scheme and host)
    network: Network | None = None

    def admits(self, scheme: str, host: str, port: int, url: str, ips: Sequence[IPAddress]) -> bool:
        if self.network is not None:
            return _in(host, self.network) or (bool(ips) and all(ip in self.network for ip in ips))
        if self.prefix:
            return bool(url) and _normal_url(url).startswith(self.prefix)
        if self.host.startswith("."):
            return host.endswith(self.host) and host != self.host[1:]
        return host == self.host and (self.port is None or self.port == port)


@dataclass(frozen=True)
class Reach:
    rules: tuple[Rule, ...] = ()
    enforced: bool = False  # Lark credentials are set: only what the list allows

    @classmethod
    def parse(cls, entries: Iterable[str], *, enforced: bool) -> Reach:
        """The allow-list from its entries; ValueError names a malformed one."""
        return cls(tuple(_rule(entry.strip()) for entry in entries if entry.strip()), enforced)

    @property
    def open(self) -> bool:
        """No allow-list and not enforced: the sandbox's local default."""
        return not self.rules and not self.enforced

    def refusal(
        self, target: str, addresses: Sequence[str], *, port: int | None = None
    ) -> Refusal | None:
        """Why connecting to `target` (a URL, or a host with `port`) at `addresses` (what its
        name resolved to) is refused; None when it is allowed."""
        scheme, host, found_port, url = _parts(target, port)
        ips = [ip for ip in (_ip(a) for a in addresses) if ip is not None]
        if _ip(host) is not None:
            ips.append(_ip(host))  # type: ignore[arg-type]
        if any(_forbidden(ip) for ip in ips) and not self._names(host, url, ips):
            return "forbidden_address"
        if self.open:
            return None
        if not self.rules:
            return "no_allow_list"
        if not any(rule.admits(scheme, host, found_port, url, ips) for rule in self.rules):
            return "not_allowed"
        if any(_private(ip) for ip in ips) and not self._names(host, url, ips):
            return "private_address"
        return None

    def describe(self) -> tuple[str, ...]:
        """The entries as configured (for /policy)."""
        return tuple(rule.text for rule in self.rules)

    def _names(self, host: str, url: str, ips: Sequence[IPAddress]) -> bool:
        """An entry names this host, URL or address itself (a wildcard does not)."""
        for rule in self.rules:
            if rule.network is not None and ips and all(ip in rule.network for ip in ips):
                return True
            if rule.prefix and url and _normal_url(url).startswith(rule.prefix):
                return True
            if rule.host and rule.host == host:
                return True
        return False


async def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (empty when it does not resolve: the connection itself
    reports that)."""
    if _ip(host) is not None:
        return [host]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port)
    except OSError:
        return []
    return sorted({str(info[4][0]) for info in infos})


def refusal_text(refusal: Refusal, host: str, addresses: Sequence[str]) -> str:
    """The plugin result's summary of a refusal (plugin results are English, like their
    other summaries; the card shows them as the plugin's evidence)."""
    resolved = f" ({', '.join(addresses[:3])})" if addresses else ""
    reasons: dict[Refusal, str] = {
        "not_allowed": f"{host} is not in the fetch allow-list (LARKOPS_FETCH_ALLOW)",
        "no_allow_list": "no fetch allow-list is configured (LARKOPS_FETCH_ALLOW)",
        "private_address": f"{host} resolves to a private address{resolved} no entry names",
        "forbidden_address": f"{host} resolves to a link-local or metadata address{resolved}",
    }
    return f"refused: {reasons[refusal]}"


def forbidden(address: str) -> bool:
    """`address` is a literal link-local (cloud metadata), multicast or unspecified address:
    parameters naming one are refused outright."""
    ip = _ip(address)
    return ip is not None and _forbidden(ip)


def _rule(entry: str) -> Rule:
    if "://" in entry:
        parts = urlsplit(entry)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"fetch allow-list: {entry[:80]!r} is not an http(s) URL prefix")
        return Rule(entry, prefix=_normal_url(entry))
    if "/" in entry:
        try:
            return Rule(entry, network=ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"fetch allow-list: {entry[:80]!r} is not a network") from None
    host, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
    if port and not port.isdigit():
        raise ValueError(f"fetch allow-list: {entry[:80]!r} has a bad port")
    if _ip(entry) is not None:
        network = ipaddress.ip_network(entry)
        return Rule(entry, network=network)
    name = host.lower()
    if name.startswith("*."):
        name = name[1:]
    if not HOST.fullmatch(name.removeprefix(".")):
        raise ValueError(f"fetch allow-list: {entry[:80]!r} is not a host")
    return Rule(entry, host=name, port=int(port) if port else None)


def _parts(target: str, port: int | None) -> tuple[str, str, int, str]:
    """(scheme, lower-case host, port, url) of a URL, or of a bare host with `port`."""
    if "://" in target:
        parts = urlsplit(target)
        scheme = parts.scheme.lower()
        default = 443 if scheme == "https" else 80
        try:
            found = parts.port or default
        except ValueError:
            found = default
        return scheme, (parts.hostname or "").lower(), found, target
    return "", target.strip("[]").lower(), port or 0, ""


def _normal_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.lower()
    return f"{parts.scheme.lower()}://{netloc}{parts.path}" + (
        f"?{parts.query}" if parts.query else ""
    )


def _ip(text: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _in(host: str, network: Network) -> bool:
    ip = _ip(host)
    return ip is not None and ip in network


def _forbidden(ip: IPAddress) -> bool:
    """Never without an entry naming it: link-local (cloud metadata), multicast, unspecified."""
    return ip.is_link_local or ip.is_multicast or ip.is_unspecified


def _private(ip: IPAddress) -> bool:
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved
