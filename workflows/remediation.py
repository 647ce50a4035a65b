"""The remediation steps every run shares, an incident's and an action's alike: a fix is run
at most once per run, whatever crashes and replays happen around it.

The step is claimed in `executions` (unique run + step) before the plugin starts. A replay
finds the claim: a finished run gives its recorded result back; a claim still `running` means
the process died while the plugin ran, and the run is reported as interrupted, outcome
unknown, never started a second time.

Usage::

    result = await run_once(db, Step(run_id, "execute", "command", params), act=run_the_plugin)
    result["ok"], result["summary"], result.get("interrupted")
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from storage import executions
from storage.database import Database
from workflows.escalation import INTERRUPTED
from workflows.payloads import ExecutionResult


@dataclass(frozen=True)
class Step:
    """One claimable plugin run of a workflow run."""

    run_id: str
    name: str  # the step's name in `executions` ("execute" for incidents, "run" for actions)
    plugin: str
    params: dict[str, Any] = field(default_factory=dict)
    incident_id: int | None = None
    dry_run: bool = False
    target: str | None = None
    auto: bool = False  # ran without a person (the global auto budget counts it)
    requested_by: str | None = None


async def run_once(
    db: Database,
    step: Step,
    act: Callable[[], Awaitable[ExecutionResult]],
    *,
    starting: Callable[[], Awaitable[None]] | None = None,
) -> ExecutionResult:
    """Run `act` (the plugin) unless an earlier attempt of this run already started it; the
    result as `{"ok", "summary", "output", "data"}`, with `"interrupted": True` when an earlier
    attempt died mid-run. `starting` is called once, just before the plugin starts."""
    row, fresh = await executions.begin_execution(
        db,
        step.run_id,
        step.name,
        step.plugin,
        dict(step.params),
        incident_id=step.incident_id,
        dry_run=step.dry_run,
        target=step.target,
        auto=step.auto,
        requested_by=step.requested_by,
    )
    if fresh:
        if starting is not None:
            await starting()
        result = await act()
        await executions.finish_execution(
            db,
            row.id,
            ok=bool(result.get("ok")),
            summary=str(result.get("summary", "")),
            output=str(result.get("output", "")),
            data=dict(result.get("data") or {}),
        )
        return result
    if row.status == "running":
        # an earlier attempt died while the plugin ran: never run it a second time
        await executions.finish_execution(
            db, row.id, ok=False, summary=INTERRUPTED, error="interrupted"
        )
        return {"ok": False, "summary": INTERRUPTED, "output": "", "interrupted": True}
    ended: ExecutionResult = {
        "ok": row.status == "succeeded",
        "summary": row.summary or "",
        "output": row.output or "",
        "data": dict(row.data or {}),
    }
    if row.error == "interrupted":  # an earlier attempt found it cut short
        ended["interrupted"] = True
    return ended
