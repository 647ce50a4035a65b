"""Why an incident was escalated, as a code with values (the chat words it: `cards/`), and as
the plain English sentence kept in `incidents.escalation_reason` for logs and the API.

    cause = cause_of(state)            # Cause("gate_rejected", {"gate": "diagnosis", "by": "ou_1"})
    cause.sentence()                   # "diagnosis rejected by ou_1"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

CauseCode = Literal[
    "gate_timeout",
    "gate_rejected",
    "by_hand",
    "policy_refused",
    "no_remediation",
    "fix_interrupted",
    "fix_failed",
    "verification_failed",
    "workflow_changed",
    "other",
]
INTERRUPTED = "interrupted: outcome unknown, not run again"  # a fix a crash cut short


@dataclass(frozen=True)
class Cause:
    code: CauseCode
    values: dict[str, str] = field(default_factory=dict)
    # the failed fix's or check's result as a code with values (`PluginResult.code`): the chat
    # words its `summary` from it
    finding: dict[str, Any] = field(default_factory=dict)

    def sentence(self) -> str:
        """The English sentence of the cause (logs, API, the stored reason)."""
        v = self.values
        sentences: dict[CauseCode, str] = {
            "gate_timeout": f"{v.get('gate', '')} approval timed out",
            "gate_rejected": f"{v.get('gate', '')} rejected by {v.get('by', '')}",
            "by_hand": f"escalated by hand by {v.get('by', '')}",
            "policy_refused": f"policy refused the fix: {v.get('reason', '')}".strip(),
            "no_remediation": "no known remediation for this alert",
            "fix_interrupted": f"remediation failed: {INTERRUPTED}",
            "fix_failed": f"remediation failed: {v.get('summary', '')}".strip(),
            "verification_failed": f"verification failed: {v.get('summary', '')}".strip(),
            "workflow_changed": (
                f"workflow changed: run {v.get('run', '')} is paused at {v.get('steps', '')}, "
                "a step this version no longer has; handle this incident by hand"
            ),
            "other": "escalated",
        }
        return sentences[self.code]

    def as_json(self) -> dict[str, Any]:
        found = {"finding": dict(self.finding)} if self.finding else {}
        return {"code": self.code, "values": dict(self.values), **found}


def cause_of(state: Mapping[str, Any]) -> Cause:
    """Why a run is escalating, from what happened in it."""
    for gate in ("proposal", "diagnosis"):
        decision = state.get(f"{gate}_decision")
        if isinstance(decision, dict) and decision.get("decision") in (
            "reject",
            "timeout",
            "escalate",
        ):
            if decision["decision"] == "timeout":
                return Cause("gate_timeout", {"gate": gate})
            who = ", ".join(str(b) for b in decision.get("by") or []) or "someone"
            if decision["decision"] == "escalate":
                return Cause("by_hand", {"by": who})
            return Cause("gate_rejected", {"gate": gate, "by": who})
    policy = state.get("policy") or {}
    if policy.get("kind") == "refuse":
        return Cause("policy_refused", {"reason": str(policy.get("reason", ""))})
    if "proposal" in state and not state.get("proposal"):
        return Cause("no_remediation")
    execution = state.get("execution") or {}
    if execution and not execution.get("ok"):
        summary = str(execution.get("summary", ""))
        # the flag says it; the summary is how runs checkpointed by an earlier version said it
        if execution.get("interrupted") or summary == INTERRUPTED:
            return Cause("fix_interrupted")
        return Cause("fix_failed", {"summary": summary}, _finding(execution))
    verification = state.get("verification") or {}
    if verification and not verification.get("ok"):
        summary = str(verification.get("summary", ""))
        return Cause("verification_failed", {"summary": summary}, _finding(verification))
    return Cause("other")


def _finding(result: Mapping[str, Any]) -> dict[str, Any]:
    found = result.get("finding")
    return dict(found) if isinstance(found, Mapping) and found.get("code") else {}
