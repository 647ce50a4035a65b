"""Redis plugins against the real Redis (database 13, unique key prefixes, cleaned up).

The plugins' URL carries a password (`default:<random>@`: accepted by a server whose default
user has no password) so that every test can check it never appears in a result.
`redis_slowlog` needs `slowlog-log-slower-than 0` for a moment: that setting and the slow log
belong to the whole server, so that test runs against a private `redis-server` of its own
(on the shared one, other workers' commands filled the log and pushed its entry out).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from plugins.builtin.redis_checks import NAMES, create_plugins
from plugins.contract import PluginContext, PluginResult, validate_params
from plugins.execution import execute
from plugins.registry import PluginRegistry
from tests.conftest import free_port
from tests.support.cluster import RedisServer
from tests.support.language import worded

DB = 13


@dataclass
class Rd:
    url: str
    password: str
    prefix: str
    client: aioredis.Redis
    results: list[PluginResult]

    async def run(self, name: str, params: dict[str, Any]) -> PluginResult:
        registry = PluginRegistry()
        for plugin in create_plugins({"targets": {"cache": {"url": self.url}}}):
            registry.register(plugin)
        result = await execute(registry, name, PluginContext(run_id="test"), params)
        self.results.append(result)
        return result


@pytest.fixture
async def rd(redis_url: str) -> AsyncIterator[Rd]:
    async for state in _rd(redis_url):
        yield state


@pytest.fixture
async def private_rd(tmp_path: Path) -> AsyncIterator[Rd]:
    """`rd` on a `redis-server` of this test's own: for server-wide settings and logs."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        async for state in _rd(server.url):
            yield state
    finally:
        server.stop()


async def _rd(redis_url: str) -> AsyncIterator[Rd]:
    parts = urlsplit(redis_url)
    password = parts.password or f"Pw-{uuid.uuid4().hex}"
    user = parts.username or "default"
    url = f"redis://{user}:{password}@{parts.hostname}:{parts.port or 6379}/{DB}"
    client = aioredis.Redis.from_url(url, decode_responses=True)
    state = Rd(url, password, f"larkops:test:{uuid.uuid4().hex}:", client, [])
    try:
        yield state
    finally:
        keys = [key async for key in client.scan_iter(match=f"{state.prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    for result in state.results:
        dumped = json.dumps(
            [
                result.summary,
                result.output,
                list(result.evidence),
                dict(result.data),
                dict(result.values),
            ],
            default=str,
        )
        assert password not in dumped


def test_no_targets_no_plugins() -> None:
    assert create_plugins({}) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"targets": {"cache": {"url": "http://:Sekr1t-pw@cache:6379"}}}, "redis:// or rediss://"),
        ({"targets": {"cache": {"url": "redis://:Sekr1t-pw@:6379/0"}}}, "names no host"),
        ({"targets": {"cache": {"url": "redis://:Sekr1t-pw@h:99999/0"}}}, "cannot be parsed"),
        ({"targets": {"cache": {"dsn": "redis://cache"}}}, "unknown keys dsn"),
        ({"targets": {"cache": {"url": "redis://cache"}}, "timeout_s": 0}, "(0, 60]"),
        ({"targets": {"cache": {"url": "redis://cache"}}, "default": "db"}, "not configured"),
        ({"targets": {"cache": {"url": "redis://cache"}}, "sections": []}, "unknown settings"),
    ],
)
def test_bad_settings_are_refused_without_echoing_the_url(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match="redis") as caught:
        create_plugins(settings)
    assert message in str(caught.value)
    assert "Sekr1t-pw" not in str(caught.value)


def test_specs_scope_and_quota_keys() -> None:
    plugins = create_plugins(
        {
            "targets": {
                "cache": {"url": "redis://default:pw@cache1.internal:6379/0"},
                "queue": {"url": "rediss://queue1.internal:6380/2"},
            },
            "default": "cache",
        }
    )
    specs = {p.spec.name: p.spec for p in plugins}
    assert tuple(specs) == NAMES == ("redis_info", "redis_slowlog", "redis_memory")
    assert {(s.category, s.risk) for s in specs.values()} == {("diagnostic", "low")}
    info = validate_params(specs["redis_info"], {})
    assert info.policy_scope() == {"target": "cache", "host": "cache1.internal"}  # type: ignore[attr-defined]
    assert info.policy_target() == "redis:cache:info"  # type: ignore[attr-defined]
    slow = validate_params(specs["redis_slowlog"], {"target": "queue"})
    assert slow.policy_scope() == {"target": "queue", "host": "queue1.internal"}  # type: ignore[attr-defined]
    assert slow.policy_target() == "redis:queue:slowlog"  # type: ignore[attr-defined]


HOSTILE = [
    ("redis_info", {"section": "keyspace; FLUSHALL"}, "section: Input should be 'server'"),
    ("redis_info", {"section": "keyspace\r\nFLUSHALL"}, "section: Input should be 'server'"),
    ("redis_info", {"section": "commandstats"}, "section: Input should be 'server'"),
    ("redis_info", {"section": "ｋｅｙｓｐａｃｅ"}, "section: Input should be 'server'"),
    ("redis_slowlog", {"count": 0}, "count: Input should be greater than or equal to 1"),
    ("redis_slowlog", {"count": 129}, "count: Input should be less than or equal to 128"),
    ("redis_slowlog", {"count": "10; FLUSHALL"}, "count: Input should be a valid integer"),
    ("redis_memory", {"warn_ratio": 0}, "warn_ratio: Input should be greater than 0"),
    ("redis_memory", {"url": "redis://evil:6379"}, "url: Extra inputs are not permitted"),
    ("redis_memory", {"target": "../../etc/passwd"}, "target must be a configured target"),
    ("redis_memory", {"target": "ｃａｃｈｅ"}, "target must be a configured target"),
    ("redis_memory", {"target": "cache\x00"}, "target must be a configured target"),
    ("redis_memory", {"target": "c" * 10_000}, "at most 48 characters"),
    ("redis_memory", {"target": "other"}, "target must be one of: cache"),
]


