"""Delete rows past their retention period (`storage.retention`), in short batches.

Every rule names a table and which of its rows may go. Rows are deleted `batch` at a time, each
batch its own transaction (`DELETE … WHERE id IN (SELECT id … LIMIT n)`), so a large backlog
never holds locks for long. A rule with dependent rows (a conversation's messages) locks a batch
of parents with `SKIP LOCKED`, deletes the children, then the parents. A dry run counts instead.

Cut-offs are computed by the database (`now()`), so the application's clock does not matter.
The SQL is assembled from the constants below only; every value is a bind parameter.

Usage::

    for step in await purge(db, RetentionConfig(), dry_run=True):
        print(step.name, step.rows, step.seconds)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, text

from storage.database import Database
from storage.retention import RetentionConfig
from storage.statuses import FINAL

CLOSED = FINAL  # an escalated incident still needs a person: its audit stays
_CLOSED_SQL = ", ".join(f"'{status}'" for status in CLOSED)
_HANDLED_SQL = "'done', 'ignored', 'failed'"  # never 'pending' or 'processing'


def cutoff(days: str = ":days") -> str:
    """SQL for "older than `days` days" (a bind parameter of whole days)."""
    return f"now() - make_interval(days => {days})"


@dataclass
class Step:
    """What one part of a cleanup pass deleted (or, in a dry run, would delete)."""

    name: str
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows
    seconds: float = 0.0

    def add(self, table: str, count: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + count


@dataclass(frozen=True)
class Rule:
    """Rows of `table` (aliased `t`) matching `where` may go; `children` (table, column
    referencing `t.id`) are deleted with them, first."""

    name: str
    table: str
    where: str
    params: dict[str, Any]
    children: tuple[tuple[str, str], ...] = ()


def rules(config: RetentionConfig) -> list[Rule]:
    """The enabled rules, in the order a pass runs them."""
    found: list[Rule] = []
    if config.inbound_days is not None:
        found.append(
            Rule(
                "inbound_events",
                "inbound_events",
                f"t.status IN ({_HANDLED_SQL}) "
                f"AND coalesce(t.handled_at, t.created_at) < {cutoff()}",
                {"days": config.inbound_days},
            )
        )
        found.append(  # the record that a delivery was triaged goes with the delivery
            Rule(
                "triaged_deliveries",
                "triaged_deliveries",
                f"t.created_at < {cutoff()}",
                {"days": config.inbound_days},
            )
        )
    if config.audit_days is not None:
        found.append(
            Rule(
                "audit",
                "incident_events",
                "t.incident_id IN (SELECT i.id FROM incidents i "  # noqa: S608
                f"WHERE i.status IN ({_CLOSED_SQL}) AND i.updated_at < {cutoff()})",
                {"days": config.audit_days},
            )
        )
        found.append(
            Rule(
                "audit",
                "incident_events",
                f"t.incident_id IS NULL AND t.created_at < {cutoff()}",
                {"days": config.audit_days},
            )
        )
    if config.llm_turns_days is not None:
        found.append(
            Rule(
                "llm_turns",
                "llm_turns",
                f"t.created_at < {cutoff()} AND (t.incident_id IS NULL OR t.incident_id IN "  # noqa: S608
                f"(SELECT i.id FROM incidents i WHERE i.status IN ({_CLOSED_SQL})))",
                {"days": config.llm_turns_days},
            )
        )
    if config.schedule_runs_days is not None:
        # the `keep`-th newest run of the job: it and every newer one stay (none of a job with
        # fewer runs goes: the comparison with NULL is not true)
        kth = (
            "(SELECT r.fire_time FROM schedule_runs r WHERE r.schedule_id = t.schedule_id "
            "ORDER BY r.fire_time DESC OFFSET :keep - 1 LIMIT 1)"
        )
        found.append(
            Rule(
                "schedule_runs",
                "schedule_runs",
                f"t.status <> 'running' AND t.fire_time < {cutoff()} AND t.fire_time < {kth}",
                {"days": config.schedule_runs_days, "keep": config.schedule_runs_keep},
            )
        )
    if config.conversations_days is not None:
        found.append(
            Rule(
                "conversations",
                "conversations",
                f"t.updated_at < {cutoff()} AND t.answering_message_id IS NULL",
                {"days": config.conversations_days},
                children=(("conversation_messages", "conversation_id"),),
            )
        )
    return found


async def purge(db: Database, config: RetentionConfig, *, dry_run: bool = False) -> list[Step]:
    """Apply every enabled rule; one `Step` per rule name, in order."""
    steps: dict[str, Step] = {}
    for rule in rules(config):
        step = steps.setdefault(rule.name, Step(rule.name))
        for table in (rule.table, *(child for child, _ in rule.children)):
            step.add(table, 0)  # listed parent first, even when nothing goes
        began = time.perf_counter()
        if dry_run:
            await _count(db, rule, step)
        else:
            await _delete(db, rule, config.batch, step)
        step.seconds += time.perf_counter() - began
    return list(steps.values())


async def _count(db: Database, rule: Rule, step: Step) -> None:
    chosen = f"SELECT t.id FROM {rule.table} t WHERE {rule.where}"  # noqa: S608
    async with db.session() as session:
        for child, column in rule.children:
            query = f"SELECT count(*) FROM {child} WHERE {column} IN ({chosen})"  # noqa: S608
            step.add(child, int(await session.scalar(text(query), rule.params) or 0))
        query = f"SELECT count(*) FROM ({chosen}) AS chosen"  # noqa: S608
        step.add(rule.table, int(await session.scalar(text(query), rule.params) or 0))


async def _delete(db: Database, rule: Rule, batch: int, step: Step) -> None:
    chosen = f"SELECT t.id FROM {rule.table} t WHERE {rule.where} LIMIT :batch"  # noqa: S608
    params = {**rule.params, "batch": batch}
    while True:
        async with db.session() as session:
            if not rule.children:
                statement = f"DELETE FROM {rule.table} WHERE id IN ({chosen})"  # noqa: S608
                deleted = _rowcount(await session.execute(text(statement), params))
            else:
                locked = f"{chosen} FOR UPDATE SKIP LOCKED"
                ids = list((await session.scalars(text(locked), params)).all())
                for child, column in rule.children:
                    statement = f"DELETE FROM {child} WHERE {column} = ANY(:ids)"  # noqa: S608
                    step.add(child, _rowcount(await session.execute(text(statement), {"ids": ids})))
                statement = f"DELETE FROM {rule.table} WHERE id = ANY(:ids)"  # noqa: S608
                deleted = _rowcount(await session.execute(text(statement), {"ids": ids}))
        step.add(rule.table, deleted)
        if deleted < batch:
            return


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)
