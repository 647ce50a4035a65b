"""SIGKILL of `larkops run` with fixes asked for by `/run` or fired by a schedule in flight:
each is a checkpointed remediation run (the remediation subgraph an incident's fix runs in too),
so a restarted bot (or another replica) finishes it, and no fix ever runs twice.

Three fixes (by `/run`, or by schedules: always put to a person) are in flight when the bot is
killed: one running (its script takes 6 s), one approved a moment before the kill, one waiting
at its gate. After the restart: the running fix is reported as interrupted (outcome unknown,
not run again), the approved one runs exactly once, and the waiting one still waits and runs
once when approved.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.faults.conftest import Stage
from tests.replicas.test_two_replicas import schedule_job
from tests.support.cluster import approve_value, rows, running, shows
from tests.support.wait import wait_until

CHAT = "oc_ops"


async def action_of(dsn: str, service: str) -> tuple[str, str, bool] | None:
    """(status, summary, interrupted) of the action that restarts `service`."""
    found = await rows(
        dsn,
        "SELECT status, coalesce(summary, ''), coalesce((result->>'interrupted')::bool, false) "
        "FROM actions WHERE params->'args'->>'service' = %s",
        service,
    )
    return (str(found[0][0]), str(found[0][1]), bool(found[0][2])) if found else None


async def click_approve(stage: Stage, service: str) -> bool:
    """ou_bob clicks 批准 on the action card of `service`; True once clicked."""
    for message in stage.emulator.transcript(CHAT):
        value = approve_value(message) if message.card is not None else None
        if value is not None and shows(message, service):
            click = await stage.emulator.click(message.message_id, "ou_bob", value)
            return click.toast is not None and click.toast.get("type") == "success"
    return False


async def ended(dsn: str, service: str, wanted: str) -> bool:
    found = await action_of(dsn, service)
    return found is not None and found[0] == wanted


async def request_fixes(stage: Stage, dsn: str, services: tuple[str, ...], origin: str) -> None:
    """Ask for a fix of each service, by `/run` or by a one-shot schedule due at once; wait for
    their approval cards."""
    due = datetime.now(UTC) + timedelta(seconds=1)
    for service in services:
        if origin == "run":
            text = f"/run command template=restart args.service={service}"
            await stage.emulator.send_message(CHAT, "ou_alice", text)
            continue
        fix = {
            "type": "fix",
            "plugin": "command",
            "params": {"template": "restart", "args": {"service": service}},
        }
        await schedule_job(dsn, due, f"restart {service}", fix)
    for service in services:
        await wait_until(lambda s=service: asks(stage, s), 60, f"{service}'s card")


def asks(stage: Stage, service: str) -> bool:
    """The approval card of the fix for `service` is in the chat."""
    return any(
        m.card is not None and shows(m, service) and approve_value(m) is not None
        for m in stage.emulator.transcript(CHAT)
    )


def card_says(stage: Stage, service: str, words: str) -> bool:
    return any(
        m.card is not None and shows(m, service) and shows(m, words)
        for m in stage.emulator.transcript(CHAT)
    )


@pytest.mark.parametrize("origin", ["run", "schedule"])
async def test_sigkill_with_fixes_in_flight_runs_each_at_most_once(
    stage: Stage, fresh_db_url: str, origin: str
) -> None:
    board = stage.board
    services = tuple(f"{origin[0]}{step}" for step in ("exec", "click", "gate"))
    fixing, clicked, waiting = services
    (board.state / f"fix-seconds-{fixing}").write_text("6")
    bot = stage.replica("bot", DATABASE_URL=fresh_db_url)
    async with running(bot):
        await bot.start(stage.emulator)
        await request_fixes(stage, fresh_db_url, services, origin)
        await wait_until(lambda: click_approve(stage, fixing), 30, f"the approval of {fixing}")
        await wait_until(lambda: board.runs()[fixing] == 1, 30, f"{fixing}'s fix to start")
        await wait_until(lambda: click_approve(stage, clicked), 30, f"the approval of {clicked}")
        await bot.kill()

        await bot.start(stage.emulator)
        # the fix cut short: failed as "outcome unknown", never started again
        await wait_until(lambda: ended(fresh_db_url, fixing, "failed"), 60, f"{fixing} to end")
        _, summary, interrupted = await action_of(fresh_db_url, fixing) or ("", "", False)
        assert interrupted, summary
        assert "not run again" in summary
        # and its card says so in the chat's language
        await wait_until(lambda: card_says(stage, fixing, "结果未知"), 30, f"{fixing}'s card")
        # the fix approved just before the kill: run exactly once by the restarted bot
        await wait_until(lambda: ended(fresh_db_url, clicked, "succeeded"), 60, clicked)
        # the fix at its gate still waits for people, and runs once when approved
        assert await action_of(fresh_db_url, waiting) == ("pending", "", False)
        await wait_until(lambda: click_approve(stage, waiting), 30, f"the approval of {waiting}")
        await wait_until(lambda: ended(fresh_db_url, waiting, "succeeded"), 60, waiting)

        assert board.runs() == dict.fromkeys(services, 1)
        steps = await rows(
            fresh_db_url, "SELECT run_id, step, count(*) FROM executions GROUP BY 1, 2"
        )
        assert len(steps) == 3
        assert all(count == 1 for _, _, count in steps)
        cards = [
            m
            for m in stage.emulator.transcript(CHAT)
            if m.card is not None and m.sender_id == stage.emulator.bot.open_id
        ]
        # one card per fix, each patched in place: interrupted, succeeded, succeeded
        for service in services:
            assert sum(1 for m in cards if shows(m, service)) == 1, service
