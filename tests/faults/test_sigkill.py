"""SIGKILL of `larkops run` at points of the incident flow, in a seeded property-style loop.

Round 0 brings one incident to each named point — the fix running, a diagnosis under way, a gate
open, an approval click just claimed, an alert just committed — and kills the bot with all of
them in flight. The other rounds send alerts, let a person click through every gate, and kill the
bot at a random moment (seeded: `LARKOPS_FAULT_SEED` picks other moments). After each kill the
bot restarts and every incident is driven to its end. Then: every alert has its incident, each
incident exactly one card, no execution step twice, no fix run twice; a fix cut short is
escalated as "outcome unknown, not run again", never repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from typing import Any

from tests.faults.conftest import Stage
from tests.support.cluster import (
    Replica,
    approve_value,
    check_invariants,
    describe,
    incident_cards,
    rows,
    running,
)
from tests.support.repair import alert
from tests.support.wait import wait_until

SEED = int(os.environ.get("LARKOPS_FAULT_SEED", "4242"))  # another seed: other kill moments
ROUNDS = 3  # the first kills with an incident at every named point; the others at random
NAMED = ["executing", "gate_open", "approved", "diagnosing", "committed"]


async def incident_of(dsn: str, service: str) -> tuple[int, str, str | None] | None:
    found = await rows(
        dsn,
        "SELECT id, status, escalation_reason FROM incidents WHERE labels->>'service' = %s",
        service,
    )
    return (int(found[0][0]), str(found[0][1]), found[0][2]) if found else None


async def click_gate(stage: Stage, dsn: str, service: str, kind: str | None = None) -> bool:
    """Click 批准 on the service's card if it offers it (for gate `kind`); True if clicked."""
    found = await incident_of(dsn, service)
    return found is not None and await click_card(stage, found[0], kind)


async def click_card(stage: Stage, incident: int, kind: str | None = None) -> bool:
    """Click 批准 on the incident's card if it offers it (for gate `kind`); True if clicked."""
    for card in incident_cards(stage.emulator).get(incident, []):
        value = approve_value(card)
        if value is not None and kind in (None, value["gate"]):
            await stage.emulator.click(card.message_id, "ou_bob", value)
            return True
    return False


async def drive(stage: Stage, dsn: str, service: str, timeout: float = 90) -> tuple[str, str]:
    """Approve every gate the incident shows until it ends; (status, escalation reason)."""

    async def ended() -> tuple[str, str] | None:
        found = await incident_of(dsn, service)
        if found is not None and found[1] in ("resolved", "escalated"):
            return found[1], found[2] or ""
        if found is not None:
            await click_card(stage, found[0])
        return None

    try:
        outcome: tuple[str, str] = await wait_until(ended, timeout, f"{service} to end")
    except AssertionError as exc:
        raise AssertionError(f"{exc}:\n{await describe(dsn)}") from None
    return outcome


async def started(dsn: str, service: str) -> bool:
    events = await rows(
        dsn,
        "SELECT count(*) FROM incident_events e JOIN incidents i ON i.id = e.incident_id "
        "WHERE i.labels->>'service' = %s AND e.kind = 'workflow.started'",
        service,
    )
    return bool(events[0][0])


async def gate_shown(stage: Stage, dsn: str, service: str) -> bool:
    found = await incident_of(dsn, service)
    cards = incident_cards(stage.emulator).get(found[0], []) if found else []
    return any(approve_value(card) for card in cards)


