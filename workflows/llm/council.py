"""A council of models: one question asked of every configured model at once, answers merged.

`convene` opens a batch (once per key: a diagnosis's run, an `/ask` message) with one task per
model in Postgres (`storage.council`), claims every task it can and runs them in parallel, each
through its own `DiagnosisAgent` and `ModelGuard` (redaction, the shared rate limit, retries,
the incident's, the day's and the model's own budget). A task another replica holds is waited
for while its lease lasts; a lease that ran out (the replica died mid-call) is claimed again,
and the fenced `finish` keeps exactly one result per model. At the deadline what is still out is
cancelled and marked `timed_out`: one slow or dead model never holds the others. The answers are
merged by `workflows.llm.consensus`. `sweep` (every replica, from the timers) finishes batches
whose caller is gone.

Usage::

    council = Council(db, [Seat("gpt", agent_a), Seat("claude", agent_b)], scrub, seconds=60)
    result = await council.convene(key=f"diagnosis:{run_id}", purpose="diagnosis",
                                   incident_id=7, run_id=run_id, alert=alert)
    result.merged["hypotheses"], result.members[0]["status"]
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter

from plugins.contract import AlertContext
from storage import council as store
from storage.database import Database
from storage.models import CouncilTask
from storage.notices import paced
from storage.statuses import CouncilPurpose
from storage.tasks import cancel
from workflows.llm.agent import AgentOutcome, DiagnosisAgent
from workflows.llm.consensus import Answer, CouncilView, merge
from workflows.llm.prompt import Scrubber

log = logging.getLogger(__name__)

# counted once per task, by the replica whose result (or deadline) ended it
COUNCIL_TASKS = Counter(
    "larkops_council_tasks_total",
    "Council tasks by how they ended: answered, failed (an error, garbage, a budget), timed_out",
    ["outcome"],
)

# seconds a claim lasts unless renewed (every third of it, while the call runs): a replica killed
# mid-call loses its tasks this long after, well within a council's deadline
LEASE = 15.0
POLL = 0.25  # seconds between looks at tasks another replica runs
# The council's deadline cancels what is still out; a member's own deadline comes a little later,
# so a slow model is `timed_out` (cut off by the council), not `failed` (by its own timeout).
MEMBER_GRACE = 1.0


@dataclass(frozen=True)
class Seat:
    """One member of the council: its name (as configured) and its agent (model and guard)."""

    name: str
    agent: DiagnosisAgent

    @property
    def provider(self) -> str:
        return self.agent.guard.model.provider

    @property
    def model(self) -> str:
        return self.agent.guard.model.model


_Fresh = tuple[Mapping[str, Any], int | None, float, dict[str, int]]


@dataclass(frozen=True)
class Verdict:
    """A council's result: the merged view (`consensus.merge`) and each member's task."""

    batch_id: int
    merged: Mapping[str, Any]
    members: tuple[Mapping[str, Any], ...]

    @property
    def answered(self) -> bool:
        return bool(self.merged.get("answered"))


class Council:
    def __init__(
        self,
        db: Database,
        seats: Sequence[Seat],
        scrub: Scrubber,
        *,
        seconds: float,
        replica: str | None = None,
        lease_seconds: float = LEASE,
    ) -> None:
        if len(seats) < 2:
            raise ValueError("a council needs at least two models")
        self.db = db
        self.seats = {seat.name: seat for seat in seats}
        self.scrub = scrub
        self.seconds = seconds
        self.lease = lease_seconds
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.seats)

    async def convene(
        self,
        *,
        key: str,
        purpose: CouncilPurpose,
        alert: AlertContext,
        incident_id: int | None = None,
        run_id: str | None = None,
        timeline: Sequence[str] = (),
        similar: Sequence[str] = (),
        members: Sequence[str] | None = None,
    ) -> Verdict:
        """Ask every member (or the named ones) and merge; the batch of `key` is found again
        when it exists (a run continued by another replica)."""
        chosen = [self.seats[name] for name in (members or self.names) if name in self.seats]
        scrub = self.scrub  # stored redacted, as each model would see it
        brief = {
            "alert": {
                "title": scrub.text(alert.title),
                "severity": scrub.text(alert.severity),
                "labels": scrub.labels_of(alert.labels),
                "annotations": scrub.labels_of(alert.annotations),
                "service": scrub.text(alert.service) if alert.service else None,
            },
            "timeline": [scrub.text(line) for line in timeline],
            "similar": [scrub.text(line) for line in similar],
            "run_id": run_id,
        }
        deadline = time.monotonic() + self.seconds
        batch_id, claimed = await store.open_batch(
            self.db,
            key=key,
            purpose=purpose,
            incident_id=incident_id,
            brief=brief,
            deadline_at=datetime.now(UTC) + timedelta(seconds=self.seconds),
            members=[(seat.name, seat.provider, seat.model) for seat in chosen],
            replica=self.replica,
            lease_seconds=self.lease,
        )
        if not claimed:  # it existed: finish it as the sweep would
            return await self._work(batch_id)
        return await self._work(batch_id, fresh=(brief, incident_id, deadline, claimed))

    async def sweep(self) -> int:
        """Finish batches whose caller is gone: re-run tasks whose lease ran out (before the
        deadline), time out the rest, merge. How many batches were finished."""
        done = 0
        for batch_id in await store.stale(self.db):
            await self._work(batch_id)
            done += 1
        return done

    async def sweep_forever(self, every: float, changed: asyncio.Event | None = None) -> None:
        """`sweep` every `every` seconds while a batch runs (every replica runs one); with
        none, after the next batch change (`changed`), or a minute."""

        async def round_() -> None:
            try:
                await self.sweep()
            except Exception:  # keep sweeping; the next round retries
                log.exception("council sweep failed")

        await paced(round_, lambda: store.in_flight(self.db), every=every, changed=changed)

    async def _work(self, batch_id: int, fresh: _Fresh | None = None) -> Verdict:
        """Run what can be run of the batch until every task is final or the deadline; merge.
        `fresh`: the batch was just made here with these claims (nothing to read first)."""
        claimed: dict[str, int] = {}
        if fresh is None:
            row = await store.batch(self.db, batch_id)
            if row.status == "done":
                rows = await store.tasks(self.db, batch_id)
                return self._verdict(batch_id, dict(row.merged), rows)
            brief: Mapping[str, Any] = dict(row.brief)
            incident_id = row.incident_id
            deadline = time.monotonic() + (row.deadline_at - datetime.now(UTC)).total_seconds()
        else:
            brief, incident_id, deadline, claimed = fresh
        mine: dict[str, asyncio.Task[None]] = {}
        attempts: dict[str, int] = {}
        renewed = time.monotonic()
        try:
            while True:
                if claimed and not mine:
                    open_tasks = list(claimed)  # just made and claimed here: nothing to read
                else:
                    open_tasks = [
                        t.member
                        for t in await store.tasks(self.db, batch_id)
                        if t.status not in store.FINAL
                    ]
                    wanted = [m for m in open_tasks if m in self.seats and m not in mine]
                    claimed = {}
                    if wanted and deadline > time.monotonic():
                        claimed = await store.claim(
                            self.db,
                            batch_id,
                            wanted,
                            replica=self.replica,
                            lease_seconds=self.lease,
                        )
                left = deadline - time.monotonic()
                if not open_tasks or left <= 0:
                    break
                for member, attempt in claimed.items():
                    attempts[member] = attempt
                    mine[member] = asyncio.create_task(
                        self._run(
                            batch_id, self.seats[member], attempt, brief, incident_id, deadline
                        )
                    )
                running = {m: job for m, job in mine.items() if not job.done()}
                if running and time.monotonic() - renewed >= self.lease / 3:
                    held = {m: attempts[m] for m in running}
                    await store.renew(
                        self.db, batch_id, held, replica=self.replica, lease_seconds=self.lease
                    )
                    renewed = time.monotonic()
                theirs = [m for m in open_tasks if m not in running]
                # every open task runs here: wait for them, renewing their leases; another
                # replica holds one: look again shortly (its lease may run out)
                wait = min(left, self.lease / 3) if not theirs else min(left, POLL)
                if running:
                    await asyncio.wait(
                        running.values(),
                        timeout=wait,
                        return_when=asyncio.FIRST_COMPLETED if theirs else asyncio.ALL_COMPLETED,
                    )
                else:
                    await asyncio.sleep(wait)
        finally:
            await cancel(*mine.values())
        ended = await store.conclude(self.db, batch_id, self._merged)
        COUNCIL_TASKS.labels("timed_out").inc(ended.timed_out)
        return self._verdict(batch_id, ended.merged, ended.tasks)

    async def _run(
        self,
        batch_id: int,
        seat: Seat,
        attempt: int,
        brief: Mapping[str, Any],
        incident_id: int | None,
        deadline: float,
    ) -> None:
        """One member's diagnosis, its result recorded under its claim."""
        raw = brief.get("alert") or {}
        alert = AlertContext(
            str(raw.get("title", "")),
            str(raw.get("severity", "")),
            {str(k): str(v) for k, v in (raw.get("labels") or {}).items()},
            {str(k): str(v) for k, v in (raw.get("annotations") or {}).items()},
            raw.get("service"),
        )
        started = time.monotonic()
        try:
            outcome = await seat.agent.diagnose(
                alert,
                incident_id=incident_id,
                run_id=brief.get("run_id"),
                timeline=[str(t) for t in brief.get("timeline") or []],
                similar=[str(s) for s in brief.get("similar") or []],
                deadline=deadline + MEMBER_GRACE,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a member's bug must not sink the others
            log.exception("council member %s failed", seat.name)
            outcome = AgentOutcome(findings=None, reason=f"{type(exc).__name__}")
        config = seat.agent.guard.config
        cost = (
            outcome.tokens_in * config.price_per_mtok_in
            + outcome.tokens_out * config.price_per_mtok_out
        ) / 1_000_000
        result = store.Outcome(
            "failed" if outcome.findings is None else "answered",
            latency_ms=round((time.monotonic() - started) * 1000),
            prompt_tokens=outcome.tokens_in,
            completion_tokens=outcome.tokens_out,
            cost_usd=cost,
            answer=self._answer(outcome),
            error=None if outcome.findings else (outcome.reason or "no answer")[:300],
        )
        if await store.finish(self.db, batch_id, seat.name, attempt, result):
            COUNCIL_TASKS.labels(result.status).inc()

    def _answer(self, outcome: AgentOutcome) -> dict[str, Any]:
        """A member's findings as stored: redacted, tool calls named."""
        found = outcome.findings
        if found is None:
            return {}
        tools = {call.id: call.tool for call in outcome.calls}
        return {
            "summary": self.scrub.text(found.summary),
            "hypotheses": [[self.scrub.text(h.cause), h.confidence] for h in found.hypotheses],
            "evidence": [
                [tools.get(e.tool_call_id or "", "model"), self.scrub.text(e.text)]
                for e in found.evidence
            ],
            "next_checks": [self.scrub.text(c) for c in found.next_checks],
            "partial": outcome.partial,
        }

    @staticmethod
    def _merged(rows: Sequence[CouncilTask]) -> CouncilView:
        answers = [
            Answer(
                member=row.member,
                summary=str(row.answer.get("summary", "")),
                hypotheses=[
                    (str(h[0]), float(h[1]))
                    for h in row.answer.get("hypotheses") or []
                    if len(h) == 2
                ],
                evidence=[
                    (str(e[0]), str(e[1])) for e in row.answer.get("evidence") or [] if len(e) == 2
                ],
                next_checks=[str(c) for c in row.answer.get("next_checks") or []],
            )
            for row in rows
            if row.status == "answered"
        ]
        return merge(answers, asked=len(rows))

    @staticmethod
    def _verdict(batch_id: int, merged: dict[str, Any], rows: Sequence[CouncilTask]) -> Verdict:
        members = tuple(
            {
                "name": row.member,
                "provider": row.provider,
                "model": row.model,
                "status": row.status,
                "latency_ms": row.latency_ms,
                "tokens_in": row.prompt_tokens,
                "tokens_out": row.completion_tokens,
                "cost_usd": float(row.cost_usd),
                "summary": str(row.answer.get("summary", "")),
                "hypotheses": list(row.answer.get("hypotheses") or []),
                "error": row.error or "",
            }
            for row in rows
        )
        return Verdict(batch_id, merged, members)
