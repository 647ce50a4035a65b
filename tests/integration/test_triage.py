"""Triage on real Postgres: folding, storms, resolution, silences, concurrent deliveries."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from sqlalchemy import text

from storage.database import Database
from storage.models import Silence
from workflows.intake.alert import ParsedAlert
from workflows.silences import SilenceError, matches, parse_duration, parse_matcher
from workflows.triage import Delivery, Hooks, Triage, TriageSettings


def alert(
    name: str, *, status: Literal["firing", "resolved"] = "firing", instance: str = "db-1"
) -> ParsedAlert:
    return ParsedAlert(
        source="alertmanager",
        status=status,
        title=name,
        severity="warning",
        labels={"alertname": name, "instance": instance},
        annotations={},
        starts_at=datetime.now(UTC),
        ends_at=None,
        fingerprint=f"fp-{name}-{instance}",
        service="db",
        summary="",
        generator_url=None,
        raw={},
    )


@dataclass
class Calls:
    new: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    storms: list[str] = field(default_factory=list)

    def hooks(self) -> Hooks:
        async def new(i: int) -> None:
            self.new.append(i)

        async def changed(i: int) -> None:
            self.changed.append(i)

        async def resolved(i: int) -> None:
            self.resolved.append(i)

        async def storm(chat: str) -> None:
            self.storms.append(chat)

        return Hooks(new, changed, resolved, storm)


async def _scalar(db: Database, sql: str) -> object:
    async with db.engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar()


async def test_repeats_fold_into_one_incident(migrated_db: Database) -> None:
    calls = Calls()
    triage = Triage(migrated_db, TriageSettings(), calls.hooks())
    first = await triage.receive([alert("DiskFull")], "oc_ops")
    again = await triage.receive([alert("DiskFull"), alert("DiskFull")], "oc_ops")
    assert len(first.new) == 1
    assert again.folded == first.new
    assert calls.new == first.new
    assert calls.changed == first.new
    assert await _scalar(migrated_db, "SELECT alert_count FROM incidents") == 3
    assert await _scalar(migrated_db, "SELECT count(*) FROM alerts") == 3


async def test_dedupe_is_per_destination_chat(migrated_db: Database) -> None:
    """The same alert posted in two chats is two incidents: chat B's team sees its own, and a
    recovery in chat B closes B's incident, not A's."""
    calls = Calls()
    triage = Triage(migrated_db, TriageSettings(), calls.hooks())
    in_a = await triage.receive([alert("DiskFull")], "oc_team_a")
    in_b = await triage.receive([alert("DiskFull")], "oc_team_b")
    again_in_b = await triage.receive([alert("DiskFull")], "oc_team_b")
    assert len(in_a.new) == len(in_b.new) == 1
    assert in_a.new != in_b.new
    assert again_in_b.folded == in_b.new
    resolved_in_b = await triage.receive([alert("DiskFull", status="resolved")], "oc_team_b")
    assert resolved_in_b.resolved == in_b.new
    statuses = await _scalar(
        migrated_db, "SELECT string_agg(chat_id || '=' || status, ',' ORDER BY id) FROM incidents"
    )
    assert statuses == "oc_team_a=open,oc_team_b=resolved"


async def test_a_replayed_delivery_counts_once(migrated_db: Database) -> None:
    """The inbox marks a delivery done after triage committed; a crash in between replays it.
    Triage records the delivery in its own transaction, so the replay (even a concurrent one)
    changes nothing; another delivery of the same alerts still folds."""
    calls = Calls()
    triage = Triage(migrated_db, TriageSettings(), calls.hooks())
    first = await triage.receive([alert("DiskFull"), alert("DiskFull")], "oc_ops", delivery="ev-1")
    replays = await asyncio.gather(
        *(triage.receive([alert("DiskFull")] * 2, "oc_ops", delivery="ev-1") for _ in range(3))
    )
    assert len(first.new) == 1
    assert not first.replayed
    assert all(r.replayed and not r.new and not r.folded for r in replays)
    assert await _scalar(migrated_db, "SELECT alert_count FROM incidents") == 2
    assert await _scalar(migrated_db, "SELECT count(*) FROM alerts") == 2
    assert calls.new == first.new
    assert calls.changed == []  # the replays showed nothing again
    later = await triage.receive([alert("DiskFull")], "oc_ops", delivery="ev-2")
    assert later.folded == first.new
    assert await _scalar(migrated_db, "SELECT alert_count FROM incidents") == 3


async def test_alert_storm_makes_one_incident_per_fingerprint(migrated_db: Database) -> None:
    calls = Calls()
    triage = Triage(migrated_db, TriageSettings(storm_threshold=5), calls.hooks())
    alerts = [alert(f"Alert{n % 20}") for n in range(1000)]
    random.Random(7).shuffle(alerts)
    deliveries = [alerts[i : i + 50] for i in range(0, 1000, 50)]
    await asyncio.gather(*(triage.receive(batch, "oc_ops") for batch in deliveries))
    assert await _scalar(migrated_db, "SELECT count(*) FROM incidents") == 20
    assert await _scalar(migrated_db, "SELECT sum(alert_count) FROM incidents") == 1000
    assert await _scalar(migrated_db, "SELECT count(*) FROM alerts") == 1000
    # only the first few start workflows and cards; the rest are grouped on the storm card
    assert len(calls.new) == 5
    assert await _scalar(migrated_db, "SELECT count(*) FROM incidents WHERE storm") == 15
    assert calls.storms
    assert set(calls.storms) == {"oc_ops"}


async def test_resolved_alert_closes_the_incident(migrated_db: Database) -> None:
    calls = Calls()
    triage = Triage(migrated_db, TriageSettings(), calls.hooks())
    opened = await triage.receive([alert("Latency")], "oc_ops")
    closed = await triage.receive([alert("Latency", status="resolved")], "oc_ops")
    assert closed.resolved == opened.new
    assert calls.resolved == opened.new
    assert await _scalar(migrated_db, "SELECT status FROM incidents") == "resolved"
    # a new firing after resolution opens a new incident
    reopened = await triage.receive([alert("Latency")], "oc_ops")
    assert reopened.new
    assert reopened.new != opened.new


async def test_resolution_during_a_running_fix_leaves_it_alone(migrated_db: Database) -> None:
    triage = Triage(migrated_db, TriageSettings(), Calls().hooks())
    opened = await triage.receive([alert("Latency")], "oc_ops")
    async with migrated_db.session() as session:
        await session.execute(text("UPDATE incidents SET status = 'remediating'"))
    closed = await triage.receive([alert("Latency", status="resolved")], "oc_ops")
    assert closed.resolved == []
    assert opened.new
    assert await _scalar(migrated_db, "SELECT status FROM incidents") == "remediating"


async def test_silenced_alerts_start_nothing(migrated_db: Database) -> None:
    calls = Calls()
    triage = Triage(migrated_db, TriageSettings(), calls.hooks())
    async with migrated_db.session() as session:
        session.add(
            Silence(
                chat_id="oc_ops",
                matcher="instance=~db-.*",
                created_by="ou_a",
                matchers={"terms": parse_matcher("instance=~db-.*")},
                ends_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
    outcome = await triage.receive([alert("X"), alert("Y", instance="web-1")], "oc_ops")
    assert outcome.silenced == 1
    assert len(outcome.new) == 1
    # another chat is not silenced by it
    other = await triage.receive([alert("X")], "oc_dev")
    assert other.silenced == 0


def test_matcher_syntax() -> None:
    terms = parse_matcher('alertname=DiskFull,instance=~"db-.*",env!=dev')
    assert matches(terms, {"alertname": "DiskFull", "instance": "db-2", "env": "prod"})
    assert not matches(terms, {"alertname": "DiskFull", "instance": "web", "env": "prod"})
    assert not matches(terms, {"alertname": "DiskFull", "instance": "db-2", "env": "dev"})
    assert matches(parse_matcher("alertname=HighCPU"), {"alertname": "HighCPU"})
    problems = {
        "": "no_matcher",
        "a=~(": "bad_regex",
        "x y z = w": "unreadable",
        "foo": "bare_word",
    }
    for bad, code in problems.items():
        with pytest.raises(SilenceError) as caught:
            parse_matcher(bad)
        assert caught.value.code == code
    assert parse_duration("1h30m") == timedelta(hours=1, minutes=30)
    for bad_duration in ("", "10x", "8d", "0m"):
        with pytest.raises(SilenceError):
            parse_duration(bad_duration)


def _interleaved(prefix: str, seed: int) -> list[Delivery]:
    """Deliveries to three chats: repeats, resolutions, re-openings and a storm of new
    fingerprints, interleaved as a busy Alertmanager sends them."""
    rng = random.Random(seed)
    deliveries = []
    for n in range(60):
        alerts = []
        for _ in range(rng.randint(1, 8)):
            name = f"Alert{rng.randint(0, 12 if n < 40 else 30)}"
            status: Literal["firing", "resolved"] = "resolved" if rng.random() < 0.15 else "firing"
            alerts.append(alert(name, status=status, instance=f"db-{rng.randint(1, 2)}"))
        chat = f"{prefix}oc_{rng.choice(['ops', 'db', 'web'])}"
        deliveries.append(Delivery(alerts, chat, f"{prefix}ev-{n}"))
    return deliveries


async def _incidents(db: Database, prefix: str) -> list[tuple[object, ...]]:
    """Each chat's incidents in the order they opened, with what triage decided for them."""
    async with db.engine.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT substr(i.chat_id, length(:p) + 1), i.fingerprint, i.status, i.alert_count,"
                " i.storm, (SELECT count(*) FROM alerts a WHERE a.incident_id = i.id), "
                "row_number() OVER (PARTITION BY i.chat_id ORDER BY i.id) "
                "FROM incidents i WHERE i.chat_id LIKE :p || '%' ORDER BY i.chat_id, i.id"
            ),
            {"p": prefix},
        )
        return [tuple(row) for row in found]


