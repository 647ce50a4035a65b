"""How a paging level reaches people: the channel order, and Lark's refusals as reasons.

A level tries its `via` channels in order; a channel Lark refuses (or that cannot reach anyone)
gives way to the next, and a level whose channels all failed still mentions the people in the
incident's chat, so a page is never silent. The reason of each refusal is a code the card words.

    chain(("urgent_phone", "direct"))     # ("urgent_phone", "direct", "chat")
    reason_of(230024)                     # "quota"
"""

from __future__ import annotations

from typing import Literal

from workflows.oncall.escalation_policy import Channel

Refusal = Literal["quota", "permission", "forbidden", "not_in_chat", "no_card", "nobody", "failed"]

# Lark's codes for an urgent notice it will not send (the urgent_app/sms/phone reference)
_REASONS: dict[int, Refusal] = {
    230024: "quota",  # the tenant's urgent quota (or the person's unread urgent count) is used up
    99991672: "permission",  # the app lacks the channel's scope
    99991679: "permission",  # the scope needs the user's authorisation
    230027: "forbidden",  # the group lets only its owner and managers send urgent notices
    230002: "not_in_chat",  # the bot is not in the chat
}


def chain(via: tuple[Channel, ...]) -> tuple[Channel, ...]:
    """The channels a level tries, in order: its own, then a chat mention as the last resort."""
    return via if "chat" in via else (*via, "chat")


def reason_of(code: int) -> Refusal:
    """Why Lark refused, from its error code."""
    return _REASONS.get(code, "failed")
