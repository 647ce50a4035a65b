"""What the `rules` provider produces: a diagnosis, a proposal, a verification.

Small frozen dataclasses with plain fields, so that workflows can persist them and turn them
into card views without importing anything else from `plugins`. Text here is English (plugins do
not know the chat language); titles that people read come in both languages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Diagnosis:
    """Findings about one alert.

    `hypotheses` are (cause, confidence 0..1), most likely first; `evidence` are
    (source, text) where source names the plugin that produced it; `partial` is True when a
    step could not run (skipped or refused) so the picture is incomplete.
    """

    summary: str
    hypotheses: tuple[tuple[str, float], ...]
    evidence: tuple[tuple[str, str], ...]
    next_checks: tuple[str, ...]
    provider: str = "rules"
    partial: bool = False
    # the summary and each hypothesis as a code with values, for the chat to word in its
    # language: {"summary": {"code", "values"}, "hypotheses": [{"code", "values"} | None, …]}
    codes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Proposal:
    """One remediation to put before people (and the policy engine)."""

    plugin: str
    params: dict[str, Any]
    title_zh: str
    title_en: str
    steps: tuple[str, ...]
    rationale: str


@dataclass(frozen=True)
class Verification:
    """Whether the remediation worked, from the runbook's verify step."""

    ok: bool
    summary: str
    evidence: tuple[tuple[str, str], ...] = field(default=())
    finding: dict[str, Any] = field(default_factory=dict)  # {"code", "values"} of the summary