@pytest.mark.parametrize(("name", "params", "message"), HOSTILE)
async def test_hostile_parameters_are_refused_before_connecting(
    name: str, params: dict[str, Any], message: str
) -> None:
    registry = PluginRegistry()
    dead = f"redis://default:Sekr1t-pw@127.0.0.1:{free_port()}/0"
    for plugin in create_plugins({"targets": {"cache": {"url": dead}}}):
        registry.register(plugin)
    result = await execute(registry, name, PluginContext(), params)
    assert not result.ok
    assert result.summary.startswith("invalid parameters: ")
    assert message in result.summary


async def test_unreachable_target_is_a_readable_failure_without_the_password() -> None:
    registry = PluginRegistry()
    dead = f"redis://default:Sekr1t-pw@127.0.0.1:{free_port()}/0"
    for plugin in create_plugins({"targets": {"cache": {"url": dead}}, "timeout_s": 2}):
        registry.register(plugin)
    result = await execute(registry, "redis_info", PluginContext(), {})
    assert not result.ok
    assert result.summary.startswith("redis_info on cache: ConnectionError")
    assert "Sekr1t-pw" not in json.dumps([result.summary, dict(result.data), result.evidence])
    assert "Sekr1t-pw" not in json.dumps(dict(result.values))
    assert worded(result).startswith("`redis_info` 在 `cache` 上执行失败：")


async def test_info_summary_and_sections_show_real_figures(rd: Rd) -> None:
    await rd.client.set(f"{rd.prefix}k", "v", ex=600)
    server = await rd.client.info()
    result = await rd.run("redis_info", {})
    assert result.ok, result.summary
    assert result.data["version"] == server["redis_version"]
    assert result.data["role"] == server["role"]
    assert result.data["connected_clients"] >= 2  # the test's client and the plugin's
    assert result.data["used_memory_human"].endswith(("K", "M", "G"))
    assert result.data["maxmemory_human"] == (
        server["maxmemory_human"] if server["maxmemory"] else "unlimited"
    )
    assert result.data["rdb_last_bgsave_status"] == server["rdb_last_bgsave_status"]
    assert result.summary.startswith(f"cache: Redis {server['redis_version']} {server['role']}")
    assert worded(result).startswith(f"`cache`：Redis {server['redis_version']}（`")

    keyspace = await rd.run("redis_info", {"section": "keyspace"})
    assert keyspace.ok
    assert keyspace.data["info"][f"db{DB}"]["keys"] >= 1
    assert keyspace.data["info"][f"db{DB}"]["expires"] >= 1
    assert f"db{DB}:keys=" in keyspace.output
    assert worded(keyspace).startswith("`cache`：INFO `keyspace`（")
    clients = await rd.run("redis_info", {"section": "clients"})
    assert clients.data["info"]["connected_clients"] >= 2


async def test_slowlog_shows_a_real_command_with_values_hidden(private_rd: Rd) -> None:
    rd = private_rd
    key = f"{rd.prefix}{'k' * 150}"
    secret = "card-4111111111111111-" + "v" * 200
    old = str((await rd.client.config_get("slowlog-log-slower-than"))["slowlog-log-slower-than"])
    try:
        await rd.client.config_set("slowlog-log-slower-than", 0)
        await rd.client.set(key, secret)
    finally:
        await rd.client.config_set("slowlog-log-slower-than", old)
    assert (await rd.client.config_get("slowlog-log-slower-than")) == {
        "slowlog-log-slower-than": old
    }
    result = await rd.run("redis_slowlog", {"count": 128})
    assert result.ok, result.summary
    mine = [e for e in result.data["entries"] if e["command"][1].startswith(rd.prefix)]
    assert mine, result.data["entries"]
    entry = mine[0]
    assert entry["command"][0] == "SET"
    assert len(entry["command"][1]) == 100  # cut to 100 characters
    assert entry["command"][1].endswith("…")
    assert entry["command"][2] == "… (1 more args)"
    assert entry["duration_us"] >= 0
    assert entry["client_addr"].startswith("127.0.0.1:")
    assert entry["time"].endswith("+00:00")
    assert "card-4111" not in json.dumps([result.summary, result.evidence, dict(result.data)])
    assert "card-4111" not in json.dumps(dict(result.values))
    assert "条，最慢" in worded(result)
    latest = await rd.run("redis_slowlog", {"count": 1})
    assert len(latest.data["entries"]) == 1


async def test_memory_reports_real_usage_keyspace_and_doctor(rd: Rd) -> None:
    await rd.client.set(f"{rd.prefix}big", "x" * 100_000)
    memory = await rd.client.info("memory")
    result = await rd.run("redis_memory", {})
    assert result.data["used_memory"] > 100_000
    assert result.data["maxmemory"] == memory["maxmemory"]
    assert result.data["fragmentation_ratio"] > 0
    assert result.data["used_memory_peak_human"]
    assert result.data["keyspace"][f"db{DB}"]["keys"] >= 1
    assert result.data["doctor"]
    assert result.output == result.data["doctor"]
    if memory["maxmemory"]:
        assert result.data["used_ratio"] == round(memory["used_memory"] / memory["maxmemory"], 3)
    else:
        assert result.ok
        assert result.data["used_ratio"] is None
        assert "(no maxmemory)" in result.summary
        assert "未设置 maxmemory 上限" in worded(result)
    assert result.summary.startswith("cache: ")
    assert worded(result).startswith("`cache`：内存已用 ")
