"""No server-side request forgery by default: with Lark credentials set, `http_check` and
`tcp_check` reach only what `LARKOPS_FETCH_ALLOW` lists, checked on the addresses a name
resolves to; private, loopback and metadata addresses need an entry naming them; the sandbox
keeps its local default. Real servers on 127.0.0.1 stand in for an internal service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.config import load_settings
from bot.incidents.advisor import build_toolkit
from plugins import PluginContext
from plugins.execution import execute
from plugins.reach import Reach
from plugins.registry import PluginRegistry, discover
from tests.support.health import health_service

PUBLIC = ["93.184.216.34"]


def test_entries_name_hosts_ports_prefixes_and_networks() -> None:
    reach = Reach.parse(
        [
            "status.example.com",
            "*.corp.example",
            "grafana.internal:3000",
            "https://api.example.com/health",
            "10.1.0.0/16",
        ],
        enforced=True,
    )
    allowed = [
        ("https://status.example.com/x", PUBLIC),
        ("http://a.b.corp.example/", PUBLIC),
        ("http://grafana.internal:3000/api", ["10.9.9.9"]),  # named: its private address too
        ("https://API.example.com/health/deep", PUBLIC),
        ("http://10.1.2.3:8080/", []),
        ("http://svc.local/", ["10.1.7.7"]),  # resolves inside a listed network
    ]
    for url, addresses in allowed:
        assert reach.refusal(url, addresses) is None, url
    refused = [
        ("https://evil.example.org/", PUBLIC, "not_allowed"),
        ("http://corp.example/", PUBLIC, "not_allowed"),  # *.x is its subdomains only
        ("http://grafana.internal:3001/", ["10.9.9.9"], "not_allowed"),
        ("https://api.example.com/other", PUBLIC, "not_allowed"),
        ("http://a.corp.example/", ["127.0.0.1"], "private_address"),  # a wildcard names none
        ("http://a.corp.example/", ["169.254.169.254"], "forbidden_address"),
        ("http://169.254.169.254/latest/meta-data/", [], "forbidden_address"),
    ]
    for url, addresses, why in refused:
        assert reach.refusal(url, addresses) == why, url
    assert reach.refusal("db1.corp.example", ["10.1.0.5"], port=5432) is None
    assert reach.refusal("db1.corp.example", ["192.168.0.5"], port=5432) == "private_address"


def test_without_an_allow_list_lark_deployments_reach_nothing_and_the_sandbox_most() -> None:
    real = Reach.parse([], enforced=True)
    assert real.refusal("https://status.example.com/", PUBLIC) == "no_allow_list"
    sandbox = Reach.parse([], enforced=False)
    assert sandbox.refusal("http://127.0.0.1:8080/health", ["127.0.0.1"]) is None
    assert sandbox.refusal("http://meta/", ["169.254.169.254"]) == "forbidden_address"
    metadata = Reach.parse(["169.254.169.254"], enforced=True)  # named: allowed on purpose
    assert metadata.refusal("http://169.254.169.254/", ["169.254.169.254"]) is None


@pytest.mark.parametrize(
    "entry", ["ftp://files.example.com/", "10.0.0.0/33", "host:port", "a b", "*."]
)
def test_a_malformed_entry_is_a_configuration_error(entry: str) -> None:
    with pytest.raises(ValueError, match="fetch allow-list"):
        Reach.parse([entry], enforced=True)


def registry(allow: list[str], *, lark: bool) -> PluginRegistry:
    env = {"fetch_allow": allow}
    if lark:
        env |= {"lark_app_id": "cli_x", "lark_app_secret": "s"}
    return build_toolkit(load_settings(**env)).registry


@pytest.fixture
async def health(tmp_path: Path) -> AsyncIterator[str]:
    async with health_service(tmp_path / "healthy") as url:
        yield url


async def test_http_check_goes_only_where_the_list_allows(health: str) -> None:
    port = httpx.URL(health).port
    url = f"http://localhost:{port}/health"
    ctx = PluginContext()
    refused = await execute(registry([], lark=True), "http_check", ctx, {"url": url})
    assert not refused.ok
    assert "LARKOPS_FETCH_ALLOW" in refused.summary
    assert "status" not in refused.data or refused.data["status"] is None
    # a wildcard does not name localhost's loopback address
    elsewhere = await execute(
        registry(["*.example.com"], lark=True), "http_check", ctx, {"url": url}
    )
    assert "not in the fetch allow-list" in elsewhere.summary
    listed = await execute(
        registry([f"localhost:{port}"], lark=True), "http_check", ctx, {"url": url}
    )
    assert listed.data["status"] is not None  # it was fetched
    sandbox = await execute(registry([], lark=False), "http_check", ctx, {"url": url})
    assert sandbox.data["status"] is not None


async def test_tcp_check_goes_only_where_the_list_allows() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        params = {"host": "localhost", "port": port}
        ctx = PluginContext()
        refused = await execute(registry(["10.0.0.0/8"], lark=True), "tcp_check", ctx, params)
        assert not refused.ok
        assert "refused" in refused.summary
        listed = await execute(registry(["127.0.0.0/8"], lark=True), "tcp_check", ctx, params)
        assert listed.ok, listed.summary
    finally:
        server.close()
        await server.wait_closed()


def test_discover_without_a_reach_keeps_the_local_default() -> None:
    assert discover({}).reach.open
