"""`tcp_check` and `dns_resolve`: can this machine reach a port, and what does a name resolve to?

Both are diagnostic, low risk and read-only. Host names must be plain RFC 1123 names (ASCII
letters, digits, hyphens and dots, at most 253 characters); numeric shorthands that the C
resolver would read as an address (`2852039166`, `0x7f.1`, `127.1`) are refused.

`tcp_check` (`host`, `port`, `timeout_s` default 3, at most 30) resolves the host once, goes
only where `plugins.reach` allows (the fetch allow-list, checked on the resolved addresses), and
connects to the resolved addresses (never resolving again), reporting the connect time.
`dns_resolve` (`name`, `family` any|ipv4|ipv6, `timeout_s` default 5) asks the system resolver
and lists the unique addresses and the time taken.

Usage::

    for plugin in create_plugins({}):        # plugins.settings.net (no settings yet)
        registry.register(plugin)
    await execute(registry, "tcp_check", PluginContext(), {"host": "db1", "port": 5432})
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import time
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from plugins.contract import Plugin, PluginContext, PluginResult, PluginSpec
from plugins.reach import Reach, forbidden, refusal_text

MAX_TIMEOUT = 30.0
MAX_ADDRESSES = 32
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_NUMERIC_LABEL = re.compile(r"(?i)[0-9]+|0x[0-9a-f]*")
_GAI_REASONS = {
    socket.EAI_NONAME: "the name does not exist (NXDOMAIN)",
    socket.EAI_AGAIN: "temporary resolver failure (timeout or no answer from DNS)",
    socket.EAI_FAIL: "the DNS server failed permanently",
}
for _code in ("EAI_NODATA", "EAI_ADDRFAMILY"):
    if hasattr(socket, _code):
        _GAI_REASONS[getattr(socket, _code)] = "the name has no addresses of the requested family"


def hostname_problem(name: str) -> str | None:
    """Why `name` is not a plain RFC 1123 host name (None when it is)."""
    if not name.isascii():
        return "host names must be ASCII (use the punycode xn-- form)"
    bare = name[:-1] if name.endswith(".") else name
    if not bare or len(bare) > 253:
        return "host names are 1 to 253 characters"
    labels = bare.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return "host names are dot-separated labels of letters, digits and inner hyphens"
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        return "numeric host names are not allowed (write an IP address in full)"
    return None


def _check_host(value: str) -> str:
    """A full IPv4/IPv6 literal (brackets allowed) or a plain host name; never forbidden."""
    literal = value.removeprefix("[").removesuffix("]") if value.startswith("[") else value
    try:
        ip = ipaddress.ip_address(literal)
    except ValueError:
        problem = hostname_problem(value)
        if problem:
            raise ValueError(problem) from None
        return value
    if forbidden(str(ip)):
        raise ValueError("link-local, multicast and unspecified addresses are not checked")
    return str(ip)


class TcpCheckParams(BaseModel):
    """Parameters of `tcp_check`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    timeout_s: float = Field(default=3.0, gt=0, le=MAX_TIMEOUT)

    @field_validator("host")
    @classmethod
    def _plain_host(cls, value: str) -> str:
        return _check_host(value)

    def policy_scope(self) -> dict[str, str]:
        """The run touches this host."""
        return {"host": self.host}

    def policy_target(self) -> str:
        """Quotas count checks per host and port."""
        return f"tcp_check:{self.host}:{self.port}"


