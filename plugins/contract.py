"""The plugin contract: what a plugin declares, what it receives and what it returns.

A plugin is any object with a `spec` and an async `run`. Plugins return data, never cards or
chat text; the registry validates their parameters, bounds their time and cleans their output
(see `plugins.execution.execute`).

Usage::

    class Ping(BaseModel):
        host: str

    class PingPlugin:
        spec = PluginSpec(
            name="ping", category="diagnostic", risk="low", params=Ping, timeout=5,
            idempotent=True, supports_dry_run=False, title_zh="连通性检查", title_en="Ping",
            description_zh="检查主机是否可达", description_en="Checks that a host answers",
        )

        async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
            assert isinstance(params, Ping)
            return PluginResult(
                ok=True,
                summary=f"{params.host} answers",  # logs and models read this line
                code="ping_ok",  # people read `card.finding.ping_ok` of cards/texts, zh and en
                values={"host": params.host},
            )

Every built-in plugin gives each result a code (`tests/support/language.worded` checks that
both catalogues word it and that the Chinese has no English of its own); a plugin without
codes is shown by its summary, as a tool's words in a code span.

A parameter model may add two optional methods that the policy engine consults:
`policy_risk() -> Risk` (risk that depends on the parameters, e.g. the `command` template's
risk; it can only raise the declared risk), `policy_target() -> str` (what a quota counts,
e.g. `command:restart_service:service=web`) and `policy_scope() -> dict[str, str]` (what the
run touches, for the policy's target fences; keys among `SCOPE_KEYS`: `namespace` (Kubernetes),
`host`, `service`, `url`, `target` (a configured connection name such as a Postgres target)).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

Risk = Literal["low", "medium", "high", "critical"]
RISKS: tuple[Risk, ...] = ("low", "medium", "high", "critical")
Category = Literal["diagnostic", "remediation"]
CATEGORIES: tuple[Category, ...] = ("diagnostic", "remediation")
ScopeKey = Literal["namespace", "host", "service", "url", "target"]
SCOPE_KEYS: tuple[ScopeKey, ...] = ("namespace", "host", "service", "url", "target")


def risk_rank(risk: str) -> int:
    """Position of `risk` in `RISKS` (low = 0); ValueError for anything else."""
    for rank, known in enumerate(RISKS):
        if risk == known:
            return rank
    raise ValueError(f"unknown risk {risk!r} (expected one of {', '.join(RISKS)})")


def highest_risk(*risks: Risk) -> Risk:
    """The highest of the given risks."""
    return max(risks, key=risk_rank)


@dataclass(frozen=True)
class PluginSpec:
    """What a plugin declares about itself; checked once, at registration."""

    name: str
    category: Category
    risk: Risk
    params: type[BaseModel]
    timeout: float
    idempotent: bool
    supports_dry_run: bool
    title_zh: str
    title_en: str
    description_zh: str
    description_en: str


@dataclass(frozen=True)
class AlertContext:
    """The alert a plugin run is about (hostile text: treat every field as data)."""

    title: str
    severity: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    service: str | None


@dataclass(frozen=True)
class PluginContext:
    """Per-run context: dry run (run nothing, say what would run), the alert, ids for audit."""

    dry_run: bool = False
    alert: AlertContext | None = None
    incident_id: int | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class PluginResult:
    """What a run produced; `execute` caps and redacts it before anyone sees it."""

    ok: bool
    summary: str
    data: Mapping[str, Any] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    output: str = ""
    # the summary as a code with values (`card.finding.<code>`), for the chat to word in its
    # language; `summary` stays the plugin's own line (logs, models, plugins without codes)
    code: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Plugin(Protocol):
    """A diagnostic or remediation capability."""

    spec: PluginSpec

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """Do the work; raise or return ok=False on failure (both are reported the same way)."""
        ...


class InvalidParams(ValueError):
    """Parameters that the plugin's model refuses; the message is a short, safe sentence."""


def validate_params(spec: PluginSpec, params: Mapping[str, Any] | BaseModel) -> BaseModel:
    """Validate raw parameters with the plugin's model.

    The error message names the fields and the problems but never echoes the input values
    (they come from alerts, chats and models).
    """
    raw: Any = params.model_dump() if isinstance(params, BaseModel) else params
    if not isinstance(raw, Mapping):
        raise InvalidParams("parameters must be an object")
    try:
        return spec.params.model_validate(dict(raw))
    except ValidationError as exc:
        raise InvalidParams(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError, limit: int = 3) -> str:
    """`url: URL scheme should be 'http' or 'https'; timeout_s: ...` without input values."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False)[:limit]:
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)[:500]
