"""The emulator refuses what real Feishu refuses in a card (230099 with the sub-code), on send,
reply, patch and delayed update, and stores nothing; the bot's own cards mention only people."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.lark.api import LarkApi, LarkApiError
from bot.sandbox.cardcheck import card_problem
from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.server import serve_emulator
from cards.markup import mention
from storage.coordination import MemoryCoordination


def card(*elements: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"schema": "2.0", "body": {"elements": list(elements)}, **extra}


@pytest.fixture
async def lark() -> AsyncIterator[tuple[LarkEmulator, LarkApi]]:
    emulator = LarkEmulator()
    async with serve_emulator(emulator) as url:
        yield emulator, LarkApi(emulator.app_id, emulator.app_secret, url, MemoryCoordination())


FORM = {"tag": "form", "name": "f", "elements": [{"tag": "markdown", "content": "x"}]}
INVALID = "230099.*Failed to create card content, ext=ErrCode: {}"


@pytest.mark.parametrize(
    ("bad", "answer"),
    [
        (card({"tag": "markdown", "content": "by <at id=system></at>"}), INVALID.format(100290)),
        (
            card({"tag": "markdown", "content": 'by <at user_id="alert"></at>'}),
            INVALID.format(100290),
        ),
        (
            card({"tag": "note", "elements": [{"tag": "plain_text", "content": "x"}]}),
            INVALID.format(200861) + ".*unsupported tag note",
        ),
        (card({"tag": "action", "actions": []}), INVALID.format(200861)),
        (
            {"schema": "2.0", "elements": [{"tag": "markdown", "content": "x"}]},
            INVALID.format(200621),
        ),
        (card(i18n_elements={"zh_cn": []}), INVALID.format(200621)),
        (
            {"schema": "2.0", "body": {"elements": [], "text_size": "normal"}},
            INVALID.format(200621),
        ),
        (
            card({"tag": "column_set", "columns": [{"tag": "column", "elements": [FORM]}]}),
            INVALID.format(200621),
        ),
        (card({**FORM, "elements": [FORM]}), INVALID.format(200621)),
        (
            card({"tag": "markdown", "content": "x" * 31_000}),
            "230025.*The length of the message content reaches its limit",
        ),
    ],
)
async def test_cards_feishu_refuses_are_refused(
    lark: tuple[LarkEmulator, LarkApi], bad: dict[str, Any], answer: str
) -> None:
    emulator, api = lark
    with pytest.raises(LarkApiError, match=answer):
        await api.send_card("oc_ops", bad, uuid=f"bad-{len(str(bad))}-{hash(answer)}")
    assert emulator.transcript("oc_ops") == []
    good = await api.send_card(
        "oc_ops",
        card({"tag": "markdown", "content": "<at id=ou_bob></at> <at id=all></at>"}),
        uuid="ok",
    )
    with pytest.raises(LarkApiError, match=answer):
        await api.patch_card(good, bad)
    [kept] = emulator.transcript("oc_ops")
    assert kept.card is not None
    assert "ou_bob" in kept.card["body"]["elements"][0]["content"]


def test_a_form_at_the_root_is_accepted() -> None:
    assert card_problem(card(FORM, {"tag": "markdown", "content": "<at id=ou_bob></at>"})) is None


def test_only_open_ids_become_mentions() -> None:
    assert mention("ou_bob") == "<at id=ou_bob></at>"
    for actor in ("system", "alert", "scheduler", "all", "dept:od-1"):
        assert "<at" not in mention(actor), actor
