"""How long the bot keeps what it no longer needs: the YAML `retention:` section.

Each period is in days; `null` keeps that kind of row forever. What is never deleted, whatever
the configuration: inbound events that are still pending or being handled, the audit timeline
and model turns of an incident that is not closed, a conversation whose answer is being
streamed, the newest `schedule_runs_keep` runs of each job, and the checkpoints of a run that is
active or paused at a gate. Incidents themselves (and their alerts, diagnoses, proposals,
approvals, executions and the incident memory) are kept: they are the bot's history.

This module only describes the policy (it is imported by `bot.config`, so it stays cheap to
import); `storage.purge` deletes rows and `workflows.cleanup` runs a whole pass.

Usage::

    config = RetentionConfig(inbound_days=7, audit_days=None)   # audit kept forever
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DAY_LIMIT = 36_500


class RetentionConfig(BaseModel):
    """The `retention:` section: periods in days (`null`: keep forever) and the cleanup rhythm."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # the scheduled cleanup inside `larkops run` (`larkops gc` works either way)
    enabled: bool = True
    interval_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    # rows per DELETE statement (each its own short transaction); checkpoint threads go
    # `batch // 100` at a time (a finished run holds about 60 checkpoint rows)
    batch: int = Field(default=1000, ge=100, le=100_000)
    # checkpoints of a finished run (incident resolved, escalated or suppressed, run not paused
    # at a gate), counted from the incident's last change; 0: at the next pass
    checkpoints_after_days: int | None = Field(default=7, ge=0, le=DAY_LIMIT)
    # meanwhile keep only the finished run's final checkpoint (LangGraph `aprune`)
    prune_finished: bool = True
    # handled inbound events (done, ignored, failed), counted from when they were handled
    inbound_days: int | None = Field(default=14, ge=1, le=DAY_LIMIT)
    # the audit timeline of closed incidents, counted from the incident's last change, and
    # audit rows that belong to no incident, counted from when they were written
    audit_days: int | None = Field(default=365, ge=1, le=DAY_LIMIT)
    # model calls (the redacted prompts are the biggest rows the bot writes)
    llm_turns_days: int | None = Field(default=90, ge=1, le=DAY_LIMIT)
    # finished runs of scheduled jobs, by fire time; the newest `schedule_runs_keep` of each job
    # stay (`/job` shows 10, and missed-fire catch-up starts from the last one)
    schedule_runs_days: int | None = Field(default=90, ge=1, le=DAY_LIMIT)
    schedule_runs_keep: int = Field(default=10, ge=1, le=10_000)
    # the chat agent's conversations (with their messages), counted from the last question
    conversations_days: int | None = Field(default=30, ge=1, le=DAY_LIMIT)
