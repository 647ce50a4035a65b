"""`tcp_check` and `dns_resolve` against real sockets and the system resolver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from plugins.builtin.net import DnsResolveParams, TcpCheckParams, create_plugins
from plugins.contract import PluginContext, PluginResult
from plugins.execution import execute
from plugins.registry import PluginRegistry
from tests.conftest import free_port
from tests.support.language import worded
from tests.support.wait import wait_until


@pytest.fixture
def registry() -> PluginRegistry:
    registry = PluginRegistry()
    for plugin in create_plugins({}):
        registry.register(plugin)
    return registry


async def run(registry: PluginRegistry, name: str, params: Mapping[str, Any]) -> PluginResult:
    return await execute(registry, name, PluginContext(), params)


class Listener:
    """A real TCP server on 127.0.0.1 that records the connections it accepts."""

    def __init__(self) -> None:
        self.peers: list[Any] = []
        self.port = 0

    async def _accept(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append(writer.get_extra_info("peername"))
        writer.close()

    async def accepted(self) -> int:
        """Connections made to it before this call, once every one of them is accepted: ours,
        made last, is accepted after all of them (the accept queue is first in, first out)."""
        _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        ours = writer.get_extra_info("sockname")
        writer.close()
        await wait_until(lambda: ours in self.peers, what="our own connection to be accepted")
        return self.peers.index(ours)


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    state = Listener()
    server = await asyncio.start_server(state._accept, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield state


def test_create_plugins_names_and_settings() -> None:
    assert [p.spec.name for p in create_plugins({})] == ["tcp_check", "dns_resolve"]
    assert all(p.spec.risk == "low" and p.spec.category == "diagnostic" for p in create_plugins({}))
    with pytest.raises(ValueError, match="unknown settings resolver"):
        create_plugins({"resolver": "8.8.8.8"})


async def test_tcp_check_connects_to_a_listening_port(
    registry: PluginRegistry, listener: Listener
) -> None:
    result = await run(registry, "tcp_check", {"host": "127.0.0.1", "port": listener.port})
    assert result.ok, result.summary
    assert f"127.0.0.1:{listener.port} accepts connections" in result.summary
    assert worded(result).startswith(f"`127.0.0.1:{listener.port}` 可以连接")
    assert 0 < result.data["connect_ms"] < 1000
    assert result.data["address"] == "127.0.0.1"
    assert await listener.accepted() == 1


async def test_tcp_check_by_name(registry: PluginRegistry, listener: Listener) -> None:
    result = await run(registry, "tcp_check", {"host": "localhost", "port": listener.port})
    assert result.ok, result.summary
    assert "127.0.0.1" in result.data["addresses"]


async def test_tcp_check_closed_port_is_refused(registry: PluginRegistry) -> None:
    port = free_port()
    result = await run(registry, "tcp_check", {"host": "127.0.0.1", "port": port})
    assert not result.ok
    assert worded(result).startswith(f"`127.0.0.1:{port}` 无法连接：")
    assert result.summary == (
        f"127.0.0.1:{port}: 127.0.0.1: connection refused (nothing listens on that port)"
    )
    assert result.evidence
    assert "no connection" in result.evidence[0]


@pytest.mark.parametrize(
    "host", ["169.254.169.254", "0.0.0.0", "::", "[::]", "::ffff:169.254.169.254", "224.0.0.1"]
)
async def test_tcp_check_refuses_forbidden_addresses_without_connecting(
    registry: PluginRegistry, listener: Listener, host: str
) -> None:
    started = time.perf_counter()
    result = await run(registry, "tcp_check", {"host": host, "port": listener.port})
    assert not result.ok
    assert "link-local, multicast and unspecified addresses are not checked" in result.summary
    assert time.perf_counter() - started < 0.5
    assert await listener.accepted() == 0  # 0.0.0.0 would have reached the 127.0.0.1 listener


@pytest.mark.parametrize("port", [0, 65536, -1])
async def test_tcp_check_port_range(registry: PluginRegistry, port: int) -> None:
    result = await run(registry, "tcp_check", {"host": "127.0.0.1", "port": port})
    assert not result.ok
    assert result.summary.startswith("invalid parameters: port:")


async def test_tcp_check_timeout_is_bounded(registry: PluginRegistry) -> None:
    result = await run(registry, "tcp_check", {"host": "127.0.0.1", "port": 80, "timeout_s": 31})
    assert result.summary.startswith("invalid parameters: timeout_s:")
    result = await run(registry, "tcp_check", {"host": "127.0.0.1", "port": 80, "extra": 1})
    assert result.summary.startswith("invalid parameters: extra:")


def test_tcp_policy_scope_and_target() -> None:
    params = TcpCheckParams(host="db1.internal", port=5432)
    assert params.policy_scope() == {"host": "db1.internal"}
    assert params.policy_target() == "tcp_check:db1.internal:5432"
    assert DnsResolveParams(name="db1.internal").policy_scope() == {"host": "db1.internal"}


async def test_dns_resolve_localhost(registry: PluginRegistry) -> None:
    result = await run(registry, "dns_resolve", {"name": "localhost", "family": "ipv4"})
    assert result.ok, result.summary
    assert result.data["addresses"] == ["127.0.0.1"]
    assert result.data["elapsed_ms"] >= 0
    assert result.summary.startswith("localhost resolves to 127.0.0.1 (")
    assert worded(result).startswith("`localhost` 解析为 `127.0.0.1`")
    assert result.evidence == ("localhost → 127.0.0.1",)


async def test_dns_resolve_unique_addresses(registry: PluginRegistry) -> None:
    result = await run(registry, "dns_resolve", {"name": "localhost"})
    assert result.ok, result.summary
    addresses = result.data["addresses"]
    assert "127.0.0.1" in addresses
    assert len(addresses) == len(set(addresses))


async def test_dns_resolve_nxdomain_is_a_readable_failure(registry: PluginRegistry) -> None:
    result = await run(registry, "dns_resolve", {"name": "nonexistent.invalid"})
    assert not result.ok
    assert result.summary.startswith("nonexistent.invalid does not resolve: ")
    assert worded(result).startswith("`nonexistent.invalid` 无法解析：")
    assert result.data["addresses"] == []
    assert "NXDOMAIN" in result.summary or "resolver" in result.summary


async def test_tcp_check_unresolvable_name(registry: PluginRegistry) -> None:
    result = await run(registry, "tcp_check", {"host": "nonexistent.invalid", "port": 80})
    assert not result.ok
    assert result.summary.startswith("nonexistent.invalid:80: cannot resolve nonexistent.invalid")
    assert "无法连接" in worded(result)


HOSTILE_NAMES = [
    "a;b",
    "../x",
    "x" * 300,
    ("a" * 63 + ".") * 4 + "com",  # 259 characters of valid labels
    "a" * 64 + ".com",
    "gооgle.com",  # Cyrillic o
    "exаmple.org",  # Cyrillic a
    "host\nname",
    "host name",
    "-leading.example",
    "trailing-.example",
    "a..b",
    "",
    "2852039166",  # 169.254.169.254 as one number
    "0x7f.1",
    "127.1",
    "http://example.com",
    "example.com:80",
    "user@example.com",
    "*.example.com",
    "exa_mple.com",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
async def test_hostile_names_are_rejected_by_the_models(
    registry: PluginRegistry, name: str
) -> None:
    dns = await run(registry, "dns_resolve", {"name": name})
    assert not dns.ok
    assert dns.summary.startswith("invalid parameters: name:"), dns.summary
    tcp = await run(registry, "tcp_check", {"host": name, "port": 80})
    assert not tcp.ok
    assert tcp.summary.startswith("invalid parameters: host:"), tcp.summary


async def test_dns_resolve_refuses_ip_literals(registry: PluginRegistry) -> None:
    result = await run(registry, "dns_resolve", {"name": "10.0.0.1"})
    assert result.summary.startswith("invalid parameters: name: numeric host names")
    result = await run(registry, "dns_resolve", {"name": "localhost", "family": "ipx"})
    assert result.summary.startswith("invalid parameters: family:")


def test_valid_names_pass() -> None:
    long_ok = ".".join(["a" * 63] * 3 + ["b" * 61])  # 253 characters
    assert len(long_ok) == 253
    for name in ["localhost", "db-1.prod.example.com", "xn--bcher-kva.example", long_ok, "a.b."]:
        assert DnsResolveParams(name=name).name == name
    assert TcpCheckParams(host="[::1]", port=1).host == "::1"
