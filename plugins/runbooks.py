"""Runbooks: the `rules` provider. Diagnose, propose and verify without any model.

A runbook matches an alert by field regexes (full match; a bare key is a label,
`annotations.<name>` an annotation) and lists diagnostic steps, at most one proposal (a
remediation plugin) and at most one verification (diagnostic, like the diagnose steps).
Step parameters may contain `{labels.x}`, `{annotations.x}`, `{service}`,
`{severity}`, `{title}` (see `plugins.alertfields`); each filled value is then validated by the
plugin's parameter model. A step that cannot be filled, whose parameters the model refuses, or
that the policy engine does not let run automatically is skipped with a reason — never executed.

Configuration (YAML `runbooks:`, a list; the first match wins, built-in defaults come last)::

    runbooks:
      - name: web-down
        match: {alertname: "WebDown|SiteDown", annotations.url: "https://.+"}
        diagnose:
          - {plugin: http_check, params: {url: "{annotations.url}"},
             title_zh: 检查首页, title_en: Check the home page}
        propose:
          plugin: command
          params: {template: restart_service, args: {service: "{labels.service}"}}
          title_zh: 重启服务
          title_en: Restart the service
        verify: {plugin: http_check, params: {url: "{annotations.url}"}}

Built-in default: an alert with a `url` label or annotation is diagnosed and verified with
`http_check` on that URL; when the `command` plugin has a `restart_service` template, the
proposal restarts `{labels.service}`.

Usage::

    book = RunbookBook.from_config(settings_runbooks, registry)
    diagnosis = await diagnose_with_rules(book, registry, alert, policy=engine)
    proposal = await propose_with_rules(book, registry, alert)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from plugins.alertfields import MissingField, field_value, fill, template_problem
from plugins.builtin.command import CommandPlugin
from plugins.contract import (
    AlertContext,
    InvalidParams,
    PluginContext,
    PluginResult,
    validate_params,
)
from plugins.execution import execute
from plugins.outcome import Diagnosis, Proposal, Verification
from plugins.policy import PolicyEngine
from plugins.registry import PluginRegistry

MAX_STEPS = 10
ANNOTATION_HINTS = (
    ("runbook_url", "Follow the runbook: {}"),
    ("runbook", "Follow the runbook: {}"),
    ("dashboard", "Open the dashboard: {}"),
    ("dashboard_url", "Open the dashboard: {}"),
    ("description", "Read the alert description: {}"),
    ("summary", "Read the alert summary: {}"),
    ("message", "Read the alert message: {}"),
)


@dataclass(frozen=True)
class Step:
    """One plugin run with templated parameters."""

    plugin: str
    params: Mapping[str, Any] = field(default_factory=dict)
    title_zh: str = ""
    title_en: str = ""

    @property
    def title(self) -> str:
        """English title, or the plugin name."""
        return self.title_en or self.plugin


@dataclass(frozen=True)
class Runbook:
    """Matchers plus what to run for a matching alert."""

    name: str
    match: Mapping[str, str]
    diagnose: tuple[Step, ...] = ()
    propose: Step | None = None
    verify: Step | None = None

    def matches(self, alert: AlertContext) -> bool:
        """Every matcher full-matches its field (a missing field never matches)."""
        for key, pattern in self.match.items():
            value = field_value(alert, key)
            if value is None or re.fullmatch(pattern, value) is None:
                return False
        return True


class StepConfig(BaseModel):
    """A step as written in the configuration."""

    model_config = ConfigDict(extra="forbid")

    plugin: str
    params: dict[str, Any] = Field(default_factory=dict)
    title_zh: str = ""
    title_en: str = ""


class RunbookConfig(BaseModel):
    """A runbook as written in the configuration."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    match: dict[str, str] = Field(default_factory=dict)
    diagnose: list[StepConfig] = Field(default_factory=list, max_length=MAX_STEPS)
    propose: StepConfig | None = None
    verify: StepConfig | None = None