class DnsResolveParams(BaseModel):
    """Parameters of `dns_resolve`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=254)
    family: Literal["any", "ipv4", "ipv6"] = "any"
    timeout_s: float = Field(default=5.0, gt=0, le=MAX_TIMEOUT)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        problem = hostname_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def policy_scope(self) -> dict[str, str]:
        """The run asks about this name."""
        return {"host": self.name}

    def policy_target(self) -> str:
        """Quotas count lookups per name."""
        return f"dns_resolve:{self.name}"


class TcpCheckPlugin:
    """Connects to one TCP port and reports whether (and how fast) it accepts."""

    spec = PluginSpec(
        name="tcp_check",
        category="diagnostic",
        risk="low",
        params=TcpCheckParams,
        timeout=MAX_TIMEOUT + 1,  # its own deadline (timeout_s) fires first
        idempotent=True,
        supports_dry_run=False,
        title_zh="TCP 端口检查",
        title_en="TCP port check",
        description_zh="连接一个 TCP 端口，报告能否连通以及连接耗时",
        description_en="Connects to a TCP port; reports whether it accepts and the connect time",
    )

    def __init__(self, reach: Reach | None = None) -> None:
        self.reach = reach or Reach()

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """Resolve once, refuse what the allow-list does not allow, then connect to each
        address until one accepts."""
        assert isinstance(params, TcpCheckParams)
        target = f"{params.host}:{params.port}"
        started = time.perf_counter()
        try:
            async with asyncio.timeout(params.timeout_s):
                addresses = await _resolve(params.host, params.port, socket.AF_UNSPEC)
        except TimeoutError:
            return _tcp_failure(
                target, started, f"name lookup timed out after {params.timeout_s:g}s"
            )
        except socket.gaierror as exc:
            return _tcp_failure(target, started, f"cannot resolve {params.host}: {_gai(exc)}")
        refused = self.reach.refusal(params.host, addresses, port=params.port)
        if refused:
            why = refusal_text(refused, params.host, addresses)
            return _tcp_failure(target, started, why)
        errors: list[str] = []
        deadline = started + params.timeout_s
        for address in addresses:
            attempt = time.perf_counter()
            left = deadline - attempt
            if left <= 0:
                errors.append(f"{address}: no time left")
                break
            try:
                async with asyncio.timeout(left):
                    _, writer = await asyncio.open_connection(address, params.port)
            except TimeoutError:
                errors.append(f"{address}: timed out after {params.timeout_s:g}s")
                continue
            except OSError as exc:
                errors.append(f"{address}: {_os_error(exc)}")
                continue
            connect_ms = round((time.perf_counter() - attempt) * 1000, 2)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return PluginResult(
                code="tcp_ok",
                values={"target": target, "ms": f"{connect_ms:g}", "address": address},
                ok=True,
                summary=f"{target} accepts connections ({connect_ms:g} ms to {address})",
                data={
                    "host": params.host,
                    "port": params.port,
                    "address": address,
                    "connect_ms": connect_ms,
                    "addresses": addresses,
                },
                evidence=(f"connected to {address} port {params.port} in {connect_ms:g} ms",),
            )
        return _tcp_failure(target, started, "; ".join(errors) or "no addresses", addresses)


class DnsResolvePlugin:
    """Resolves a host name with the system resolver and lists its addresses."""

    spec = PluginSpec(
        name="dns_resolve",
        category="diagnostic",
        risk="low",
        params=DnsResolveParams,
        timeout=MAX_TIMEOUT + 1,
        idempotent=True,
        supports_dry_run=False,
        title_zh="DNS 解析",
        title_en="DNS lookup",
        description_zh="用系统解析器解析一个主机名，列出地址和耗时",
        description_en="Resolves a host name with the system resolver; lists addresses and time",
    )

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """One lookup; NXDOMAIN, timeouts and resolver failures are ok=False."""
        assert isinstance(params, DnsResolveParams)
        family = {"any": socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}
        started = time.perf_counter()
        reason: str | None = None
        addresses: list[str] = []
        try:
            async with asyncio.timeout(params.timeout_s):
                addresses = await _resolve(params.name, None, family[params.family])
        except TimeoutError:
            reason = f"timed out after {params.timeout_s:g}s"
        except socket.gaierror as exc:
            reason = _gai(exc)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
        data: dict[str, Any] = {
            "name": params.name,
            "family": params.family,
            "addresses": addresses,
            "elapsed_ms": elapsed_ms,
        }
        if reason is not None:
            data["error"] = reason
            return PluginResult(
                code="dns_failed",
                values={"name": params.name, "reason": reason},
                ok=False,
                summary=f"{params.name} does not resolve: {reason}",
                data=data,
                evidence=(
                    f"lookup of {params.name} ({params.family}) failed in "
                    f"{elapsed_ms:g} ms: {reason}",
                ),
            )
        shown = ", ".join(addresses[:8]) + (" …" if len(addresses) > 8 else "")
        return PluginResult(
            code="dns_ok",
            values={"name": params.name, "addresses": shown, "ms": f"{elapsed_ms:g}"},
            ok=True,
            summary=f"{params.name} resolves to {shown} ({elapsed_ms:g} ms)",
            data=data,
            evidence=tuple(f"{params.name} → {a}" for a in addresses[:10]),
        )


def create_plugins(settings: Mapping[str, Any], reach: Reach | None = None) -> list[Plugin]:
    """`tcp_check` and `dns_resolve` (settings `plugins.settings.net`: none are known yet);
    `tcp_check` connects only where `reach` allows."""
    if settings:
        raise ValueError(f"net: unknown settings {', '.join(sorted(map(str, settings)))}")
    return [TcpCheckPlugin(reach), DnsResolvePlugin()]


async def _resolve(host: str, port: int | None, family: int) -> list[str]:
    """Unique addresses in resolver order (at most MAX_ADDRESSES)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, family=family, type=socket.SOCK_STREAM
    )
    unique: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in unique:
            unique.append(address)
    return unique[:MAX_ADDRESSES]


def _gai(exc: socket.gaierror) -> str:
    reason = _GAI_REASONS.get(exc.errno) if exc.errno is not None else None
    return reason or exc.strerror or str(exc)


def _os_error(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens on that port)"
    return exc.strerror or type(exc).__name__


def _tcp_failure(
    target: str, started: float, reason: str, addresses: list[str] | None = None
) -> PluginResult:
    elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    return PluginResult(
        code="tcp_failed",
        values={"target": target, "reason": reason},
        ok=False,
        summary=f"{target}: {reason}",
        data={"addresses": addresses or [], "elapsed_ms": elapsed_ms, "error": reason},
        evidence=(f"{target} → no connection after {elapsed_ms:g} ms: {reason}",),
    )
