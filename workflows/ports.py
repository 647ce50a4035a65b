"""What the incident workflow needs from the outside, as small protocols.

The alert is a `plugins.contract.AlertContext` (the same data plugins and runbooks see).

- `Advisor` diagnoses, proposes, judges (policy), executes and verifies. The `rules` advisor
  (runbooks + plugins + policy) implements it now; model-backed advisors later do the same.
- `Presenter` shows an incident in its chat (one card, updated in place) and escalates. The
  bot implements it over Lark; graphs never import `bot`.

Everything crossing these protocols is plain data (TypedDicts of JSON values,
`workflows.payloads`), because it is kept in the workflow's checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from plugins.contract import AlertContext
from workflows.payloads import (
    AlertFacts,
    Diagnosis,
    ExecutionResult,
    PolicyVerdict,
    Proposal,
    Verification,
)

JSON = dict[str, Any]


def alert_json(alert: AlertContext) -> AlertFacts:
    """The alert as plain data (it is kept in the workflow's checkpoints)."""
    return {
        "title": alert.title,
        "severity": alert.severity,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "service": alert.service,
    }


def alert_from_json(data: AlertFacts) -> AlertContext:
    return AlertContext(
        title=str(data.get("title", "")),
        severity=str(data.get("severity", "warning")),
        labels={str(k): str(v) for k, v in dict(data.get("labels") or {}).items()},
        annotations={str(k): str(v) for k, v in dict(data.get("annotations") or {}).items()},
        service=data.get("service"),
    )


class Advisor(Protocol):
    async def diagnose(
        self, alert: AlertContext, *, incident_id: int, run_id: str
    ) -> Diagnosis: ...

    async def propose(
        self,
        alert: AlertContext,
        diagnosis: Diagnosis,
        *,
        incident_id: int | None = None,
        run_id: str | None = None,
    ) -> Proposal | None:
        """None when no remediation is known."""

    async def evaluate(self, proposal: Proposal, alert: AlertContext) -> PolicyVerdict: ...

    async def execute(
        self, proposal: Proposal, *, incident_id: int, run_id: str, dry_run: bool = False
    ) -> ExecutionResult:
        """Runs the remediation once (or a dry run)."""

    async def verify(
        self, alert: AlertContext, proposal: Proposal, execution: ExecutionResult
    ) -> Verification: ...

    async def remember(self, incident_id: int) -> None:
        """The incident is escalated or over: keep what was learnt so far (incident memory;
        remembering it again replaces the earlier entry); never raises."""


class Presenter(Protocol):
    async def show(self, incident_id: int) -> None:
        """Send the incident's card, or update it in place, from the stored state."""

    async def escalate(self, incident_id: int, reason: str) -> None:
        """Tell the on-call people (a message that @-mentions them)."""


class Recollection(Protocol):
    """A similar past incident (or an operator's note about one)."""

    @property
    def incident_id(self) -> int | None: ...
    @property
    def title(self) -> str: ...
    @property
    def similarity(self) -> float: ...
    @property
    def fix(self) -> str | None: ...
    @property
    def outcome(self) -> str | None: ...


class Memory(Protocol):
    """Incident memory (`workflows.memory`): what was seen before, and what fixed it."""

    async def similar(
        self, query: int | str, limit: int = 5, exclude_incident: int | None = None
    ) -> Sequence[Recollection]: ...

    async def remember_incident(self, incident_id: int) -> int | None: ...
