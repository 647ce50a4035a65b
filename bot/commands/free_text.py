"""Free text: the fallback for an @bot message that is not a command and that no message handler
took (alert bots' messages and thread follow-ups of a conversation are taken before it).

In this order: a follow-up in a conversation with the bot, or a question, goes to the chat agent
(with a model); else the text is read as a schedule (a reply in a clarifying question's thread
is read together with the thread's first message); else the chat agent answers, or, without a
model, the bot says which commands help.
"""

from __future__ import annotations

import re
from datetime import datetime

from bot.chat.desk import ChatDesk
from bot.commands.schedules import post_draft
from bot.context import HandlerContext
from bot.lark.api import BotInfo
from bot.lark.events import MessageEvent
from bot.roles import admits, refusal
from bot.router import Router
from bot.scheduling.desk import ScheduleDesk

router = Router("free_text")


@router.fallback()
async def sentence(
    ctx: HandlerContext,
    event: MessageEvent,
    chat: ChatDesk,
    schedules: ScheduleDesk,
    bot: BotInfo,
) -> None:
    """An @bot message that is not a command: a follow-up in a conversation with the bot, a
    schedule (or the answer to a clarifying question), else a question for the chat agent.
    Questions need a viewer, schedules an operator (as /schedule)."""
    if not admits(ctx.roles, ("viewer",)):
        await ctx.reply_text(refusal(ctx.texts, "viewer"))
        return
    text = event.command_text or event.text
    if chat.has_model:
        talk = await chat.conversation_of(event)
        if talk is not None:
            await chat.ask(ctx, event, talk)
            return
        if is_question(text):
            await chat.ask(ctx, event)  # the agent can still offer a job card (create_job)
            return
    if admits(ctx.roles, ("operator",)):
        original, asked = await chat.thread_start(event, bot.open_id)
        if await _schedule(ctx, schedules, text, original, asked):
            return
    elif schedules.read(text).status != "not_schedule":  # a viewer's sentence is never drafted
        await ctx.reply_text(refusal(ctx.texts, "operator"))
        return
    await chat.ask(ctx, event)  # without a model, it says which commands help


async def _schedule(
    ctx: HandlerContext,
    schedules: ScheduleDesk,
    text: str,
    original: str,
    asked: datetime | None,
) -> bool:
    """The text read as a schedule (with the thread's first message, `original`, when it
    answers a clarifying question asked at `asked` in time); False when it is none."""
    expired = asked is not None and schedules.question_expired(asked)
    if original and not expired:
        combined_text = f"{original} {text}"
        combined = await schedules.draft(ctx.chat_id, ctx.user, combined_text)
        if await post_draft(ctx, combined, combined_text):
            return True
    alone = await schedules.draft(ctx.chat_id, ctx.user, text)
    if original and expired and alone.schedule is None:
        hours = schedules.pending_hours
        await ctx.reply_text(ctx.texts("schedule.clarify_expired", hours=hours))
        return True  # the question expired: its answer is not read with it
    return await post_draft(ctx, alone, text)


_QUESTION_START = re.compile(
    r"^(?:(?:什么|哪些|哪个|哪里|为什么|为啥|怎么|怎样|如何|是否|有没有|有什么|谁|多少|几个|能不能|"
    r"请问|帮我(?:查|看|分析)|查一下|看一下|分析)"
    r"|(?:what|which|why|how|who|when did|is|are|was|were|did|does|do|can|could|should|show|"
    r"list|tell|explain)\b)",
    re.IGNORECASE,
)

_QUESTION_INSIDE = re.compile(r"有什么|有哪些|有没有|为什么|为啥|怎么样|是不是|多少次")


def is_question(text: str) -> bool:
    """Whether a sentence asks something (rather than asks for a job): a question mark, a
    question word at the start, or 吗/呢 at the end. "明天有什么任务？" is a question, not a
    job for tomorrow."""
    stripped = text.strip()
    if stripped.endswith(("?", "？", "吗", "呢", "吗。", "呢。")):
        return True
    return bool(_QUESTION_START.match(stripped) or _QUESTION_INSIDE.search(stripped))
