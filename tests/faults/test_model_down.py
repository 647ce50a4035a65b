"""The model API down (`LLM_PROVIDER=openai` pointed at a port nobody listens on).

The incident flow falls back to the rules (runbooks and plugin results) and runs to the end:
diagnosis, both gates, the fix, verification. A question to the bot gets a clear card saying the
model is unavailable and which commands still help, not silence and not a stack trace.
"""

from __future__ import annotations

import time

from bot.lark.events import card_text
from tests.faults.conftest import Stage
from tests.support.cluster import (
    approve_value,
    check_invariants,
    free_port,
    incident_cards,
    rows,
    running,
    shows,
)
from tests.support.repair import alert
from tests.support.wait import wait_until


async def test_model_down_falls_back_to_rules_and_says_so(stage: Stage, fresh_db_url: str) -> None:
    began = time.monotonic()
    emulator = stage.emulator
    dead = f"http://127.0.0.1:{free_port()}/v1"
    bot = stage.replica(
        "bot",
        DATABASE_URL=fresh_db_url,
        LLM_PROVIDER="openai",
        LLM_MODEL="gpt-4o-mini",
        OPENAI_API_KEY="sk-test-model-down",
        OPENAI_BASE_URL=dead,
    )
    async with running(bot):
        await bot.start(emulator)
        assert (await bot.post(alert(stage.board, "web"))).status_code == 202

        async def step() -> bool:
            """Approve the gate the card shows; True once the incident has ended."""
            found = await rows(fresh_db_url, "SELECT id, status FROM incidents")
            if found and found[0][1] in ("resolved", "escalated"):
                return True
            for card in incident_cards(emulator).get(int(found[0][0]), []) if found else []:
                value = approve_value(card)
                if value:
                    await emulator.click(card.message_id, "ou_bob", value)
            return False

        await wait_until(step, 90, "the incident to end")
        status = await rows(fresh_db_url, "SELECT status FROM incidents")
        provider = await rows(fresh_db_url, "SELECT provider, details FROM diagnoses")
        assert status == [("resolved",)], status
        assert stage.board.runs()["web"] == 1
        card = next(iter(incident_cards(emulator).values()))[0]
        await wait_until(lambda: shows(card, "✅ 已恢复"), 20, "the card to show the resolution")

        delivery = await emulator.send_message("oc_ops", "ou_alice", "web 为什么挂了？")
        assert delivery.acked

        def answer() -> str:
            for m in emulator.transcript("oc_ops"):
                if m.sender_id == emulator.bot.open_id and m.parent_id == delivery.message_id:
                    shown = m.text + card_text(m.card)
                    if "模型暂时不可用" in shown:
                        return shown
            return ""

        said = await wait_until(answer, 60, "the answer to the question")
        assert "/incidents" in said
        assert "sk-test-model-down" not in said
        summary = await check_invariants(fresh_db_url, emulator, stage.board, {"web": 1})
        print(f"injected: the model API at {dead} refusing every connection")
        print(
            f"survived: the incident ran on the rules to {status[0][0]} "
            f"(diagnosis by {provider[0][0]!r}, {provider[0][1].get('fallback', '')!r}); "
            f"{summary}; the question got: {said.strip()[:120]!r}; "
            f"{time.monotonic() - began:.0f} s"
        )
