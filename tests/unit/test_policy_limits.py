"""Policy beyond risk: target fences, change windows and freezes, dry-run mode, the global budget of
automatic fixes, and named approver lists — each decision with the reason a person reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from cards.texts import texts
from plugins import AlertContext, PluginRegistry, PluginSpec, PolicyEngine, discover

ALERT = AlertContext("Web down", "critical", {"service": "web"}, {}, "web")
TEMPLATES = {
    "restart_service": {
        "argv": ["/bin/echo", "restart", "{service}"],
        "params": {"service": "^[a-z0-9-]{1,40}$"},
    },
    "drain_node": {
        "argv": ["/bin/echo", "{node}"],
        "params": {"node": "^[a-z0-9-]+$"},
        "risk": "high",
    },
}
# Wednesday 2026-11-25 10:00 and 22:00 in Shanghai; Saturday 2026-11-28 23:30 and Sunday 01:00
WED_MORNING = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
WED_NIGHT = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
SAT_LATE = datetime(2026, 11, 28, 15, 30, tzinfo=UTC)
SUN_EARLY = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)


@pytest.fixture
def registry() -> PluginRegistry:
    return discover({"settings": {"command": {"templates": TEMPLATES}}})


def engine(registry: PluginRegistry, **config: Any) -> PolicyEngine:
    return PolicyEngine(config, registry=registry, say=texts("en"))


def spec(registry: PluginRegistry, name: str) -> PluginSpec:
    plugin = registry.get(name)
    assert plugin is not None
    return plugin.spec


def restart(service: str = "web") -> dict[str, Any]:
    return {"template": "restart_service", "args": {"service": service}}


def test_target_fences_use_what_the_run_touches(registry: PluginRegistry) -> None:
    policy = engine(registry, targets={"hosts": ["*.internal", "127.0.0.1"]})
    tcp = spec(registry, "tcp_check")
    inside = policy.evaluate(tcp, {"host": "db.internal", "port": 5432}, alert=ALERT)
    assert inside.kind == "auto"
    assert inside.scope == {"host": "db.internal"}
    outside = policy.evaluate(tcp, {"host": "evil.example", "port": 22}, alert=ALERT)
    assert (outside.kind, outside.reason) == (
        "refuse",
        "The host evil.example is outside the policy's target fences.",
    )
    # plugins that report no host are not fenced by a host list
    assert policy.evaluate(spec(registry, "command"), restart(), alert=ALERT).kind == "approve"


def test_url_prefix_fence(registry: PluginRegistry) -> None:
    policy = engine(registry, targets={"url_prefixes": ["https://status.example.com/"]})
    http = spec(registry, "http_check")
    ok = {"url": "https://status.example.com/health"}
    assert policy.evaluate(http, ok, alert=ALERT).kind == "auto"
    for outside in ("https://status.example.com.evil.net/", "http://10.0.0.1/admin"):
        decision = policy.evaluate(http, {"url": outside}, alert=ALERT)
        assert decision.kind == "refuse"
        assert decision.reason.startswith("The url ")


@pytest.mark.parametrize(
    ("now", "kind", "code"),
    [
        (WED_MORNING, "approve", "approve"),  # medium risk, inside the window: people decide
        (WED_NIGHT, "refuse", "window"),
        (SAT_LATE, "approve", "approve"),  # the Saturday window crosses midnight...
        (SUN_EARLY, "approve", "approve"),  # ...into Sunday morning
    ],
)
def test_change_windows_refuse_fixes_outside(
    registry: PluginRegistry, now: datetime, kind: str, code: str
) -> None:
    policy = engine(
        registry,
        change_windows=[
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"},
            {"days": ["sat"], "start": "22:00", "end": "02:00"},
        ],
        outside_window="refuse",
    )
    decision = policy.evaluate(spec(registry, "command"), restart(), alert=ALERT, now=now)
    assert (decision.kind, decision.code) == (kind, code)
    if kind == "refuse":
        assert decision.reason.startswith("Outside every change window (mon,tue,wed,thu,fri 09:00")
    # diagnostics are never held back by windows
    tcp = spec(registry, "tcp_check")
    diag = policy.evaluate(tcp, {"host": "db", "port": 5432}, alert=ALERT, now=now)
    assert diag.kind == "auto"


def test_outside_window_low_risk_fix_needs_a_person(registry: PluginRegistry) -> None:
    policy = engine(
        registry,
        auto_max_risk="medium",
        change_windows=[{"days": ["mon"], "start": "09:00", "end": "10:00"}],
    )
    decision = policy.evaluate(spec(registry, "command"), restart(), alert=ALERT, now=WED_NIGHT)
    assert (decision.kind, decision.code, decision.required_approvals) == (
        "approve",
        "window_approve",
        1,
    )
    assert decision.reason == (
        "Outside every change window (mon 09:00–10:00 Asia/Shanghai): needs 1 approver."
    )


def test_freeze_refuses_every_fix(registry: PluginRegistry) -> None:
    policy = engine(
        registry,
        auto_max_risk="high",
        freezes=[
            {
                "start": "2026-11-25T00:00:00+08:00",
                "end": "2026-11-26T00:00:00+08:00",
                "reason": "release day",
            }
        ],
    )
    frozen = policy.evaluate(spec(registry, "command"), restart(), alert=ALERT, now=WED_MORNING)
    assert frozen.kind == "refuse"
    assert "release day" in frozen.reason
    later = policy.evaluate(spec(registry, "command"), restart(), alert=ALERT, now=SAT_LATE)
    assert later.kind == "auto"
    with pytest.raises(ValidationError, match="end after it starts"):
        engine(registry, freezes=[{"start": "2026-11-26T00:00:00Z", "end": "2026-11-25T00:00:00Z"}])


def test_dry_run_mode(registry: PluginRegistry) -> None:
    policy = engine(registry, dry_run=True, auto_max_risk="medium")
    decision = policy.evaluate(spec(registry, "command"), restart(), alert=ALERT)
    assert (decision.kind, decision.dry_run) == ("auto", True)
    assert decision.reason.endswith("Dry-run mode: nothing will be changed.")
    # a diagnostic is not a change: it runs for real
    tcp = policy.evaluate(spec(registry, "tcp_check"), {"host": "db", "port": 1}, alert=ALERT)
    assert tcp.dry_run is False


def test_dry_run_mode_refuses_plugins_that_cannot_pretend(registry: PluginRegistry) -> None:
    class Host(BaseModel):
        model_config = ConfigDict(extra="forbid")
        host: str

    class Reboot:
        spec = PluginSpec(
            name="reboot",
            category="remediation",
            risk="high",
            params=Host,
            timeout=5,
            idempotent=False,
            supports_dry_run=False,
            title_zh="重启",
            title_en="Reboot",
            description_zh="重启主机",
            description_en="Reboots a host",
        )

        async def run(self, ctx: Any, params: Any) -> Any:
            raise AssertionError("never runs")

    registry.register(Reboot())
    policy = engine(registry, dry_run=True)
    decision = policy.evaluate(Reboot.spec, {"host": "db"}, alert=ALERT)
    assert (decision.kind, decision.reason) == (
        "refuse",
        "Dry-run mode is on and reboot cannot do a dry run.",
    )


def test_global_budget_of_automatic_fixes(registry: PluginRegistry) -> None:
    policy = engine(registry, auto_max_risk="medium", max_auto_per_hour=5)
    command = spec(registry, "command")
    assert policy.evaluate(command, restart(), alert=ALERT, recent_auto=4).kind == "auto"
    spent = policy.evaluate(command, restart(), alert=ALERT, recent_auto=5)
    assert (spent.kind, spent.code) == ("approve", "budget_approve")
    assert spent.reason == ("The hourly budget of 5 automatic runs is used up: needs 1 approver.")
    # diagnostics do not spend the fix budget
    tcp = spec(registry, "tcp_check")
    assert policy.evaluate(tcp, {"host": "db", "port": 1}, alert=ALERT, recent_auto=99).kind == (
        "auto"
    )


def test_named_approver_lists(registry: PluginRegistry) -> None:
    policy = engine(
        registry,
        approver_lists={"sre": ["ou_sre1", "ou_sre2"], "dba": ["ou_dba"]},
        approvers_by_risk={"high": "sre"},
        approvers_by_plugin={"pg_vacuum": "dba"},
    )
    drain = {"template": "drain_node", "args": {"node": "n1"}}
    high = policy.evaluate(spec(registry, "command"), drain, alert=ALERT)
    assert (high.approver_list, high.approvers) == ("sre", ("ou_sre1", "ou_sre2"))
    assert high.reason == (
        "Risk high (raised from medium by its parameters): needs 1 approver from the sre list."
    )
    medium = policy.evaluate(spec(registry, "command"), restart(), alert=ALERT)
    assert (medium.approver_list, medium.approvers) == (None, ())
    with pytest.raises(ValidationError, match="'ops' is not in approver_lists"):
        engine(registry, approvers_by_risk={"high": "ops"})
    with pytest.raises(ValidationError, match="is empty"):
        engine(registry, approver_lists={"sre": []}, approvers_by_risk={"high": "sre"})


def test_a_model_cannot_talk_a_fix_down(registry: PluginRegistry) -> None:
    """Whatever a hint says, the decision never gets more permissive than the declared risk."""
    policy = engine(registry, auto_max_risk="low")
    drain = {"template": "drain_node", "args": {"node": "n1"}}
    for hint in ("low", "none", "LOW", "", "safe", "medium"):
        decision = policy.evaluate(spec(registry, "command"), drain, alert=ALERT, risk_hint=hint)
        assert (decision.kind, decision.risk) == ("approve", "high")


def test_reasons_in_chinese(registry: PluginRegistry) -> None:
    policy = PolicyEngine({}, registry=registry, say=texts("zh"))
    decision = policy.evaluate(spec(registry, "command"), restart(), alert=ALERT)
    assert decision.reason == "风险中：需要 1 人审批。"
    quota = policy.evaluate(spec(registry, "command"), restart(), alert=ALERT, recent_executions=3)
    assert quota.reason == "配额已用完：该目标最近一小时已执行 3 次（上限 3）。"
