"""The incident life cycle is one table (`storage.statuses.MOVES`): who may move an incident
to which status from where. Every writer of `incidents.status` asks it."""

from __future__ import annotations

import pytest

from storage.statuses import FINAL, UNRESOLVED, WORKFLOW, may_acknowledge, may_move


def test_the_workflow_moves_among_its_own_statuses_and_out() -> None:
    assert may_move("open", "diagnosing", "workflow")
    assert may_move("awaiting_approval", "diagnosing", "workflow")
    assert may_move("remediating", "resolved", "workflow")
    assert may_move("diagnosing", "escalated", "workflow")
    assert not may_move("escalated", "diagnosing", "workflow")  # a person has it now
    assert not may_move("resolved", "escalated", "workflow")


def test_an_approver_escalates_a_workflow_incident_and_resolves_any_unresolved_one() -> None:
    for status in WORKFLOW:
        assert may_move(status, "escalated", "approver")
    assert not may_move("escalated", "escalated", "approver")
    for status in UNRESOLVED:
        assert may_move(status, "resolved", "approver")
    assert not may_move("resolved", "resolved", "approver")
    assert not may_move("escalated", "diagnosing", "approver")


def test_the_alerts_recovery_resolves_anything_but_a_running_fix() -> None:
    assert may_move("escalated", "resolved", "alert")
    assert may_move("awaiting_approval", "resolved", "alert")
    assert not may_move("remediating", "resolved", "alert")  # the fix finishes and verifies
    assert not may_move("open", "escalated", "alert")


@pytest.mark.parametrize("final", FINAL)
def test_nothing_leaves_a_final_status(final: str) -> None:
    for by in ("workflow", "alert", "approver"):
        for to in (*UNRESOLVED, "resolved"):
            assert not may_move(final, to, by)  # type: ignore[arg-type]


def test_an_unresolved_incident_may_be_acknowledged_escalated_too() -> None:
    for status in UNRESOLVED:
        assert may_acknowledge(status)
    for status in FINAL:
        assert not may_acknowledge(status)
