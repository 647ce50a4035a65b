"""Lark's REST API answering 5xx, then 429, for longer than one call's retries last.

Messages keep arriving over the long connection (it stays up), an incident's gates are approved
and its run goes on, while every send, reply and card patch fails for a while. Once Lark answers
again every message has its real answer (not an error), the card shows the latest state, and
nothing is sent twice.
"""

from __future__ import annotations

import time
from collections import Counter

from bot.sandbox.record import Message
from tests.faults.conftest import Stage
from tests.support.cluster import (
    approve_value,
    check_invariants,
    incident_cards,
    rows,
    running,
    shows,
)
from tests.support.repair import alert
from tests.support.wait import wait_until

MESSAGES = "/open-apis/im/v1/messages"


def replies(stage: Stage, asked: list[str]) -> dict[str, list[str]]:
    """Each asked message id -> the texts of the bot's replies to it."""
    found: dict[str, list[str]] = {}
    for m in stage.emulator.transcript("oc_ops"):
        if m.sender_id == stage.emulator.bot.open_id and m.parent_id in asked:
            found.setdefault(m.parent_id, []).append(m.text)
    return found


def refused(stage: Stage, status: int) -> int:
    return sum(
        1 for c in stage.emulator.calls if c.path.startswith(MESSAGES) and c.status == status
    )


async def ask(stage: Stage, asked: list[str], count: int) -> None:
    for _ in range(count):
        delivery = await stage.emulator.send_message("oc_ops", "ou_alice", "/whoami")
        assert delivery.acked
        asked.append(delivery.message_id)


async def test_lark_outage_delays_replies_and_card_updates_never_doubles_them(
    stage: Stage, fresh_db_url: str
) -> None:
    began = time.monotonic()
    emulator = stage.emulator
    bot = stage.replica("bot", DATABASE_URL=fresh_db_url)
    asked: list[str] = []
    async with running(bot):
        await bot.start(emulator)
        assert (await bot.post(alert(stage.board, "web"))).status_code == 202

        async def card_at(gate: str) -> Message | None:
            found = await rows(fresh_db_url, "SELECT id FROM incidents")
            cards = incident_cards(emulator).get(int(found[0][0]), []) if found else []
            return next((c for c in cards if (approve_value(c) or {}).get("gate") == gate), None)

        card = await wait_until(lambda: card_at("diagnosis"), 30, "the diagnosis gate")

        # 5xx for 6 s (one call retries for ~3 s): the approved run's card patch and the
        # replies all fail for a while
        emulator.fail_next(MESSAGES, status=500, code=2200, seconds=6)
        click = await emulator.click(card.message_id, "ou_bob", approve_value(card))
        assert click.toast is not None
        assert click.toast["type"] == "success"
        await ask(stage, asked, 4)
        await wait_until(lambda: card_at("proposal"), 40, "the card patched to the proposal gate")
        await wait_until(lambda: len(replies(stage, asked)) == 4, 40, "every reply")
        refused_5xx = refused(stage, 500)
        assert refused_5xx > 4

        # 429 (with Lark's reset hint) for 5 s while the fix runs and more messages arrive
        emulator.fail_next(
            MESSAGES, status=429, code=99991400, seconds=5, headers={"x-ogw-ratelimit-reset": "1"}
        )
        click = await emulator.click(card.message_id, "ou_bob", approve_value(card))
        assert click.toast is not None
        assert click.toast["type"] == "success"
        await ask(stage, asked, 3)
        await wait_until(lambda: len(replies(stage, asked)) == len(asked), 40, "every reply")

        async def resolved() -> bool:
            found = await rows(fresh_db_url, "SELECT status FROM incidents")
            return found == [("resolved",)]

        await wait_until(resolved, 40, "the incident to resolve")
        await wait_until(lambda: shows(card, "✅ 已恢复"), 30, "the card to show the resolution")
        answered = replies(stage, asked)
        assert all(len(texts) == 1 for texts in answered.values()), answered  # once each
        assert all("ou_alice" in texts[0] for texts in answered.values()), answered  # answers
        summary = await check_invariants(fresh_db_url, emulator, stage.board, {"web": 1})
        counts = Counter(m.sender_type for m in emulator.transcript("oc_ops"))
        print(
            f"injected: HTTP 500 on {MESSAGES} for 6 s ({refused_5xx} calls refused), then 429 "
            f"for 5 s ({refused(stage, 429)} refused), while {len(asked)} messages arrived and "
            "an incident was approved through both gates"
        )
        print(
            f"survived: {len(answered)}/{len(asked)} messages answered once each with the real "
            f"answer; {summary}; the card caught up to 'resolved'; messages in the chat "
            f"{dict(counts)}; replays absorbed by uuid {len(emulator.duplicates)}; "
            f"{time.monotonic() - began:.0f} s"
        )
