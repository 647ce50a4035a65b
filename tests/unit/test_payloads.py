"""Workflow payloads are TypedDicts over the keys earlier versions checkpointed: a run paused
or resumed by the previous version (plain dicts) reads the same."""

from __future__ import annotations

import pytest

from workflows.payloads import (
    VERDICTS,
    ExecutionResult,
    GateDecision,
    GatePause,
    gate_decision,
)


def test_gate_payload_keys_are_the_checkpointed_ones() -> None:
    # what the previous version wrote with `interrupt({...})` and `resume(..., {...})`
    assert set(GatePause.__annotations__) == {"gate", "token"}
    assert set(GateDecision.__annotations__) == {"decision", "by"}
    assert {"ok", "summary", "output", "data", "interrupted"} <= set(
        ExecutionResult.__annotations__
    )


def test_a_decision_given_as_text_becomes_a_typed_one() -> None:
    assert gate_decision("approve", ("ou_a", "ou_b")) == {
        "decision": "approve",
        "by": ["ou_a", "ou_b"],
    }
    assert set(VERDICTS) == {"approve", "reject", "timeout", "escalate", "resolved"}
    with pytest.raises(ValueError, match="not a gate decision"):
        gate_decision("approved", [])
