"""The policy engine: auto-run, ask for approval, or refuse. It — not a model — decides.

Effective risk = the highest of the plugin's declared risk, the risk its parameters report
(`policy_risk()`, e.g. a `command` template's) and the hint (from a model or a runbook). A hint
can raise the risk, never lower it; an unknown hint is ignored.

Decision, in order:
1. refuse: the plugin is unknown or disabled, or its parameters are invalid;
2. refuse: a parameter is outside its fence, or what the run touches (`policy_scope()`) is
   outside the target fences (`plugins.fences`);
3. refuse: the per-target quota is used up (`recent_executions` on the same target in the last
   hour, counted by the caller; `target_of` names the target);
4. remediation only: refuse during a freeze; outside every change window refuse or ask for
   approval (`outside_window`, see `plugins.windows`); in dry-run mode refuse a plugin that
   cannot dry-run (the others run as dry runs);
5. auto when the risk is at most `auto_max_risk` (critical never is) and, for remediation, the
   global budget of automatic runs (`max_auto_per_hour`, `recent_auto` counted by the caller)
   is not used up; otherwise approve, by `approvals` people (`critical_approvals`, at least 2,
   for critical risk) from the list named for the plugin or the risk (else the chat's usual
   approvers).

Configuration (YAML `policy:`)::

    policy:
      auto_max_risk: low             # low | medium | high | none
      approvals: 1
      critical_approvals: 2
      approver_lists: {dba: [ou_dba1, ou_dba2], sre: [ou_sre1, ou_sre2, ou_sre3]}
      approvers_by_risk: {high: sre, critical: sre}
      approvers_by_plugin: {pg_vacuum: dba, pg_cancel_backend: dba}
      max_per_target_per_hour: 3     # 0: no quota
      max_auto_per_hour: 20          # automatic remediation runs per hour, all targets; 0: none
      dry_run: false                 # remediation only ever runs as a dry run
      targets: {namespaces: ["prod-*"], services: [web, api], url_prefixes: ["https://"]}
      fences:                        # plugin -> dotted parameter path -> one rule kind each
        command:
          template: {one_of: [restart_service]}
          args.service: {pattern: "web-[a-z0-9-]+"}
      change_windows: [{days: [mon, tue, wed, thu, fri], start: "09:00", end: "18:00"}]
      outside_window: approve        # approve | refuse
      freezes: [{start: "2026-12-24T00:00:00+08:00", end: "2026-12-27T00:00:00+08:00"}]

Reasons are written by `say`, the bot's text catalogue (`cards.texts.texts("zh")`): keys
`policy.*` and `card.risk.*`. Without one, a reason is its key and values (for logs only).

Usage::

    engine = PolicyEngine(config, registry=registry, say=texts("zh"))
    decision = engine.evaluate(spec, {"url": "https://status.example.com/"}, alert=alert)
    decision.kind, decision.required_approvals, decision.approvers, decision.reason
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Self

from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plugins.contract import (
    RISKS,
    AlertContext,
    InvalidParams,
    PluginSpec,
    Risk,
    highest_risk,
    risk_rank,
    validate_params,
)
from plugins.fences import Fence, TargetFences, outside_parameter_fence, scope_of
from plugins.registry import PluginRegistry
from plugins.windows import ChangeWindow, Freeze, WindowState, window_state

DecisionKind = Literal["auto", "approve", "refuse"]
Say = Callable[..., str]
# every decision the engine makes (incident fixes, /run, scheduled checks, the model's tool
# calls, /policy check); `code` is why: auto, approve, window_approve, budget_approve, or the
# refusal's reason (unknown, disabled, invalid, fence, scope, quota, frozen, window, no_dry_run)
DECISIONS = Counter(
    "larkops_policy_decisions_total", "Policy engine decisions", ["decision", "code"]
)


def _plain(key: str, **values: object) -> str:
    """A reason without a text catalogue: the key and its values."""
    return " ".join([key, *(f"{name}={value}" for name, value in values.items())])


@dataclass(frozen=True)
class PolicyDecision:
    """What may happen to one proposed plugin run, and why (the reason is shown on the card).

    `approvers` is the named list that must decide (empty: the chat's usual approvers);
    `dry_run` says the run may only be a dry run. The rest explains the decision (/policy check).
    """

    kind: DecisionKind
    risk: Risk
    required_approvals: int
    reason: str
    code: str = ""
    declared_risk: Risk = "low"
    approver_list: str | None = None
    approvers: tuple[str, ...] = ()
    dry_run: bool = False
    target: str = ""
    scope: Mapping[str, str] = field(default_factory=dict)
    window: str = ""
    # the technical detail of a refusal (a parameter validator's message), shown verbatim as
    # code beside the worded reason
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        """The decision as stored in workflow state and audit rows."""
        return {
            "kind": self.kind,
            "risk": self.risk,
            "required_approvals": self.required_approvals,
            "reason": self.reason,
            "code": self.code,
            "detail": self.detail,
            "approver_list": self.approver_list,
            "approvers": list(self.approvers),
            "dry_run": self.dry_run,
            "target": self.target,
        }


class PolicyConfig(BaseModel):
    """The `policy:` section of the configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    auto_max_risk: Risk | Literal["none"] = "low"
    approvals: int = Field(default=1, ge=1, le=10)
    critical_approvals: int = Field(default=2, ge=2, le=10)
    approver_lists: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    approvers_by_risk: dict[Risk, str] = Field(default_factory=dict)
    approvers_by_plugin: dict[str, str] = Field(default_factory=dict)
    max_per_target_per_hour: int = Field(default=3, ge=0)
    max_auto_per_hour: int = Field(default=20, ge=0)
    dry_run: bool = False
    targets: TargetFences = Field(default_factory=TargetFences)
    fences: dict[str, dict[str, Fence]] = Field(default_factory=dict)
    change_windows: tuple[ChangeWindow, ...] = ()
    outside_window: Literal["approve", "refuse"] = "approve"
    freezes: tuple[Freeze, ...] = ()

    @field_validator("auto_max_risk", mode="before")
    @classmethod
    def _never_critical(cls, value: object) -> object:
        if value == "critical":
            raise ValueError("critical risk always needs approval; use high at most")
        return value

    @model_validator(mode="after")
    def _lists_exist(self) -> Self:
        named: list[str] = [*self.approvers_by_risk.values(), *self.approvers_by_plugin.values()]
        for list_name in named:
            members = self.approver_lists.get(list_name)
            if members is None:
                raise ValueError(f"approver list {list_name!r} is not in approver_lists")
            if not members:
                raise ValueError(f"approver list {list_name!r} is empty")
        return self


class PolicyEngine:
    """Decides auto / approve / refuse for a plugin run; pure and synchronous."""

    def __init__(
        self,
        config: PolicyConfig | Mapping[str, Any] | None = None,
        *,
        registry: PluginRegistry,
        say: Say | None = None,
    ) -> None:
        self.config = (
            config
            if isinstance(config, PolicyConfig)
            else PolicyConfig.model_validate(config or {})
        )
        self._registry = registry
        self._say: Say = say or _plain

    def evaluate(
        self,
        spec: PluginSpec,
        params: Mapping[str, Any] | BaseModel,
        *,
        alert: AlertContext | None,
        risk_hint: str | None = None,
        recent_executions: int = 0,
        recent_auto: int = 0,
        now: datetime | None = None,
    ) -> PolicyDecision:
        """Decide for one run of `spec` with `params` about `alert` (informational for now)."""
        del alert  # part of the contract for alert-based rules; none are defined yet
        say, cfg, name = self._say, self.config, spec.name
        registered = self._registry.get(name)
        if registered is None or registered.spec != spec:
            return self._refuse(spec, spec.risk, "unknown", plugin=name)
        if not self._registry.is_enabled(name):
            return self._refuse(spec, spec.risk, "disabled", plugin=name)
        try:
            model = validate_params(spec, params)
        except InvalidParams as exc:
            return self._refuse(
                spec,
                spec.risk,
                "invalid",
                verbatim=str(exc).rstrip("."),
                plugin=name,
            )
        risk, raised_by = _effective_risk(spec.risk, model, risk_hint)
        target, scope = target_of(spec, model), scope_of(model)
        facts: dict[str, Any] = {"target": target, "scope": scope}
        outside = outside_parameter_fence(cfg.fences.get(name, {}), model)
        if outside is not None:
            return self._refuse(spec, risk, "fence", facts, path=outside, plugin=name)
        violation = cfg.targets.violation(scope)
        if violation is not None:
            key, value = violation
            return self._refuse(spec, risk, "scope", facts, kind=key, value=value)
        limit = cfg.max_per_target_per_hour
        if limit and recent_executions >= limit:
            return self._refuse(spec, risk, "quota", facts, count=recent_executions, limit=limit)
        remediation = spec.category == "remediation"
        window = WindowState("open", "")
        if remediation:
            window = window_state(cfg.change_windows, cfg.freezes, now or datetime.now(UTC))
            facts["window"] = window.detail
            if window.kind == "frozen":
                return self._refuse(spec, risk, "frozen", facts, detail=window.detail)
            if window.kind == "outside" and cfg.outside_window == "refuse":
                return self._refuse(spec, risk, "window", facts, detail=window.detail)
            if cfg.dry_run and not spec.supports_dry_run:
                return self._refuse(spec, risk, "no_dry_run", facts, plugin=name)
        dry_run = remediation and cfg.dry_run
        named = say(f"card.risk.{risk}")
        because = (
            say(
                "policy.raised",
                declared=say(f"card.risk.{spec.risk}"),
                by=say(f"policy.by.{raised_by}"),
            )
            if raised_by
            else ""
        )
        suffix = say("policy.dry_run") if dry_run else ""
        auto_max = cfg.auto_max_risk
        risk_allows = (
            risk != "critical" and auto_max != "none" and risk_rank(risk) <= risk_rank(auto_max)
        )
        budget = cfg.max_auto_per_hour
        budget_spent = remediation and budget > 0 and recent_auto >= budget
        if risk_allows and window.kind == "open" and not budget_spent:
            reason = say("policy.auto", risk=named, because=because) + suffix
            return self._decision("auto", spec, risk, 0, reason, "auto", dry_run, facts)
        needed = cfg.critical_approvals if risk == "critical" else cfg.approvals
        list_name = cfg.approvers_by_plugin.get(name) or cfg.approvers_by_risk.get(risk)
        members = cfg.approver_lists.get(list_name, ()) if list_name else ()
        who = say("policy.from_list", name=list_name) if list_name else ""
        people = say(
            "policy.people.one" if needed == 1 else "policy.people.many", count=needed, who=who
        )
        if risk_allows and window.kind == "outside":
            code, reason = "window_approve", say("policy.window_approve", detail=window.detail)
        elif risk_allows and budget_spent:
            code, reason = "budget_approve", say("policy.budget_approve", limit=budget)
        else:
            code, reason = "approve", say("policy.approve", risk=named, because=because)
        return self._decision(
            "approve",
            spec,
            risk,
            needed,
            f"{reason}{people}{suffix}",
            code,
            dry_run,
            facts,
            approver_list=list_name,
            approvers=members,
        )

    def _refuse(
        self,
        spec: PluginSpec,
        risk: Risk,
        code: str,
        facts: Mapping[str, Any] | None = None,
        *,
        verbatim: str = "",
        **values: object,
    ) -> PolicyDecision:
        reason = self._say(f"policy.refuse.{code}", **values)
        decided = self._decision("refuse", spec, risk, 0, reason, code, False, facts or {})
        return replace(decided, detail=verbatim) if verbatim else decided

    def _decision(
        self,
        kind: DecisionKind,
        spec: PluginSpec,
        risk: Risk,
        needed: int,
        reason: str,
        code: str,
        dry_run: bool,
        facts: Mapping[str, Any],
        *,
        approver_list: str | None = None,
        approvers: tuple[str, ...] = (),
    ) -> PolicyDecision:
        DECISIONS.labels(kind, code).inc()
        return PolicyDecision(
            kind=kind,
            risk=risk,
            required_approvals=needed,
            reason=reason,
            code=code,
            declared_risk=spec.risk,
            approver_list=approver_list,
            approvers=approvers,
            dry_run=dry_run,
            target=str(facts.get("target", "")),
            scope=dict(facts.get("scope") or {}),
            window=str(facts.get("window", "")),
        )


def target_of(spec: PluginSpec, params: BaseModel) -> str:
    """What a quota counts for this run: the thing it acts on, whatever else its parameters say.
    The model's `policy_target()` when it declares one; else what it touches
    (`policy_scope()`: host, service, url, namespace, connection); else the plugin itself, so
    runs of a plugin that says nothing about its target are all counted together."""
    method = getattr(params, "policy_target", None)
    if callable(method):
        return str(method())
    scope = scope_of(params)
    if scope:
        return "scope:" + ",".join(f"{k}={v}" for k, v in sorted(scope.items()))
    return spec.name


def _effective_risk(declared: Risk, model: BaseModel, hint: str | None) -> tuple[Risk, str]:
    risk, raised_by = declared, ""
    method = getattr(model, "policy_risk", None)
    if callable(method):
        reported = method()
        if reported in RISKS and risk_rank(reported) > risk_rank(risk):
            risk, raised_by = reported, "params"
    if hint in RISKS:
        hinted: Risk = next(r for r in RISKS if r == hint)
        if risk_rank(hinted) > risk_rank(risk):
            risk, raised_by = highest_risk(risk, hinted), "hint"
    return risk, raised_by
