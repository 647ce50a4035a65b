"""The report's numbers against a seeded week whose answers were worked out by hand
(`tests/report/seed.py`), on the real Postgres."""

from __future__ import annotations

import pytest

from storage.database import Database
from storage.models import DedupeOverride
from storage.reports import hygiene_facts
from tests.report.seed import CHAT, SINCE, UNTIL, seed_week
from workflows.hygiene import HygieneRules, suggest


async def test_every_number_of_a_known_week(migrated_db: Database) -> None:
    await seed_week(migrated_db)
    facts = await hygiene_facts(migrated_db, CHAT, SINCE, UNTIL)

    # volume: 6 + 3 + 10 + 30 + 3 notifications, of which 3 are DiskFull's resolutions
    assert (facts.alerts, facts.firing, facts.incidents) == (52, 49, 13)
    # acknowledged in 5, 5, 15 (HighCPU) and 2, 5, 10 minutes (CertExpiry)
    assert facts.mtta.count == 6
    assert facts.mtta.median == 300.0
    assert facts.mtta.p90 == pytest.approx(750.0)  # 600 + 0.5 × (900 − 600)
    # resolved in 4, 2, 6, 30, 60, 60, 120, 30 minutes
    assert facts.mttr.count == 8
    assert facts.mttr.median == 1800.0
    assert facts.mttr.p90 == pytest.approx(4680.0)  # 3600 + 0.3 × (7200 − 3600)
    # an incident gate and a /run gate of this chat; not another chat's, not before the window
    assert facts.approvals_expired == 2
    # two DiskFull fixes and a /run fix ran by themselves: 2 succeeded, 1 failed, 1 running
    assert (facts.auto_fixes, facts.auto_fixes_ok, facts.auto_fixes_failed) == (4, 2, 1)
    assert facts.auto_fix_rate == 2 / 3

    assert [f.alertname for f in facts.noisy] == [
        "NoisyProbe",
        "QueueLag",
        "DiskFull",
        "HighCPU",
        "CertExpiry",
    ]
    by_name = {f.alertname: f for f in facts.fingerprints}
    assert set(by_name) == {"NoisyProbe", "QueueLag", "DiskFull", "HighCPU", "CertExpiry"}

    disk = by_name["DiskFull"]
    assert (disk.alerts, disk.firing, disk.incidents) == (6, 3, 3)
    assert (disk.flaps, disk.stale_repeats, disk.auto_resolved, disk.handled) == (3, 0, 3, 0)
    assert disk.median_auto_resolve == 240.0
    assert disk.median_open == 240.0
    assert disk.service == "db"
    assert disk.labels == {"alertname": "DiskFull", "instance": "db-1", "service": "db"}

    cpu = by_name["HighCPU"]
    assert (cpu.incidents, cpu.handled, cpu.flaps, cpu.stale_repeats) == (3, 3, 2, 0)
    assert cpu.median_auto_resolve is None

    lag = by_name["QueueLag"]
    assert (lag.alerts, lag.incidents, lag.flaps, lag.stale_repeats) == (10, 4, 0, 3)
    assert lag.longest_stale_gap == 6 * 3600.0  # opened at 14h, the previous last seen at 8h
    assert lag.handled == 0
    assert lag.dedupe_minutes is None

    probe = by_name["NoisyProbe"]
    assert (probe.alerts, probe.firing, probe.incidents, probe.handled) == (30, 30, 0, 0)
    assert probe.labels["instance"] == "probe-1"

    cert = by_name["CertExpiry"]
    assert (cert.incidents, cert.handled, cert.flaps) == (3, 3, 2)

    assert [(j.task, j.failures, j.last_error) for j in facts.failing_jobs] == [
        ("检查磁盘", 2, "connection refused")
    ]


async def test_an_empty_chat_has_no_numbers(migrated_db: Database) -> None:
    await seed_week(migrated_db)
    facts = await hygiene_facts(migrated_db, "oc_quiet", SINCE, UNTIL)
    assert (facts.alerts, facts.incidents, facts.approvals_expired, facts.auto_fixes) == (
        0,
        0,
        0,
        0,
    )
    assert facts.mtta.median is None
    assert facts.mttr.p90 is None
    assert facts.auto_fix_rate is None
    assert facts.fingerprints == ()
    assert facts.failing_jobs == ()


async def test_a_fingerprints_own_window_is_reported(migrated_db: Database) -> None:
    await seed_week(migrated_db)
    async with migrated_db.session() as session:
        session.add(DedupeOverride(fingerprint="fp-c", minutes=480, created_by="ou_bob"))
    facts = await hygiene_facts(migrated_db, CHAT, SINCE, UNTIL)
    assert {f.fingerprint: f.dedupe_minutes for f in facts.fingerprints}["fp-c"] == 480


async def test_the_weeks_suggestions(migrated_db: Database) -> None:
    await seed_week(migrated_db)
    facts = await hygiene_facts(migrated_db, CHAT, SINCE, UNTIL)
    found = suggest(
        facts, HygieneRules(), dedupe_window_minutes=240, covered=lambda f: f.alertname == "HighCPU"
    )
    assert [(s.kind, s.alertname, dict(s.params)) for s in found] == [
        ("threshold", "DiskFull", {"for": "5m"}),
        (
            "silence",
            "NoisyProbe",
            {"matcher": "alertname=NoisyProbe,instance=probe-1", "duration": "24h"},
        ),
        ("dedupe", "QueueLag", {"minutes": 420}),
        ("runbook", "CertExpiry", {"key": "alertname", "value": "CertExpiry"}),
    ]
