"""The policy decision table: risk, approvals, fences, quotas — and hints that try to lower risk."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError

from cards.texts import texts
from plugins import AlertContext, PluginRegistry, PluginSpec, PolicyEngine, discover, target_of
from plugins.contract import validate_params

ALERT = AlertContext("Web down", "critical", {"service": "web"}, {}, "web")
SERVICE = "^[a-z0-9][a-z0-9_.-]{0,62}$"
TEMPLATES = {
    "restart_service": {
        "argv": ["/bin/echo", "restart", "{service}"],
        "params": {"service": SERVICE},
    },
    "drain_node": {
        "argv": ["/bin/echo", "drain", "{node}"],
        "params": {"node": SERVICE},
        "risk": "high",
    },
    "failover_db": {"argv": ["/bin/echo", "failover"], "risk": "critical"},
}
URL = {"url": "https://status.example.com/health"}


def restart(service: str = "web") -> dict[str, Any]:
    return {"template": "restart_service", "args": {"service": service}}


@pytest.fixture
def registry() -> PluginRegistry:
    return discover({"settings": {"command": {"templates": TEMPLATES}}})


def english_engine(config: Any, *, registry: PluginRegistry) -> PolicyEngine:
    return PolicyEngine(config, registry=registry, say=texts("en"))


def spec(registry: PluginRegistry, name: str) -> PluginSpec:
    plugin = registry.get(name)
    assert plugin is not None
    return plugin.spec


@pytest.mark.parametrize(
    ("plugin", "params", "hint", "kind", "risk", "approvals"),
    [
        ("http_check", URL, None, "auto", "low", 0),
        ("command", restart(), None, "approve", "medium", 1),
        ("command", {"template": "drain_node", "args": {"node": "n1"}}, None, "approve", "high", 1),
        ("command", {"template": "failover_db"}, None, "approve", "critical", 2),
        # a hint (from a model) raises the risk ...
        ("http_check", URL, "medium", "approve", "medium", 1),
        ("command", restart(), "critical", "approve", "critical", 2),
        # ... but never lowers it, and nonsense is ignored
        ("command", {"template": "failover_db"}, "low", "approve", "critical", 2),
        ("command", restart(), "low", "approve", "medium", 1),
        ("command", restart(), "none", "approve", "medium", 1),
        ("http_check", URL, "harmless", "auto", "low", 0),
    ],
)
def test_decision_table(
    registry: PluginRegistry,
    plugin: str,
    params: dict[str, Any],
    hint: str | None,
    kind: str,
    risk: str,
    approvals: int,
) -> None:
    engine = english_engine({}, registry=registry)
    decision = engine.evaluate(spec(registry, plugin), params, alert=ALERT, risk_hint=hint)
    assert (decision.kind, decision.risk, decision.required_approvals) == (kind, risk, approvals)
    assert decision.reason.endswith(".")


def test_reasons_say_why_the_risk_went_up(registry: PluginRegistry) -> None:
    engine = english_engine({}, registry=registry)
    hinted = engine.evaluate(spec(registry, "http_check"), URL, alert=ALERT, risk_hint="high")
    assert hinted.reason == "Risk high (raised from low by the hint): needs 1 approver."
    templated = engine.evaluate(spec(registry, "command"), {"template": "failover_db"}, alert=ALERT)
    assert (
        templated.reason
        == "Risk critical (raised from medium by its parameters): needs 2 approvers."
    )


def test_auto_max_risk_is_configurable_but_critical_always_needs_people(
    registry: PluginRegistry,
) -> None:
    relaxed = english_engine({"auto_max_risk": "high"}, registry=registry)
    command = spec(registry, "command")
    assert relaxed.evaluate(command, restart(), alert=ALERT).kind == "auto"
    critical = relaxed.evaluate(command, {"template": "failover_db"}, alert=ALERT)
    assert (critical.kind, critical.required_approvals) == ("approve", 2)
    strict = english_engine({"auto_max_risk": "none", "critical_approvals": 3}, registry=registry)
    assert strict.evaluate(spec(registry, "http_check"), URL, alert=ALERT).kind == "approve"
    assert (
        strict.evaluate(command, {"template": "failover_db"}, alert=ALERT).required_approvals == 3
    )
    with pytest.raises(ValidationError, match="critical risk always needs approval"):
        english_engine({"auto_max_risk": "critical"}, registry=registry)
    with pytest.raises(ValidationError):
        english_engine({"critical_approvals": 1}, registry=registry)


def test_unknown_disabled_and_invalid_are_refused(registry: PluginRegistry) -> None:
    engine = english_engine({}, registry=registry)
    command = spec(registry, "command")
    impostor = replace(command, risk="low")  # same name, a spec the registry never saw
    assert engine.evaluate(impostor, restart(), alert=ALERT).reason == (
        "Plugin command is not registered."
    )
    hostile = engine.evaluate(command, restart("web; rm -rf /"), alert=ALERT)
    assert hostile.kind == "refuse"
    assert hostile.reason == "Invalid parameters for command."
    assert hostile.detail == "argument 'service' does not match its allowed pattern"
    assert "rm -rf" not in hostile.reason + hostile.detail
    unlisted = engine.evaluate(command, {"template": "rm_everything"}, alert=ALERT)
    assert unlisted.kind == "refuse"
    assert "not in the allow-list" in unlisted.detail
    registry.disable("command")
    disabled = engine.evaluate(command, restart(), alert=ALERT)
    assert (disabled.kind, disabled.reason) == ("refuse", "Plugin command is disabled.")


def test_fences(registry: PluginRegistry) -> None:
    engine = english_engine(
        {
            "fences": {
                "http_check": {"url": {"prefixes": ["https://status.example.com/"]}},
                "command": {
                    "template": {"one_of": ["restart_service"]},
                    "args.service": {"pattern": "web|api"},
                },
            }
        },
        registry=registry,
    )
    http, command = spec(registry, "http_check"), spec(registry, "command")
    assert engine.evaluate(http, URL, alert=ALERT).kind == "auto"
    for outside in ("https://status.example.com.evil.net/", "http://10.0.0.1/admin"):
        decision = engine.evaluate(http, {"url": outside}, alert=ALERT)
        assert (decision.kind, decision.reason) == (
            "refuse",
            "url is outside the allowed values for http_check.",
        )
    assert engine.evaluate(command, restart("api"), alert=ALERT).kind == "approve"
    assert engine.evaluate(command, restart("db"), alert=ALERT).reason == (
        "args.service is outside the allowed values for command."
    )
    drain = {"template": "drain_node", "args": {"node": "n1"}}
    assert engine.evaluate(command, drain, alert=ALERT).reason == (
        "template is outside the allowed values for command."
    )
    with pytest.raises(ValidationError, match="exactly one of"):
        english_engine({"fences": {"x": {"y": {}}}}, registry=registry)


def test_quota_per_target(registry: PluginRegistry) -> None:
    engine = english_engine({"max_per_target_per_hour": 2}, registry=registry)
    command = spec(registry, "command")
    assert engine.evaluate(command, restart(), alert=ALERT, recent_executions=1).kind == "approve"
    spent = engine.evaluate(command, restart(), alert=ALERT, recent_executions=2)
    assert (spent.kind, spent.reason) == (
        "refuse",
        "Quota used up: 2 runs on this target in the last hour (limit 2).",
    )
    unlimited = english_engine({"max_per_target_per_hour": 0}, registry=registry)
    assert unlimited.evaluate(command, restart(), alert=ALERT, recent_executions=99).kind == (
        "approve"
    )


def test_quota_targets_name_what_is_acted_on(registry: PluginRegistry) -> None:
    command = spec(registry, "command")
    assert target_of(command, validate_params(command, restart())) == (
        "command:restart_service:service=web"
    )
    http = spec(registry, "http_check")
    assert target_of(http, validate_params(http, URL)) == (
        "http_check:https://status.example.com/health"
    )


def test_quota_counts_runs_per_target_not_per_parameter_set(registry: PluginRegistry) -> None:
    """Two runs on one target with different incidental parameters are one target's runs."""
    disk = spec(registry, "host_disk")
    first = target_of(disk, validate_params(disk, {"path": "/"}))
    second = target_of(disk, validate_params(disk, {"path": "/var", "warn_percent": 80}))
    assert first == second
    assert first.startswith("scope:host=")
    http = spec(registry, "http_check")
    slow = {**URL, "timeout_s": 9, "method": "HEAD"}
    assert target_of(http, validate_params(http, URL)) == target_of(
        http, validate_params(http, slow)
    )
