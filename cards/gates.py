"""Approval button payloads. The callback value carries `"action": "approve"` or
`"action": "reject"` beside the signed fields: run id, gate, interrupt id, incident and an expiry
(epoch seconds) after which the button is refused without looking further. An action requested
in the chat (`/run`) uses the same buttons with `incident_id` null."""

from __future__ import annotations

from cards.actions import ActionPayload


class GateAction(ActionPayload):
    run_id: str
    gate: str
    interrupt_id: str
    incident_id: int | None  # None: the gate of a chat-requested action (/run)
    exp: int


class Approve(GateAction, action="approve"):
    """Approve the gate."""


class Reject(GateAction, action="reject"):
    """Reject the gate (the run escalates)."""