class RunbookBook:
    """Runbooks in order; `match` returns the first that matches."""

    def __init__(self, runbooks: Sequence[Runbook]) -> None:
        self.runbooks = tuple(runbooks)

    @classmethod
    def from_config(
        cls,
        config: Sequence[Mapping[str, Any]] | None,
        registry: PluginRegistry,
        *,
        defaults: bool = True,
    ) -> RunbookBook:
        """Load and check configured runbooks (ValueError naming the runbook and the problem)."""
        runbooks = [_load(RunbookConfig.model_validate(raw), registry) for raw in config or ()]
        if defaults:
            runbooks.extend(default_runbooks(registry))
        return cls(runbooks)

    def match(self, alert: AlertContext) -> Runbook | None:
        """The first runbook matching the alert, or None."""
        return next((book for book in self.runbooks if book.matches(alert)), None)


def default_runbooks(registry: PluginRegistry) -> list[Runbook]:
    """Built-in runbooks: HTTP check of a `url` label/annotation, restart when configured."""
    if registry.get("http_check") is None:
        return []
    command = registry.get("command")
    restart = None
    if isinstance(command, CommandPlugin):
        template = command.templates.get("restart_service")
        if template is not None and set(template.patterns) == {"service"}:
            restart = Step(
                "command",
                {"template": "restart_service", "args": {"service": "{labels.service}"}},
                title_zh="重启服务",
                title_en="Restart the service",
            )
    books = []
    for key in ("labels.url", "annotations.url"):
        check = Step(
            "http_check", {"url": f"{{{key}}}"}, title_zh="检查服务地址", title_en="Check the URL"
        )
        books.append(
            Runbook(
                name=f"default-http-check:{key}",
                match={key: r"https?://\S+"},
                diagnose=(check,),
                propose=restart,
                verify=check,
            )
        )
    return books


async def diagnose_with_rules(
    book: RunbookBook,
    registry: PluginRegistry,
    alert: AlertContext,
    *,
    policy: PolicyEngine | None = None,
    ctx: PluginContext | None = None,
) -> Diagnosis:
    """Run the matching runbook's diagnostic steps (concurrently) and summarise them."""
    runbook = book.match(alert)
    if runbook is None:
        return Diagnosis(
            summary="No runbook matches this alert; a person needs to look at it.",
            hypotheses=(),
            evidence=(),
            next_checks=_hints(alert),
            codes={
                "summary": {"code": "no_runbook", "values": {}},
                "next_checks": _hint_codes(alert),
            },
        )
    ctx = ctx or PluginContext(alert=alert)
    prepared = [_prepared(step, registry, alert, policy) for step in runbook.diagnose]
    runnable = [(step, params) for step, params, why in prepared if why is None]
    results = await asyncio.gather(
        *(execute(registry, step.plugin, ctx, params) for step, params in runnable)
    )
    evidence: list[tuple[str, str]] = []
    # per evidence line, the plugin's finding when the line is its summary ({} for its own
    # evidence lines, which are data shown as code)
    evidence_codes: list[dict[str, Any]] = []
    hypotheses: list[tuple[str, float]] = []
    worded: list[dict[str, Any]] = []
    for (step, _params), result in zip(runnable, results, strict=True):
        lines = result.evidence[:4] or (result.summary,)
        evidence.extend((step.plugin, line) for line in lines)
        coded = finding_of(result) if not result.evidence else {}
        evidence_codes.extend(coded for _line in lines)
        if not result.ok:
            hypotheses.append((f"{step.title} failed: {result.summary}", 0.7))
            values = {"step": step.title, "step_zh": step.title_zh or step.title}
            worded.append(
                {
                    "code": "step_failed",
                    "values": {**values, "summary": result.summary},
                    "finding": finding_of(result),
                }
            )
    skipped = [f"{step.title}: not run ({_why_text(why)})" for step, _p, why in prepared if why]
    skipped_codes = [
        {
            "code": "step_skipped",
            "values": {
                "step": step.title,
                "step_zh": step.title_zh or step.title,
                "reason": _why_text(why),
            },
            "why": why,
        }
        for step, _p, why in prepared
        if why
    ]
    if runnable and not hypotheses:
        hypotheses.append(("Checks pass now; the alert may be transient or recovering.", 0.4))
        worded.append({"code": "checks_pass", "values": {}})
    failed = sum(1 for result in results if not result.ok)
    summary = f"Runbook {runbook.name}: {failed} of {len(results)} checks failed"
    if skipped:
        summary += f", {len(skipped)} skipped"
    counts = {"failed": str(failed), "total": str(len(results)), "skipped": str(len(skipped))}
    return Diagnosis(
        summary=summary + ".",
        hypotheses=tuple(hypotheses),
        evidence=tuple(evidence),
        next_checks=(*skipped, *_hints(alert)),
        partial=bool(skipped),
        codes={
            "summary": {"code": "runbook_checks", "values": {"runbook": runbook.name, **counts}},
            "hypotheses": worded,
            "next_checks": [*skipped_codes, *_hint_codes(alert)],
            "evidence": evidence_codes,
        },
    )


