"""`prom_query` and `prom_range` against a real Prometheus scraping the bot's own /metrics."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from plugins.builtin.prometheus import create_plugins, evaluation_time
from plugins.contract import PluginContext, PluginResult
from plugins.execution import execute
from plugins.registry import PluginRegistry
from tests.conftest import free_port
from tests.support.language import worded
from tests.support.prometheus import (
    PrometheusServer,
    bearer_proxy,
    bot_metrics_server,
    running_prometheus,
)

TOKEN = "prom-bearer-7f3a9c2e41d8b6"
WRONG = "wrong-bearer-0b5e8d1c9a7f"


@dataclass
class Setup:
    server: PrometheusServer
    registry: PluginRegistry
    settings: dict[str, Any]


@pytest.fixture(scope="module")
def prom() -> Iterator[Setup]:
    with (
        bot_metrics_server() as scrape,
        running_prometheus(scrape, job="larkops") as server,
        bearer_proxy(server.url, TOKEN) as proxy,
    ):
        settings: dict[str, Any] = {
            "targets": {
                "main": {"url": server.url},
                "auth": {"url": proxy + "/", "bearer_token": TOKEN},
                "wrong": {"url": proxy, "bearer_token": WRONG},
                "down": {"url": f"http://127.0.0.1:{free_port()}"},
            },
            "default": "main",
        }
        registry = PluginRegistry()
        for plugin in create_plugins(settings):
            registry.register(plugin)
        yield Setup(server, registry, settings)


async def run(prom: Setup, name: str, params: Mapping[str, Any]) -> PluginResult:
    return await execute(prom.registry, name, PluginContext(), params)


async def test_up_is_one_for_the_bot_job(prom: Setup) -> None:
    result = await run(prom, "prom_query", {"query": 'up{job="larkops"}'})
    assert result.ok, result.summary
    assert result.data["result_type"] == "vector"
    assert result.data["series_count"] == 1
    series = result.data["series"][0]
    assert series["value"] == 1.0
    assert series["labels"]["job"] == "larkops"
    assert series["labels"]["__name__"] == "up"
    assert result.summary.startswith("main: 'up{job=\"larkops\"}' → vector with 1 series; up{")
    assert result.evidence[0].endswith("= 1.0")
    assert worded(result).startswith("`main` 查询 `up{job=")
    assert "：1 条序列（`vector`），第一条 `up{" in worded(result)


async def test_the_bot_metrics_are_scraped(prom: Setup) -> None:
    result = await run(
        prom, "prom_query", {"query": 'larkops_ready{job="larkops"}', "expect_nonempty": True}
    )
    assert result.ok, result.summary
    assert result.data["series"][0]["labels"]["__name__"] == "larkops_ready"


async def test_scalar_and_relative_time(prom: Setup) -> None:
    result = await run(prom, "prom_query", {"query": "1 + 1", "time": "-1m"})
    assert result.ok, result.summary
    assert result.data["result_type"] == "scalar"
    assert result.data["series"][0]["value"] == 2.0
    at = await run(prom, "prom_query", {"query": "vector(3)", "time": "2024-05-01T10:00:00Z"})
    assert at.ok, at.summary
    assert at.data["series"][0]["timestamp"] == 1714557600


async def test_bad_promql_reports_the_parse_error(prom: Setup) -> None:
    result = await run(prom, "prom_query", {"query": "up{"})
    assert not result.ok
    assert result.summary.startswith("main: 'up{' failed: bad_data: ")
    assert "parse error" in result.summary
    assert "parse error" in result.data["error"]
    assert worded(result).startswith("`main` 查询 `up{` 失败：")


async def test_empty_result_fails_only_when_asked(prom: Setup) -> None:
    query = {"query": "no_such_metric_larkops"}
    relaxed = await run(prom, "prom_query", query)
    assert relaxed.ok
    assert relaxed.data["series_count"] == 0
    assert worded(relaxed).endswith("：没有数据")
    strict = await run(prom, "prom_query", {**query, "expect_nonempty": True})
    assert not strict.ok
    assert strict.summary.endswith("(expected a non-empty result)")
    assert worded(strict).endswith("没有数据，但应当有")
    ranged = await run(prom, "prom_range", {**query, "minutes": 5, "expect_nonempty": True})
    assert not ranged.ok
    assert worded(ranged).endswith("（最近 5 分钟）：没有数据，但应当有")


async def test_range_returns_points(prom: Setup) -> None:
    params = {"query": 'up{job="larkops"}', "minutes": 1, "step_s": 1}
    result = await run(prom, "prom_range", params)
    assert result.ok, result.summary
    assert result.data["series_count"] == 1
    series = result.data["series"][0]
    assert series["points"] >= 1
    assert series["min"] == series["max"] == series["last"] == series["avg"] == 1.0
    assert "1 series" in result.summary
    assert f"（最近 1 分钟）：1 条序列、{series['points']} 个点" in worded(result)
    assert result.evidence[0].endswith(f"avg 1.0 ({series['points']} points)")


async def test_range_bounds(prom: Setup) -> None:
    too_many = await run(prom, "prom_range", {"query": "up", "minutes": 1440, "step_s": 1})
    assert too_many.summary == (
        "invalid parameters: 86401 points per series; at most 11000 (raise step_s)"
    )
    too_long = await run(prom, "prom_range", {"query": "up", "minutes": 1441})
    assert too_long.summary.startswith("invalid parameters: minutes:")


async def test_bearer_token_is_sent_and_never_shown(prom: Setup) -> None:
    good = await run(prom, "prom_query", {"target": "auth", "query": "up"})
    assert good.ok, good.summary  # the proxy only forwards with the right token
    assert TOKEN not in repr(good)
    bad = await run(prom, "prom_query", {"target": "wrong", "query": "up"})
    assert not bad.ok
    assert bad.summary == "wrong: 'up' failed: unauthorized: invalid credentials: Bearer ***"
    assert WRONG not in repr(bad)
    ranged = await run(prom, "prom_range", {"target": "wrong", "query": "up", "minutes": 5})
    assert not ranged.ok
    assert WRONG not in repr(ranged)
    assert "Bearer ***" in worded(ranged)


async def test_unreachable_target_is_readable(prom: Setup) -> None:
    result = await run(prom, "prom_query", {"target": "down", "query": "up", "timeout_s": 3})
    assert not result.ok
    url = prom.settings["targets"]["down"]["url"]
    assert result.summary == (
        f"down: 'up' failed: cannot connect to {url}: "
        "connection refused (is Prometheus running there?)"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"query": "up", "target": "other"}, "target must be one of: auth, down, main, wrong"),
        ({"query": "up\n or vector(1)"}, "query: query must not contain control characters"),
        ({"query": "x" * 2001}, "query: String should have at most 2000 characters"),
        ({"query": "up", "time": "yesterday"}, "time: time must be RFC 3339"),
        ({"query": "up", "time": "2024-05-01T10:00:00"}, "time: time needs a UTC offset"),
        ({"query": "up", "url": "http://evil"}, "url: Extra inputs are not permitted"),
        ({"query": "up", "timeout_s": 60}, "timeout_s:"),
    ],
)
async def test_parameters_are_checked(prom: Setup, params: Mapping[str, Any], message: str) -> None:
    result = await run(prom, "prom_query", params)
    assert not result.ok
    assert result.summary.startswith("invalid parameters: ")
    assert message in result.summary


def test_policy_scope_and_settings(prom: Setup) -> None:
    plugin = prom.registry.get("prom_query")
    assert plugin is not None
    assert plugin.spec.risk == "low"
    assert plugin.spec.category == "diagnostic"
    params = plugin.spec.params.model_validate({"query": "up"})
    assert params.policy_scope() == {"target": "main", "url": prom.server.url}  # type: ignore[attr-defined]
    assert params.policy_target() == "prom_query:main"  # type: ignore[attr-defined]
    ranged = prom.registry.get("prom_range")
    assert ranged is not None
    other = ranged.spec.params.model_validate({"query": "up", "target": "auth"})
    assert other.policy_scope()["target"] == "auth"  # type: ignore[attr-defined]
    assert create_plugins({}) == []
    cases: list[tuple[dict[str, Any], str]] = [
        ({"targets": {"a": {"url": "http://u:p@prom:9090"}}}, "must not carry credentials"),
        ({"targets": {"a": {"url": "ftp://prom"}}}, "must be http"),
        ({"targets": {"a": {"url": "http://p", "token": "x"}}}, "unknown keys token"),
        ({"targets": {"a": {"url": "http://p", "ca_bundle": "/nonexistent.pem"}}}, "ca_bundle"),
        ({"targets": {}, "timeout": 3}, "unknown settings timeout"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            create_plugins(bad)


def test_evaluation_time() -> None:
    assert evaluation_time("-5m", now=1000.0) == 700.0
    assert evaluation_time("-2h", now=10000.0) == 2800.0
    assert evaluation_time("2024-05-01T10:00:00+02:00", now=0) == 1714550400.0
    with pytest.raises(ValueError, match="RFC 3339"):
        evaluation_time("-5w", now=0)
