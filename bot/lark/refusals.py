"""A card Feishu refuses still says what it had to say.

The cards are built to pass (`tests/unit/test_card_limits.py` renders every one with hostile
text through the strict check), but a rule Feishu adds or a limit it lowers would otherwise
lose the message: an incident opened with no card in the chat, an answer never shown. So when
Feishu refuses a card for its content — 230099 "Failed to create card content" (any sub-code
but a stranger's mention, which `bot.lark.strangers` handles by sending the card again) or
230025 "The length of the message content reaches its limit." — the same message goes as
plain text: the card's words as a reader sees them (`bot.lark.events.card_text`, already in
the chat's language; its mentions the text message's, any other tag in its words inert:
`cards.markup.spoken_card`), with the same `uuid` (the refused card was not stored). A warning
`lark.card_refused` names the call, Lark's code and the sub-code, so the card can be fixed.

A refused update (`patch_card`, `update_card`) is not replaced: the card keeps what it showed,
and the patcher logs the refusal with its code (`card.patch_failed`). A card Feishu will never
update again (recalled, or sent 14 days ago: `bot.lark.patcher.GONE`) is sent anew instead:
an incident's card and its war room's (`bot.incidents.presenter`), an expiring draft's
(`bot.scheduling.desk`).

    message_id = await despite_refusal("interactive", card, send)   # send(msg_type, content)
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bot.lark.errors import LarkApiError
from bot.lark.events import card_text
from bot.lark.strangers import CARD_REFUSED, despite_strangers
from bot.logs import get_logger
from cards.markup import spoken_card

log = get_logger(__name__)

TOO_LONG = 230025
MAX_WORDS = 30_000  # characters of the text sent instead (Feishu takes 150 KB of text)
_SUB_CODE = re.compile(r"ErrCode: (\d+)")

Result = TypeVar("Result")


def card_refused(exc: LarkApiError) -> bool:
    """Feishu refused the card for what it holds (not the chat, the rate or the token)."""
    return exc.code in (CARD_REFUSED, TOO_LONG)


def sub_code(exc: LarkApiError) -> int:
    """The card sub-code of a 230099 refusal (`ext=ErrCode: 11310; …`), 0 when none."""
    found = _SUB_CODE.search(exc.msg)
    return int(found.group(1)) if found else 0


async def despite_refusal(
    msg_type: str,
    content: dict[str, Any],
    once: Callable[[str, dict[str, Any]], Awaitable[Result]],
) -> Result:
    """`once(msg_type, content)` (a card without its strangers' mentions, as often as Feishu
    names one); a card Feishu refuses for its content goes as text instead."""
    try:
        return await despite_strangers(msg_type, content, lambda sent: once(msg_type, sent))
    except LarkApiError as exc:
        if msg_type != "interactive" or not card_refused(exc):
            raise
        log.warning(
            "lark.card_refused",
            endpoint=exc.endpoint,
            code=exc.code,
            sub_code=sub_code(exc),
            error=exc.msg[:300],
        )
        words = card_text(spoken_card(content))[:MAX_WORDS].strip() or "…"
        return await once("text", {"text": words})
