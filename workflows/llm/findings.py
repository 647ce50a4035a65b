"""What the model must answer, as pydantic models: a diagnosis, and (separately) a fix suggestion.

The model's final message must be one JSON object; `parse_findings` validates it (a code fence
around it is tolerated) and says, in one line, what was wrong so the agent can ask once more.

Usage::

    findings = parse_findings(reply.text, known_calls={"call_1": "host_disk"})
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from plugins.contract import describe_validation_error

M = TypeVar("M", bound=BaseModel)
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class Hypothesis(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cause: str = Field(min_length=1, max_length=400)
    confidence: float = Field(ge=0.0, le=1.0)


class EvidenceItem(BaseModel):
    """An observation; `tool_call_id` names the tool call that produced it."""

    model_config = ConfigDict(extra="ignore")

    tool_call_id: str | None = Field(default=None, max_length=100)
    text: str = Field(min_length=1, max_length=600)


class Findings(BaseModel):
    """The diagnosis the model returns."""

    model_config = ConfigDict(extra="ignore")

    summary: str = Field(min_length=1, max_length=800)
    hypotheses: list[Hypothesis] = Field(default_factory=list, max_length=5)
    evidence: list[EvidenceItem] = Field(default_factory=list, max_length=12)
    next_checks: list[str] = Field(default_factory=list, max_length=6)


class Suggestion(BaseModel):
    """A fix the model suggests: a plugin from the catalogue and its parameters, or none."""

    model_config = ConfigDict(extra="ignore")

    plugin: str | None = Field(default=None, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    rationale: str = Field(default="", max_length=600)
    risk_hint: Literal["low", "medium", "high", "critical"] | None = None


class AnswerError(ValueError):
    """The model's answer is not the JSON object asked for; the message says why (one line)."""


def parse_findings(text: str, known_calls: Mapping[str, str]) -> Findings:
    """Validate a final answer. Evidence citing a tool call that never happened is an error."""
    findings = _parse(text, Findings)
    unknown = [e.tool_call_id for e in findings.evidence if e.tool_call_id not in known_calls]
    if any(unknown):
        raise AnswerError(
            "evidence cites tool calls that were not made: "
            + ", ".join(str(u) for u in unknown if u)[:200]
        )
    return findings


def parse_suggestion(text: str) -> Suggestion:
    return _parse(text, Suggestion)


def _parse(text: str, model: type[M]) -> M:
    raw = text.strip()
    fenced = _FENCE.match(raw)
    if fenced:
        raw = fenced.group(1)
    if not raw.startswith("{"):
        start, end = raw.find("{"), raw.rfind("}")
        if start < 0 or end <= start:
            raise AnswerError("the answer is not a JSON object")
        raw = raw[start : end + 1]
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise AnswerError(f"the answer is not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise AnswerError("the answer is not a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise AnswerError(describe_validation_error(exc)) from None
