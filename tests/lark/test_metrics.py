"""The metrics of every stage move when the stage happens: an alert's whole life, and a job the
clock fires, through the emulator, read back from the Prometheus text the bot serves at
`/metrics` (the default registry, rendered the way the endpoint renders it).

Counters are process-wide, so every assertion is on a difference: before and after.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from bot.backlog import publish, read_backlog
from tests.lark.test_incidents import APPROVE, card_with, fire, settings_for
from tests.lark.testbot import TestBot, card_buttons, wait_until
from tests.support.health import health_service
from workflows.schedule.spec import Once

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def health(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """http://127.0.0.1:PORT/health: 200 when `tmp_path/healthy-web` exists, else 503."""
    async with health_service(tmp_path / "healthy-web") as url:
        yield url, tmp_path


def scrape() -> Samples:
    """Every sample of the `/metrics` text."""
    exposition = generate_latest(REGISTRY).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` that has `labels` (and any others)."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


async def test_an_incident_moves_the_workflow_approval_plugin_and_policy_metrics(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    url, state = health
    bot: TestBot = await make_testbot(settings=settings_for(state), incidents=True)
    before = scrape()
    card = await fire(bot, url)
    diagnosed = await card_with(bot, card, "http_check", APPROVE)
    node = "await_diagnosis_approval"
    # the gate's step ends (and is counted) just after its card shows the buttons
    await wait_until(
        lambda: moved(before, scrape(), "larkops_workflow_transitions_total", node=node) == 2,
        what="the gate's step counted",
    )

    # paused at the first gate: the cluster-wide gauges say so, the inbox is empty
    publish(await read_backlog(bot.db))
    paused = scrape()
    assert value(paused, "larkops_workflow_runs_active", state="paused") == 1
    assert value(paused, "larkops_approvals_pending", gate="diagnosis") == 1
    assert total(paused, "larkops_inbound_pending") == 0
    assert value(paused, "larkops_inbound_oldest_pending_seconds") == 0
    assert moved(before, paused, "larkops_workflow_transitions_total", node=node) == 2
    assert (
        moved(before, paused, "larkops_workflow_transitions_total", node=node, outcome="paused")
        == 1
    )

    # refused clicks: someone not on the list, a forged button
    value_of = card_buttons(diagnosed.card)[APPROVE]
    await bot.click(diagnosed, APPROVE, user="ou_alice")
    await bot.click(diagnosed, APPROVE, value={**value_of, "gate": "proposal"})
    await bot.click(diagnosed, APPROVE, user="ou_bob")
    await bot.click(diagnosed, APPROVE, user="ou_bob", value=value_of)  # again, later: stale
    proposed = await card_with(bot, card, "restart_web", APPROVE)
    await bot.click(proposed, APPROVE, user="ou_carol")
    await wait_until(lambda: _status(bot, "resolved"), timeout=20, what="the incident to resolve")

    def run_ended() -> bool:  # counted once the graph call that resolved it returned
        return moved(before, scrape(), "larkops_workflow_runs_total", outcome="advanced") == 3

    await wait_until(run_ended, what="the run to end")
    after = scrape()
    approvals = "larkops_approvals_total"
    for gate in ("diagnosis", "proposal"):
        assert moved(before, after, approvals, gate=gate, outcome="approved") == 1, gate
    assert moved(before, after, approvals, gate="diagnosis", outcome="unauthorised") == 1
    assert moved(before, after, approvals, gate="diagnosis", outcome="stale") == 1
    assert moved(before, after, approvals, gate="unknown", outcome="forged") == 1
    assert moved(before, after, approvals, outcome="rejected") == 0

    plugin_runs = "larkops_plugin_executions_total"
    fix = {"plugin": "command", "category": "remediation"}
    assert moved(before, after, plugin_runs, **fix, result="ok") == 1  # run once, never twice
    assert moved(before, after, plugin_runs, **fix, result="dry_run_ok") == 1  # the preview
    assert moved(before, after, plugin_runs, plugin="http_check", category="diagnostic") >= 2
    assert moved(before, after, "larkops_plugin_execution_seconds_count", plugin="command") == 2
    assert moved(before, after, "larkops_policy_decisions_total", decision="approve") >= 1

    transitions = "larkops_workflow_transitions_total"
    for node in ("ingest", "diagnose", "propose", "execute", "verify", "resolve"):
        assert moved(before, after, transitions, node=node, outcome="finished") == 1, node
    assert moved(before, after, transitions, outcome="failed") == 0
    assert moved(before, after, transitions, node="escalate") == 0
    assert moved(before, after, "larkops_workflow_runs_total", outcome="advanced") == 3

    publish(await read_backlog(bot.db))
    done = scrape()
    assert value(done, "larkops_workflow_runs_active", state="paused") == 0
    assert value(done, "larkops_workflow_runs_active", state="running") == 0
    assert total(done, "larkops_approvals_pending") == 0


async def test_a_fired_job_moves_the_scheduler_metrics(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot()
    assert bot.runtime.scheduling is not None
    service = bot.runtime.scheduling.service
    await wait_until(lambda: service.is_leader, what="the scheduler to lead")
    assert value(scrape(), "larkops_scheduler_leader") == 1
    await bot.send("每个工作日早上9点检查磁盘")  # host_disk only: not the load of this host
    await bot.click(await bot.expect_reply("新的定时任务"), "确认")
    ((schedule_id,),) = await bot.rows("SELECT id FROM schedules WHERE task LIKE '%磁盘%'")
    before = scrape()
    soon = datetime.now(UTC) + timedelta(seconds=2)
    async with bot.db.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE schedules SET spec = CAST(:s AS jsonb), kind = 'once', "
                "updated_at = now() WHERE id = :i"
            ),
            {"s": json.dumps(Once(soon, "Asia/Shanghai").to_json()), "i": schedule_id},
        )
    service.wake()
    await bot.expect_reply("定时任务 #", timeout=20)
    ((status,),) = await bot.rows(
        f"SELECT status FROM schedule_runs WHERE schedule_id = {int(schedule_id)}"
    )

    def counted() -> bool:
        return moved(before, scrape(), "larkops_schedule_runs_total") == 1

    await wait_until(counted, what="the run to be counted")
    after = scrape()
    assert moved(before, after, "larkops_schedule_runs_total", outcome=status) == 1
    disk = {"plugin": "host_disk", "category": "diagnostic"}
    assert moved(before, after, "larkops_plugin_executions_total", **disk) == 1
    assert moved(before, after, "larkops_scheduler_fire_lateness_seconds_count") == 1
    # fired on time: well within a minute of its scheduled second
    late = moved(before, after, "larkops_scheduler_fire_lateness_seconds_sum")
    assert 0 <= late < 60


async def _status(bot: TestBot, wanted: str) -> bool:
    return [r[0] for r in await bot.rows("SELECT status FROM incidents")] == [wanted]