async def test_a_batch_triages_as_its_deliveries_one_by_one(migrated_db: Database) -> None:
    """The inbox hands triage many deliveries at once: the incidents, their alert counts,
    resolutions and storm decisions are those of the deliveries fed one at a time, and each
    incident's card is refreshed once for the batch however often it repeats."""
    settings = TriageSettings(storm_threshold=6)
    one_by_one, batched = Calls(), Calls()
    single = Triage(migrated_db, settings, one_by_one.hooks())
    for delivery in _interleaved("a/", 3):
        await single.receive(delivery.alerts, delivery.chat_id, delivery=delivery.id)
    batch = Triage(migrated_db, settings, batched.hooks())
    deliveries = _interleaved("b/", 3)
    outcome = await batch.receive_batch(deliveries)
    expected = await _incidents(migrated_db, "a/")
    assert len(expected) > 20  # the mix opened, resolved and reopened, and stormed
    assert {row[2] for row in expected} == {"open", "resolved"}
    assert any(row[4] for row in expected)
    assert await _incidents(migrated_db, "b/") == expected
    assert len(batched.new) == len(one_by_one.new)
    assert len(batched.resolved) == len(one_by_one.resolved)
    assert len(batched.changed) == len(set(batched.changed))  # each card once per batch
    assert sorted(c.removeprefix("b/") for c in batched.storms) == sorted(
        {c.removeprefix("a/") for c in one_by_one.storms}
    )
    # a replay of the whole batch (a worker died before marking it done) counts nothing
    again = await batch.receive_batch(deliveries)
    assert again.replayed
    assert again.new + again.folded + again.resolved == []
    assert await _incidents(migrated_db, "b/") == expected
    assert outcome.folded