async def propose_with_rules(
    book: RunbookBook,
    registry: PluginRegistry,
    alert: AlertContext,
    *,
    ctx: PluginContext | None = None,
) -> Proposal | None:
    """The matching runbook's proposal with filled, validated parameters, or None.

    Nothing runs: plugins that support dry runs are asked what they would do (that text
    becomes the first step). The policy decision is left to the caller.
    """
    runbook = book.match(alert)
    if runbook is None or runbook.propose is None:
        return None
    step = runbook.propose
    params, reason = _fill_and_validate(step, registry, alert)
    if params is None or reason is not None:
        return None
    plugin = registry.get(step.plugin)
    steps: list[str] = [f"{step.title} ({step.plugin})"]
    if plugin is not None and plugin.spec.supports_dry_run:
        dry = replace(ctx or PluginContext(alert=alert), dry_run=True)
        rehearsal = await execute(registry, step.plugin, dry, params)
        if not rehearsal.ok:
            return None
        steps = [rehearsal.summary]
    if runbook.verify is not None:
        steps.append(f"Then verify: {runbook.verify.title}")
    matched = ", ".join(sorted(runbook.match)) or "every alert"
    return Proposal(
        plugin=step.plugin,
        params=params,
        title_zh=step.title_zh or step.title,
        title_en=step.title,
        steps=tuple(steps),
        rationale=f"Runbook {runbook.name} matched on {matched}.",
    )


async def verify_with_rules(
    book: RunbookBook,
    registry: PluginRegistry,
    alert: AlertContext,
    *,
    policy: PolicyEngine | None = None,
    ctx: PluginContext | None = None,
    attempts: int = 1,
    interval: float = 5.0,
) -> Verification | None:
    """Run the matching runbook's verify step (up to `attempts` times until ok), or None."""
    runbook = book.match(alert)
    if runbook is None or runbook.verify is None:
        return None
    step = runbook.verify
    _step, params, why = _prepared(step, registry, alert, policy)
    if why is not None:
        reason = _why_text(why)
        values = {"step": step.title, "step_zh": step.title_zh or step.title, "reason": reason}
        return Verification(
            ok=False,
            summary=f"{step.title}: not run ({reason})",
            finding={"code": "step_skipped", "values": values, "why": why},
        )
    ctx = ctx or PluginContext(alert=alert)
    for attempt in range(max(1, attempts)):
        if attempt:
            await asyncio.sleep(interval)
        result = await execute(registry, step.plugin, ctx, params)
        if result.ok:
            break
    evidence = tuple((step.plugin, line) for line in result.evidence[:4] or (result.summary,))
    return Verification(
        ok=result.ok, summary=result.summary, evidence=evidence, finding=finding_of(result)
    )


def finding_of(result: PluginResult) -> dict[str, Any]:
    """A result's summary as {"code", "values"} (empty when the plugin gave no code)."""
    if not result.code:
        return {}
    return {"code": result.code, "values": {str(k): str(v) for k, v in result.values.items()}}


