"""The chat answer's card stream against the emulator when Lark answers slowly: the finished
answer is the card people are left with, whatever patch was in flight when it came."""

from __future__ import annotations

from bot.chat.stream import CardStream
from bot.lark.api import LarkApi
from bot.lark.events import card_text
from bot.sandbox.emulator import LarkEmulator
from cards.chat import Evidence
from cards.texts import texts
from tests.lark.test_api import lark
from tests.support.wait import wait_until

__all__ = ["lark"]  # the emulator and a client of it, as the client's own tests use
CHAT = "oc_ops"
MESSAGES = "/open-apis/im/v1/messages/"


def shown(emulator: LarkEmulator, message_id: str) -> list[str]:
    """Every version of the message's card, oldest first, as text."""
    message = next(m for m in emulator.transcript(CHAT) if m.message_id == message_id)
    return [card_text(version) for version in message.card_history]


async def test_the_finished_answer_is_not_overtaken_by_a_slow_patch(
    lark: tuple[LarkEmulator, LarkApi],
) -> None:
    emulator, api = lark
    stream = CardStream(api, texts("zh"), interval=0.05)

    async def post(card: dict[str, object]) -> str:
        return await api.send_card(CHAT, card, uuid="u-answer")

    message_id = await stream.open(post)
    emulator.hold_next(MESSAGES + message_id, 0.6)  # Lark is slow to take the next patch
    stream.text("磁盘使用率")
    await wait_until(
        lambda: emulator.guard.holding == 1, timeout=5, what="the first patch to reach Lark"
    )
    stream.text("在 92%。")
    await stream.finish(evidence=(Evidence("disk_usage", "92%"),), note="")
    await wait_until(
        lambda: len(shown(emulator, message_id)) >= 3, timeout=5, what="both patches to land"
    )
    versions = shown(emulator, message_id)
    assert "磁盘使用率在 92%。" in versions[-1]
    assert "依据" in versions[-1]  # the finished card, with its evidence, is the one left
    assert "思考中" not in versions[-1]
