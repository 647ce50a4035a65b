"""Approval button payloads. The callback value carries `"action": "approve"` or
`"action": "reject"` beside the signed fields: run id, gate, interrupt id, incident and an expiry
(epoch seconds) after which the button is refused without looking further. An action requested
in the chat (`/run`) uses the same buttons with `incident_id` null."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from cards.actions import ActionPayload, pack


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


class OpenGate(Protocol):
    """What the buttons of a pending gate are signed from (a `storage.models.Approval`)."""

    run_id: uuid.UUID
    gate: str
    interrupt_id: str
    incident_id: int | None
    expires_at: datetime


def gate_buttons(gate: OpenGate, key: bytes) -> dict[str, dict[str, Any]]:
    """The signed Approve / Reject values of a pending gate (`approve_value`, `reject_value`),
    good until the gate expires: the one place they are made."""
    fields: dict[str, Any] = {
        "run_id": str(gate.run_id),
        "gate": gate.gate,
        "interrupt_id": gate.interrupt_id,
        "incident_id": gate.incident_id,
        "exp": int(gate.expires_at.timestamp()),
    }
    return {
        "approve_value": pack(Approve(**fields), key),
        "reject_value": pack(Reject(**fields), key),
    }
