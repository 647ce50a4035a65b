"""The policy engine: auto-run, ask for approval, or refuse. It — not a model — decides.

Effective risk = the highest of the plugin's declared risk, the risk its parameters report
(`policy_risk()`, e.g. a `command` template's) and the hint (from a model or a runbook). A hint
can raise the risk, never lower it; an unknown hint is ignored.

Decision, in order:
1. refuse: the plugin is unknown or disabled in the registry, or its parameters are invalid;
2. refuse: a parameter is outside its fence;
3. refuse: the quota is used up (`recent_executions` on the same target in the last hour,
   counted by the caller; `target_of` names the target);
4. auto when the risk is at most `auto_max_risk` (critical never is); otherwise approve, with
   `approvals` approvers (`critical_approvals`, at least 2, for critical risk).

Configuration (YAML `policy:`)::

    policy:
      auto_max_risk: low             # low | medium | high | none
      approvals: 1
      critical_approvals: 2
      max_per_target_per_hour: 3     # 0: no quota
      fences:                        # plugin -> dotted parameter path -> one rule kind each
        http_check:
          url: {prefixes: ["https://status.example.com/", "http://127.0.0.1:"]}
        command:
          template: {one_of: [restart_service]}
          args.service: {pattern: "web-[a-z0-9-]+"}

URL prefixes are compared as plain text: end a host prefix with `/` (or `:` for any port),
otherwise `https://a.example` also admits `https://a.example.evil.net`.

Usage::

    engine = PolicyEngine(config, registry=registry)
    decision = engine.evaluate(spec, {"url": "https://status.example.com/"}, alert=alert)
    decision.kind, decision.required_approvals, decision.reason
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

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
from plugins.registry import PluginRegistry

DecisionKind = Literal["auto", "approve", "refuse"]


@dataclass(frozen=True)
class PolicyDecision:
    """What may happen to one proposed plugin run, and why (the reason is shown on the card)."""

    kind: DecisionKind
    risk: Risk
    required_approvals: int
    reason: str


class Fence(BaseModel):
    """Allowed values of one parameter: exactly one of prefixes, one_of, pattern."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefixes: tuple[str, ...] | None = None
    one_of: tuple[str, ...] | None = None
    pattern: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        kinds = [self.prefixes, self.one_of, self.pattern]
        if sum(kind is not None for kind in kinds) != 1:
            raise ValueError("a fence needs exactly one of prefixes, one_of, pattern")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"bad fence pattern: {exc}") from None
        return self

    def admits(self, value: str) -> bool:
        """True when `value` is inside the fence."""
        if self.prefixes is not None:
            return any(value.startswith(prefix) for prefix in self.prefixes)
        if self.one_of is not None:
            return value in self.one_of
        return self.pattern is not None and re.fullmatch(self.pattern, value) is not None


class PolicyConfig(BaseModel):
    """The `policy:` section of the configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    auto_max_risk: Risk | Literal["none"] = "low"
    approvals: int = Field(default=1, ge=1, le=10)
    critical_approvals: int = Field(default=2, ge=2, le=10)
    max_per_target_per_hour: int = Field(default=3, ge=0)
    fences: dict[str, dict[str, Fence]] = Field(default_factory=dict)

    @field_validator("auto_max_risk", mode="before")
    @classmethod
    def _never_critical(cls, value: object) -> object:
        if value == "critical":
            raise ValueError("critical risk always needs approval; use high at most")
        return value


class PolicyEngine:
    """Decides auto / approve / refuse for a plugin run; pure and synchronous."""

    def __init__(
        self,
        config: PolicyConfig | Mapping[str, Any] | None = None,
        *,
        registry: PluginRegistry,
    ) -> None:
        self.config = (
            config
            if isinstance(config, PolicyConfig)
            else PolicyConfig.model_validate(config or {})
        )
        self._registry = registry

    def evaluate(
        self,
        spec: PluginSpec,
        params: Mapping[str, Any] | BaseModel,
        *,
        alert: AlertContext | None,
        risk_hint: str | None = None,
        recent_executions: int = 0,
    ) -> PolicyDecision:
        """Decide for one run of `spec` with `params` about `alert` (informational for now)."""
        del alert  # part of the contract for alert-based fences; none are defined yet
        risk = spec.risk
        registered = self._registry.get(spec.name)
        if registered is None or registered.spec != spec:
            return _refuse(risk, f"Plugin {spec.name} is not registered.")
        if not self._registry.is_enabled(spec.name):
            return _refuse(risk, f"Plugin {spec.name} is disabled.")
        try:
            model = validate_params(spec, params)
        except InvalidParams as exc:
            return _refuse(risk, f"Invalid parameters for {spec.name}: {str(exc).rstrip('.')}.")
        risk, raised_by = _effective_risk(spec.risk, model, risk_hint)
        outside = self._outside_fence(spec.name, model)
        if outside is not None:
            return _refuse(risk, f"{outside} is outside the allowed values for {spec.name}.")
        limit = self.config.max_per_target_per_hour
        if limit and recent_executions >= limit:
            return _refuse(
                risk,
                f"Quota used up: {recent_executions} runs on this target in the last hour "
                f"(limit {limit}).",
            )
        because = f" (raised from {spec.risk} by {raised_by})" if raised_by else ""
        auto_max = self.config.auto_max_risk
        if risk != "critical" and auto_max != "none" and risk_rank(risk) <= risk_rank(auto_max):
            return PolicyDecision("auto", risk, 0, f"Risk {risk}{because}: runs automatically.")
        needed = self.config.critical_approvals if risk == "critical" else self.config.approvals
        people = "approver" if needed == 1 else "approvers"
        return PolicyDecision(
            "approve", risk, needed, f"Risk {risk}{because}: needs {needed} {people}."
        )

    def _outside_fence(self, plugin: str, model: BaseModel) -> str | None:
        fences = self.config.fences.get(plugin)
        if not fences:
            return None
        values = model.model_dump(mode="json")
        for path, fence in fences.items():
            value = _lookup(values, path)
            if not isinstance(value, str):
                value = None if value is None else json.dumps(value, sort_keys=True)
            if value is None or not fence.admits(value):
                return path
        return None


def target_of(spec: PluginSpec, params: BaseModel) -> str:
    """What a quota counts for this run: the model's `policy_target()` or name + parameters."""
    method = getattr(params, "policy_target", None)
    if callable(method):
        return str(method())
    dumped = json.dumps(params.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return f"{spec.name}:{dumped}"


def _effective_risk(declared: Risk, model: BaseModel, hint: str | None) -> tuple[Risk, str]:
    risk, raised_by = declared, ""
    method = getattr(model, "policy_risk", None)
    if callable(method):
        reported = method()
        if reported in RISKS and risk_rank(reported) > risk_rank(risk):
            risk, raised_by = reported, "its parameters"
    if hint in RISKS:
        hinted: Risk = next(r for r in RISKS if r == hint)
        if risk_rank(hinted) > risk_rank(risk):
            risk, raised_by = highest_risk(risk, hinted), "the hint"
    return risk, raised_by


def _lookup(values: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(values, Mapping) or part not in values:
            return None
        values = values[part]
    return values


def _refuse(risk: Risk, reason: str) -> PolicyDecision:
    return PolicyDecision("refuse", risk, 0, reason)
