"""A week of one chat's alerts with answers known by hand (see `tests/report/test_facts.py`).

The window is `[SINCE, UNTIL)`; every timestamp is fixed, so every figure is exact:

- `DiskFull` (fp-a) flaps: resolved by its alert and fired again three times (4, 2, 6 minutes);
- `HighCPU` (fp-b) is handled by people: acknowledged in 5, 5 and 15 minutes;
- `QueueLag` (fp-c) reopens while its incident is still open, after 5, 6 and 5 hours;
- `NoisyProbe` (fp-d) fired 30 times into one incident opened before the window; nobody acted;
- `CertExpiry` (fp-e) recurs three times, handled by hand.
Plus rows that must not count: another chat, before and after the window, silenced alerts.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from storage.database import Database
from storage.models import (
    Action,
    Alert,
    Approval,
    Execution,
    Incident,
    Schedule,
    ScheduleRun,
)

CHAT = "oc_ops"
OTHER = "oc_other"
SINCE = datetime(2026, 1, 5, tzinfo=UTC)
UNTIL = SINCE + timedelta(days=7)
MIN, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def _labels(name: str, **more: str) -> dict[str, str]:
    return {"alertname": name, **more}


class Seeder:
    def __init__(self) -> None:
        self.rows: list[Any] = []
        self.alerts: list[tuple[Incident, datetime, str]] = []

    def incident(
        self,
        fingerprint: str,
        name: str,
        opened: datetime,
        *,
        chat: str = CHAT,
        service: str | None = None,
        labels: dict[str, str] | None = None,
        last_seen: timedelta = timedelta(0),
        acked: timedelta | None = None,
        resolved: timedelta | None = None,
        by: str | None = None,
    ) -> Incident:
        row = Incident(
            run_id=uuid.uuid4(),
            fingerprint=fingerprint,
            title=name,
            service=service,
            chat_id=chat,
            labels=labels or _labels(name),
            status="resolved" if resolved is not None else "open",
            created_at=opened,
            first_seen_at=opened,
            last_seen_at=opened + last_seen,
            acknowledged_at=opened + acked if acked is not None else None,
            acknowledged_by="ou_bob" if acked is not None else None,
            resolved_at=opened + resolved if resolved is not None else None,
            resolved_by=by if resolved is not None else None,
        )
        self.rows.append(row)
        return row

    def alert(self, incident: Incident, at: datetime, status: str = "firing") -> None:
        self.alerts.append((incident, at, status))

    async def save(self, db: Database) -> None:
        async with db.session() as session:
            session.add_all(self.rows)
            await session.flush()
            for incident, at, status in self.alerts:
                session.add(
                    Alert(
                        incident_id=incident.id,
                        source="alertmanager",
                        fingerprint=incident.fingerprint,
                        status=status,
                        title=incident.title,
                        labels=dict(incident.labels),
                        received_at=at,
                    )
                )


def incidents(seed: Seeder, s: datetime = SINCE) -> dict[str, list[Incident]]:
    """The incidents of the story from `s` on; alerts attached as the module docstring says."""
    a_labels = _labels("DiskFull", instance="db-1", service="db")
    a0 = seed.incident("fp-a", "DiskFull", s - DAY, labels=a_labels, resolved=10 * MIN, by="alert")
    a = [
        seed.incident(
            "fp-a",
            "DiskFull",
            s + hours * HOUR,
            labels=a_labels,
            service="db",
            resolved=minutes * MIN,
            by="alert",
        )
        for hours, minutes in ((1, 4), (2, 2), (3, 6))
    ]
    seed.alert(a0, s - DAY)
    for row in a:
        seed.alert(row, row.created_at)
        seed.alert(row, row.created_at + MIN, "resolved")
    b_labels = _labels("HighCPU", instance="web-1")
    b = [
        seed.incident(
            "fp-b",
            "HighCPU",
            s + 1 * DAY,
            labels=b_labels,
            service="web",
            acked=5 * MIN,
            resolved=30 * MIN,
            by="ou_bob",
        ),
        seed.incident(
            "fp-b",
            "HighCPU",
            s + 2 * DAY,
            labels=b_labels,
            service="web",
            acked=5 * MIN,
            resolved=60 * MIN,
            by="ou_bob",
        ),
        seed.incident(
            "fp-b", "HighCPU", s + 3 * DAY, labels=b_labels, service="web", acked=15 * MIN
        ),
    ]
    for row in b:
        seed.alert(row, row.created_at)
    c_labels = _labels("QueueLag", queue="orders")
    c = [
        seed.incident("fp-c", "QueueLag", s + opened * HOUR, labels=c_labels, last_seen=HOUR)
        for opened in (1, 7, 14, 20)
    ]
    for n in range(10):
        seed.alert(c[n % 4], c[n % 4].created_at + n * MIN)
    d_labels = _labels("NoisyProbe", instance="probe-1")
    d = [seed.incident("fp-d", "NoisyProbe", s - 2 * DAY, labels=d_labels)]
    for n in range(30):
        seed.alert(d[0], s + n * HOUR)
    e = [
        seed.incident(
            "fp-e", "CertExpiry", s + day * DAY, acked=ack * MIN, resolved=res * MIN, by="ou_carol"
        )
        for day, ack, res in ((4, 2, 60), (5, 5, 120), (6, 10, 30))
    ]
    for row in e:
        seed.alert(row, row.created_at)
    # must not count: another chat, after the window
    elsewhere = seed.incident("fp-x", "Elsewhere", s + DAY, chat=OTHER, acked=MIN)
    seed.alert(elsewhere, s + DAY)
    later = seed.incident("fp-a", "DiskFull", s + 7 * DAY + HOUR, labels=a_labels, acked=MIN)
    seed.alert(later, later.created_at)
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "elsewhere": [elsewhere]}


async def seed_week(db: Database, s: datetime = SINCE) -> dict[str, list[Incident]]:
    """Incidents and alerts (above), gates, automatic fixes and job runs from `s` on, saved."""
    seed = Seeder()
    made = incidents(seed, s)
    await seed.save(db)
    action_run, other_run = uuid.uuid4(), uuid.uuid4()
    async with db.session() as session:
        session.add_all(
            [
                Action(
                    run_id=action_run,
                    chat_id=CHAT,
                    requester="ou_alice",
                    plugin="command",
                    risk="medium",
                    status="expired",
                ),
                Action(
                    run_id=other_run,
                    chat_id=OTHER,
                    requester="ou_alice",
                    plugin="command",
                    risk="medium",
                    status="expired",
                ),
                _gate(made["b"][2].run_id, made["b"][2].id, "expired", s + 3 * DAY),
                _gate(action_run, None, "expired", s + 4 * DAY),
                _gate(other_run, None, "expired", s + 4 * DAY),  # another chat
                _gate(made["a"][0].run_id, made["a"][0].id, "expired", s - DAY),  # before
                _gate(made["e"][0].run_id, made["e"][0].id, "pending", s + 4 * DAY),
                _gate(made["e"][1].run_id, made["e"][1].id, "approved", s + 5 * DAY),
                _fix(made["a"][0], "succeeded", auto=True),
                _fix(made["a"][1], "failed", auto=True),
                _fix(made["a"][2], "running", auto=True),
                _fix(made["b"][0], "succeeded", auto=False),
                _fix(made["elsewhere"][0], "succeeded", auto=True),
                Execution(
                    run_id=action_run,
                    step="run",
                    plugin="command",
                    status="succeeded",
                    auto=True,
                    created_at=s + 4 * DAY,
                ),
            ]
        )
        job = Schedule(
            chat_id=CHAT,
            created_by="ou_alice",
            source_text="每天9点检查",
            task="检查磁盘",
            timezone="UTC",
            kind="cron",
            spec={},
            status="active",
        )
        other_job = Schedule(
            chat_id=OTHER,
            created_by="ou_alice",
            source_text="x",
            task="x",
            timezone="UTC",
            kind="cron",
            spec={},
            status="active",
        )
        session.add_all([job, other_job])
        await session.flush()
        session.add_all(
            [
                _run(job.id, s - DAY, "failed", "old failure"),
                _run(job.id, s + DAY, "failed", "timed out after 10s"),
                _run(job.id, s + 2 * DAY, "failed", "connection refused"),
                _run(job.id, s + 3 * DAY, "succeeded", None),
                _run(other_job.id, s + DAY, "failed", "elsewhere"),
            ]
        )
    return made


def _gate(run_id: uuid.UUID, incident_id: int | None, status: str, at: datetime) -> Approval:
    decided = at if status != "pending" else None
    return Approval(
        run_id=run_id,
        incident_id=incident_id,
        gate="proposal",
        interrupt_id=uuid.uuid4().hex,
        status=status,
        expires_at=at,
        decided_at=decided,
    )


def _fix(incident: Incident, status: str, *, auto: bool) -> Execution:
    return Execution(
        run_id=incident.run_id,
        incident_id=incident.id,
        step="execute",
        plugin="command",
        status=status,
        auto=auto,
        created_at=incident.created_at + MIN,
    )


def _run(schedule_id: int, at: datetime, status: str, error: str | None) -> ScheduleRun:
    return ScheduleRun(schedule_id=schedule_id, fire_time=at, status=status, error=error)
