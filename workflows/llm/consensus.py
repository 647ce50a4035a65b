"""Merging a council's answers: which hypotheses each model supports, where they disagree, and
a confidence from their agreement. Pure functions over JSON-able values; no model is asked.

Two causes are the same hypothesis when their words overlap enough (Jaccard over Latin words
and CJK character pairs ≥ `SAME`): "disk full on db-1" and "db-1 disk is full" are one. A
hypothesis's confidence is the mean confidence of the models that support it, times the share
of answering models that do: one model at 90% of three gives 30%, all three at 80% give 80%.

Usage::

    merged = merge([Answer("gpt", summary, [("disk full", 0.9)], evidence, checks), ...],
                   asked=3)
    merged["hypotheses"][0] == {"cause": "disk full", "confidence": 0.6,
                                "support": ["gpt", "claude"], "against": ["qwen"]}
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypedDict

SAME = 0.4
MAX_HYPOTHESES = 5
_WORD = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_CJK = re.compile(r"[\u4e00-\u9fff]+")
_STOP = frozenset({"the", "a", "an", "is", "are", "on", "of", "in", "to", "and", "or", "was"})


@dataclass(frozen=True)
class Answer:
    """One model's answer: its summary, (cause, confidence) hypotheses, (source, text) evidence
    and next checks."""

    member: str
    summary: str
    hypotheses: Sequence[tuple[str, float]]
    evidence: Sequence[tuple[str, str]] = ()
    next_checks: Sequence[str] = ()


@dataclass
class _Group:
    cause: str
    confidences: dict[str, float] = field(default_factory=dict)
    terms: set[str] = field(default_factory=set)


def terms(text: str) -> set[str]:
    """The words a cause is compared by: Latin words (minus a few fillers) and CJK pairs."""
    lowered = text.lower()
    found = {word.strip(".-") for word in _WORD.findall(lowered)} - _STOP
    for run in _CJK.findall(lowered):
        found.update(run[i : i + 2] for i in range(max(1, len(run) - 1)))
    return {term for term in found if term}


def similarity(left: set[str], right: set[str]) -> float:
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)


class Hypothesis(TypedDict):
    """A merged cause: its confidence, the members behind it and those who said otherwise."""

    cause: str
    confidence: float
    support: list[str]
    against: list[str]


class CouncilView(TypedDict):
    """The council's merged view, as stored on its batch (`council_batches.merged`)."""

    summary: str
    hypotheses: list[Hypothesis]
    disputed: list[str]
    agreement: float
    confidence: float
    answered: int
    asked: int
    evidence: list[list[str]]
    next_checks: list[str]


def merge(answers: Sequence[Answer], *, asked: int) -> CouncilView:
    """The council's merged view (see the module docstring) of the models that answered.

    `agreement` is the share of answering models behind the leading hypothesis (0 without
    answers); `confidence` is the leading hypothesis's confidence."""
    groups: list[_Group] = []
    for answer in answers:
        for cause, confidence in answer.hypotheses:
            words = terms(cause)
            best = max(groups, key=lambda g: similarity(g.terms, words), default=None)
            if best is None or similarity(best.terms, words) < SAME:
                best = _Group(cause)
                groups.append(best)
            # a model naming the same cause twice counts once, at its higher confidence
            previous = best.confidences.get(answer.member, 0.0)
            best.confidences[answer.member] = max(previous, _unit(confidence))
            best.terms |= words
    members = [answer.member for answer in answers]
    count = len(members)
    ranked = sorted(groups, key=lambda g: (-len(g.confidences), -sum(g.confidences.values())))[
        :MAX_HYPOTHESES
    ]
    hypotheses: list[Hypothesis] = [
        {
            "cause": group.cause,
            # mean confidence of its supporters × their share = sum / answering models
            "confidence": round(sum(group.confidences.values()) / count, 3),
            "support": [m for m in members if m in group.confidences],
            "against": [m for m in members if m not in group.confidences],
        }
        for group in ranked
    ]
    leading = ranked[0] if ranked else None
    agreement = len(leading.confidences) / count if leading else 0.0
    lead_member = hypotheses[0]["support"][0] if hypotheses else (members[0] if members else None)
    summary = next((a.summary for a in answers if a.member == lead_member), "")
    return {
        "summary": summary,
        "hypotheses": hypotheses,
        "disputed": [h["cause"] for h in hypotheses if h["against"]],
        "agreement": round(agreement, 3),
        "confidence": hypotheses[0]["confidence"] if hypotheses else 0.0,
        "answered": count,
        "asked": asked,
        "evidence": _evidence(answers),
        "next_checks": _checks(answers),
    }


def _unit(value: float) -> float:
    return min(max(float(value), 0.0), 1.0) if value == value else 0.0  # NaN → 0


def _evidence(answers: Sequence[Answer]) -> list[list[str]]:
    seen: set[str] = set()
    found: list[list[str]] = []
    for answer in answers:
        for source, text in answer.evidence:
            key = " ".join(text.lower().split())
            if key not in seen:
                seen.add(key)
                found.append([f"{answer.member}/{source}", text])
    return found[:12]


def _checks(answers: Sequence[Answer]) -> list[str]:
    seen: list[set[str]] = []
    found: list[str] = []
    for answer in answers:
        for check in answer.next_checks:
            words = terms(check)
            if all(similarity(words, other) < SAME for other in seen):
                seen.append(words)
                found.append(check)
    return found[:6]