def _load(config: RunbookConfig, registry: PluginRegistry) -> Runbook:
    where = f"runbook {config.name!r}"
    for key, pattern in config.match.items():
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{where}: matcher {key!r}: bad regex: {exc}") from None
    steps = [*config.diagnose, config.propose, config.verify]
    for step in steps:
        if step is None:
            continue
        if registry.get(step.plugin) is None:
            raise ValueError(f"{where}: unknown plugin {step.plugin!r}")
        problem = template_problem(step.params)
        if problem:
            raise ValueError(f"{where}: step {step.plugin}: {problem}")
    for step, category in [
        *((s, "diagnostic") for s in config.diagnose),
        (config.verify, "diagnostic"),
        (config.propose, "remediation"),
    ]:
        plugin = registry.get(step.plugin) if step else None
        if step and plugin and plugin.spec.category != category:
            raise ValueError(f"{where}: {step.plugin} is not a {category} plugin")
    return Runbook(
        name=config.name,
        match=dict(config.match),
        diagnose=tuple(_step(s) for s in config.diagnose),
        propose=_step(config.propose) if config.propose else None,
        verify=_step(config.verify) if config.verify else None,
    )


def _step(config: StepConfig) -> Step:
    return Step(config.plugin, dict(config.params), config.title_zh, config.title_en)


def _fill_and_validate(
    step: Step, registry: PluginRegistry, alert: AlertContext
) -> tuple[dict[str, Any] | None, str | None]:
    params, why = _filled(step, registry, alert)
    return params, _why_text(why)


def _filled(
    step: Step, registry: PluginRegistry, alert: AlertContext
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The step's parameters filled from the alert and validated, or why not as a code with
    values (`card.finding.<code>`)."""
    plugin = registry.get(step.plugin)
    if plugin is None or not registry.is_enabled(step.plugin):
        return None, {"code": "skip_unavailable", "values": {"plugin": step.plugin}}
    try:
        params: dict[str, Any] = fill(dict(step.params), alert)
        validate_params(plugin.spec, params)
    except MissingField as exc:
        return None, {"code": "skip_missing", "values": {"field": exc.field}}
    except InvalidParams as exc:
        return None, {"code": "skip_invalid", "values": {"detail": str(exc)}}
    return params, None


_WHY = {
    "skip_unavailable": "plugin {plugin} is not available",
    "skip_missing": "the alert has no {field}",
    "skip_invalid": "parameters rejected: {detail}",
    "skip_policy": "policy: {why} {detail}",
}


def _why_text(why: dict[str, Any] | None) -> str | None:
    """A skip's code as the plugin layer's own line (logs, models, `next_checks`)."""
    if why is None:
        return None
    return _WHY[why["code"]].format(**why["values"]).rstrip()


def _prepared(
    step: Step, registry: PluginRegistry, alert: AlertContext, policy: PolicyEngine | None
) -> tuple[Step, dict[str, Any], dict[str, Any] | None]:
    """The step ready to run, or why it is skipped as a code with values."""
    params, why = _filled(step, registry, alert)
    if params is None or why is not None:
        return step, {}, why or {"code": "skip_invalid", "values": {"detail": "no parameters"}}
    plugin = registry.get(step.plugin)
    if policy is not None and plugin is not None:
        decision = policy.evaluate(plugin.spec, params, alert=alert)
        if decision.kind != "auto":
            # the policy's reason is worded in the chat's language already (its technical
            # detail stays in the plugin layer's own line)
            values = {"why": decision.reason, "detail": decision.detail}
            return step, params, {"code": "skip_policy", "values": values}
    return step, params, None


def _hint_codes(alert: AlertContext) -> list[dict[str, Any]]:
    """The hints of `_hints` as codes with values, for the chat to word in its language."""
    codes: list[dict[str, Any]] = []
    for key, _phrase in ANNOTATION_HINTS:
        value = alert.annotations.get(key)
        if value:
            text = " ".join(value.split())
            text = text[:300] + ("…" if len(text) > 300 else "")
            codes.append({"code": f"hint_{key}", "values": {"text": text}})
    return codes or [{"code": "hint_look_around", "values": {}}]


def _hints(alert: AlertContext) -> tuple[str, ...]:
    hints = []
    for key, phrase in ANNOTATION_HINTS:
        value = alert.annotations.get(key)
        if value:
            text = " ".join(value.split())
            hints.append(phrase.format(text[:300] + ("…" if len(text) > 300 else "")))
    return tuple(hints) or ("Check the service's logs, metrics and recent changes.",)
