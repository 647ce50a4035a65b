"""A card that mentions someone Feishu does not know still reaches the chat.

Feishu refuses a whole card that mentions an id which is no user of the tenant (230099,
"ext=ErrCode: 100290; ErrMsg: There is an invalid user resource(at/person) in your card;
ErrorValue: <the id>"): a mistyped open_id in the roles or schedule configuration, a person
who left, an id from another tenant. The incident, paging or roles card would be lost for
one stale id, so it is sent again with that person as a word (`cards.markup.unmention`), as
often as Feishu names another one.

    message_id = await despite_strangers("interactive", card, send_once)
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bot.lark.errors import LarkApiError
from cards.markup import unmention

CARD_REFUSED = 230099
_STRANGER = re.compile(r"ErrCode: 100290;.*?ErrorValue: ([^;\s]+)")
MOST = 10  # strangers dropped from one card before its refusal stands

Result = TypeVar("Result")


def stranger(exc: LarkApiError) -> str | None:
    """The id Feishu named when it refused a card for mentioning someone who is no user."""
    found = _STRANGER.search(exc.msg) if exc.code == CARD_REFUSED else None
    return found.group(1) if found else None


async def despite_strangers(
    msg_type: str,
    content: dict[str, Any],
    once: Callable[[dict[str, Any]], Awaitable[Result]],
) -> Result:
    """`once(content)`; for a card Feishu refused over a stranger, again without that mention."""
    for _ in range(MOST):
        try:
            return await once(content)
        except LarkApiError as exc:
            person = stranger(exc) if msg_type == "interactive" else None
            kept = unmention(content, person) if person else content
            if kept == content:
                raise
            content = kept
    return await once(content)