async def place_all(stage: Stage, bot: Replica, dsn: str, names: dict[str, str]) -> None:
    """Bring one incident to each named point (the slowest first), then SIGKILL the bot with
    all of them in flight: the fix running, a diagnosis under way, a gate open, a click just
    claimed, an alert just committed."""
    board = stage.board
    (board.state / f"fix-seconds-{names['executing']}").write_text("6")
    board.slow[names["diagnosing"]] = 4.0
    for point in ("executing", "gate_open", "approved"):
        answer = await bot.post(alert(board, names[point]))
        assert answer.status_code == 202, answer.text
    service = names["executing"]
    await wait_until(lambda: click_gate(stage, dsn, service, "diagnosis"), 30, "diagnosis gate")
    await wait_until(lambda: click_gate(stage, dsn, service, "proposal"), 30, "proposal gate")
    await wait_until(lambda: board.runs()[service] == 1, 30, f"{service}'s fix to start")
    await wait_until(lambda: gate_shown(stage, dsn, names["gate_open"]), 30, "an open gate")
    assert (await bot.post(alert(board, names["diagnosing"]))).status_code == 202
    await wait_until(lambda: started(dsn, names["diagnosing"]), 30, "a diagnosis under way")
    service = names["approved"]
    await wait_until(lambda: click_gate(stage, dsn, service, "diagnosis"), 30, "a click")
    assert (await bot.post(alert(board, names["committed"]))).status_code == 202
    await bot.kill()
    board.slow.clear()


async def click_through_and_kill(
    stage: Stage, bot: Replica, dsn: str, services: list[str], rng: random.Random
) -> float:
    """Alerts for `services`, a person approving every gate as it shows, and a SIGKILL at a
    random moment; returns that moment (seconds after the alerts)."""
    for service in services:
        (stage.board.state / f"fix-seconds-{service}").write_text(f"{rng.uniform(0, 3):.1f}")
        assert (await bot.post(alert(stage.board, service))).status_code == 202
    clickers = [asyncio.create_task(drive(stage, dsn, service)) for service in services]
    moment = rng.uniform(1.0, 6.0)
    await asyncio.sleep(moment)  # the kill's seeded random moment: the fault, not a wait
    await bot.kill()
    for clicker in clickers:
        clicker.cancel()
        with contextlib.suppress(asyncio.CancelledError, AssertionError):
            await clicker
    return moment


async def test_sigkill_at_any_point_loses_and_repeats_nothing(
    stage: Stage, fresh_db_url: str
) -> None:
    rng = random.Random(SEED)
    bot = stage.replica("bot", DATABASE_URL=fresh_db_url)
    sent: dict[str, int] = {}
    began = time.monotonic()
    async with running(bot):
        await bot.start(stage.emulator)
        for round_ in range(ROUNDS):
            if round_ == 0:
                names = {point: f"s{round_}{point.replace('_', '')}" for point in NAMED}
                await place_all(stage, bot, fresh_db_url, names)
                injected = f"SIGKILL with one incident at each of {list(names)}"
            else:
                names = {f"random{n}": f"s{round_}random{n}" for n in range(2)}
                moment = await click_through_and_kill(
                    stage, bot, fresh_db_url, list(names.values()), rng
                )
                injected = f"SIGKILL {moment:.1f} s into two incidents being clicked through"
            sent.update(dict.fromkeys(names.values(), 1))
            await bot.start(stage.emulator)
            ends = await asyncio.gather(
                *(drive(stage, fresh_db_url, service) for service in names.values())
            )
            outcomes: dict[str, Any] = {}
            for (point, service), (status, reason) in zip(names.items(), ends, strict=True):
                runs = stage.board.runs()[service]
                outcomes[point] = (status, runs)
                if point == "executing" or status == "escalated":
                    # killed after the fix was claimed: reported as "outcome unknown", never
                    # run again (a kill before its process started leaves it not run at all)
                    assert point in ("executing", "random0", "random1"), (point, reason)
                    assert "not run again" in reason, (point, reason)
                    assert runs <= 1, (point, runs)
                    assert runs == 1 or point != "executing"
                else:
                    assert runs == 1, (point, status, reason)
            summary = await check_invariants(fresh_db_url, stage.emulator, stage.board, sent)
            print(f"injected: {injected}; survived: {outcomes} (status, fix runs); {summary}")
    print(f"SIGKILL loop (seed {SEED}, {ROUNDS} kills): {time.monotonic() - began:.0f} s")
