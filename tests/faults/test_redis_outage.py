"""Redis (`REDIS_URL`) stopped for a while under a running bot, then started again (empty).

What the bot does is deliberate (docs/operator-guide.md, "Redis outage"): `/readyz` turns 503
naming `coordination`; Lark events and webhook alerts are still accepted and committed to
Postgres, but nothing is sent to Lark while the shared rate limits are unreachable, so messages
wait in the inbox; a click is still decided (approvals live in Postgres) and its workflow goes on
once Redis is back. Then every message is answered once, every alert has its incident and card.
"""

from __future__ import annotations

import asyncio
import time

from bot.sandbox.record import Message
from tests.faults.conftest import Stage
from tests.support.cluster import (
    RedisServer,
    approve_value,
    check_invariants,
    incident_cards,
    rows,
    running,
    shows,
)
from tests.support.repair import alert
from tests.support.wait import wait_until

OUTAGE = 5.0


def answers(stage: Stage, asked: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for m in stage.emulator.transcript("oc_ops"):
        if m.sender_id == stage.emulator.bot.open_id and m.parent_id in asked:
            found.setdefault(m.parent_id, []).append(m.text)
    return found


async def test_redis_outage_defers_work_and_loses_nothing(stage: Stage, fresh_db_url: str) -> None:
    began = time.monotonic()
    emulator = stage.emulator
    redis = RedisServer(stage.tmp / "redis").start()
    bot = stage.replica("bot", DATABASE_URL=fresh_db_url, REDIS_URL=redis.url)
    asked: list[str] = []
    try:
        async with running(bot):
            await bot.start(emulator)
            assert (await bot.post(alert(stage.board, "web"))).status_code == 202

            async def card_of(service: str, gate: str | None = None) -> Message | None:
                found = await rows(
                    fresh_db_url, "SELECT id FROM incidents WHERE labels->>'service' = %s", service
                )
                cards = incident_cards(emulator).get(int(found[0][0]), []) if found else []
                for card in cards:
                    if gate is None or (approve_value(card) or {}).get("gate") == gate:
                        return card
                return None

            card = await wait_until(lambda: card_of("web", "diagnosis"), 30, "the diagnosis gate")

            redis.stop()
            stopped = time.monotonic()
            status, body = await bot.readyz()
            assert status == 503, body
            assert body["checks"]["coordination"].startswith("error"), body
            for _ in range(3):
                delivery = await emulator.send_message("oc_ops", "ou_alice", "/whoami")
                assert delivery.acked  # committed to Postgres: Lark will not resend it
                asked.append(delivery.message_id)
            assert (await bot.post(alert(stage.board, "api"))).status_code == 202
            click = await emulator.click(card.message_id, "ou_bob", approve_value(card))
            assert click.toast is not None
            assert click.toast["type"] == "success", click.toast  # decided in Postgres
            # a worker took a message and put it back for later: it met the outage
            await wait_until(
                lambda: rows(
                    fresh_db_url,
                    "SELECT 1 FROM inbound_events "
                    "WHERE status = 'pending' AND error LIKE 'retry later%'",
                ),
                20,
                "a message deferred",
            )
            # the outage lasts OUTAGE seconds: the fault, not a wait
            await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped)))
            waiting = (
                await rows(
                    fresh_db_url, "SELECT count(*) FROM inbound_events WHERE status = 'pending'"
                )
            )[0][0]
            answered_during = len(answers(stage, asked))
            assert answered_during == 0  # nothing is sent past the shared rate limits
            assert waiting >= len(asked)

            redis.start()
            await wait_until(bot.ready, 20, "/readyz to turn green")
            await wait_until(lambda: len(answers(stage, asked)) == len(asked), 40, "the answers")
            await wait_until(lambda: card_of("api", "diagnosis"), 40, "the second alert's card")
            # the click made during the outage is carried out now: the proposal gate shows
            await wait_until(lambda: card_of("web", "proposal"), 40, "the approved run going on")
            click = await emulator.click(card.message_id, "ou_bob", approve_value(card))
            assert click.toast is not None
            await wait_until(lambda: shows(card, "✅ 已恢复"), 40, "the incident resolved")

            replies = answers(stage, asked)
            assert all(len(texts) == 1 for texts in replies.values()), replies
            assert all("ou_alice" in texts[0] for texts in replies.values()), replies
            summary = await check_invariants(
                fresh_db_url, emulator, stage.board, {"web": 1, "api": 1}
            )
            print(
                f"injected: redis-server stopped for {OUTAGE:.0f} s (restarted empty) while "
                f"{len(asked)} messages, 1 webhook alert and 1 approval click arrived"
            )
            print(
                f"survived: /readyz 503 (coordination) during, 200 after; {waiting} events "
                f"waited in the inbox and were answered once each afterwards; the click was "
                f"taken during the outage and its run went on after; {summary}; "
                f"{time.monotonic() - began:.0f} s"
            )
    finally:
        redis.stop()
