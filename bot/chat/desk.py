"""Questions to the bot: one conversation per thread, answered by the chat agent in the
background, streamed into a card.

A new @bot question opens a conversation keyed by its message; replying in that thread (with
or without mentioning the bot) continues it. The question is checked and the answer card posted
while the event is handled; the model's work then goes on in a task, so a slow model never
holds up the chat's other events. A question seen twice (a redelivered event) is answered once.
Without a model the bot says which commands can help; with a model that is down or over
budget, the card says so. An answer cut off by a restart is marked as such by `recover`.

Usage::

    desk = ChatDesk(settings, db, api, coordination, agent, toolkit, scrub, health)
    await desk.ask(ctx, event, question)        # from a message handler
    await desk.recover(); await desk.drain()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from prometheus_client import Counter

from bot.chat.changes import CHANGE_TOOLS
from bot.chat.stream import CardStream
from bot.chat.toolbox import ChatToolbox, Data, ToolScope
from bot.chat.tools import READ_TOOLS
from bot.config import Settings
from bot.context import HandlerContext
from bot.lark.api import LarkApi, LarkApiError
from bot.lark.events import MessageEvent, normalise, parse_envelope
from bot.logs import get_logger
from bot.operations import Toolkit
from bot.roles import admits
from cards.chat import AnswerView, Evidence, answer_card
from cards.texts import texts
from storage import conversations, inbound
from storage.coordination import Coordination
from storage.database import Database
from storage.models import Conversation
from workflows.chat.agent import ChatAgent, ChatOutcome, Listener
from workflows.chat.prompt import to_messages, to_rows
from workflows.llm.prompt import Scrubber

log = get_logger(__name__)

MAX_QUESTIONS = 30  # per conversation
HISTORY_CHARS = 24_000  # of earlier messages in the prompt
MAX_QUESTION = 2000  # characters of one question
DECIDED_FOR = 30 * 24 * 3600.0  # seconds a suggestion's decided card stays decided
ANSWERS = Counter(
    "larkops_chat_answers_total",
    "Chat questions finished: answered, degraded (partly), budget (over a budget), unavailable",
    ["outcome"],
)


class ChatDesk:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        api: LarkApi,
        coordination: Coordination,
        agent: ChatAgent | None,
        toolkit: Toolkit | None,
        scrub: Scrubber,
        health: Callable[[], Awaitable[Data]],
    ) -> None:
        self.settings = settings
        self.db = db
        self.api = api
        self.coordination = coordination  # who decided a suggestion's card first (`claim`)
        self.agent = agent
        self.toolkit = toolkit
        self.scrub = scrub
        self.health = health
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: set[int] = set()

    @property
    def has_model(self) -> bool:
        return self.agent is not None

    async def conversation_of(self, event: MessageEvent) -> Conversation | None:
        """The conversation a thread reply continues, if it is in one."""
        root = event.root_id
        if not root or root == event.message_id:
            return None
        return await conversations.find(self.db, event.chat_id, root)

    async def claim(self, nonce: str) -> bool:
        """Whether this is the first decision of a suggestion's card (Confirm or Cancel): the
        first wins, a replayed or second click finds it taken."""
        return await self.coordination.first_seen(f"suggestion:{nonce}", DECIDED_FOR)

    async def release(self, nonce: str) -> None:
        """A decision that did nothing (refused, or failed on the way): the card may be
        decided again."""
        await self.coordination.forget(f"suggestion:{nonce}")

    async def thread_start(self, event: MessageEvent, bot_id: str) -> tuple[str, datetime | None]:
        """The text of the thread's first message and when it came, when `event` answers in
        a thread (a clarifying question's answer is read with it); `bot_id`: the bot's open_id,
        whose mention the text leaves out. ("", None) when it is no reply or not found."""
        root = event.root_id or event.parent_id
        if not root or root == event.message_id:
            return "", None
        found = await inbound.by_message(self.db, root)
        if found is None or not isinstance(found[0], dict):
            return "", None
        try:
            first = normalise(parse_envelope(found[0]), bot_id)
        except ValueError:
            return "", None
        if not isinstance(first, MessageEvent):
            return "", None
        return first.command_text or first.text, found[1]

    async def ask(
        self, ctx: HandlerContext, event: MessageEvent, talk: Conversation | None = None
    ) -> None:
        """Answer `event` (a question), in its conversation or a new one."""
        if self.agent is None:
            await ctx.reply_text(ctx.texts("chat.no_agent"))
            return
        question = (event.command_text or event.text).strip()[:MAX_QUESTION]
        if not question:
            await ctx.reply_text(ctx.texts("chat.no_agent"))
            return
        if talk is None:
            talk = await conversations.open_conversation(
                self.db, event.chat_id, event.message_id, ctx.user
            )
        if await conversations.asked(self.db, talk.id, event.message_id):
            return  # a redelivered event: answered (or being answered) already
        if talk.questions >= MAX_QUESTIONS:
            await ctx.reply_text(ctx.texts("chat.too_long", count=talk.questions))
            return
        if talk.id in self._busy:
            await ctx.reply_text(ctx.texts("chat.busy"))
            return
        self._busy.add(talk.id)
        try:
            stream = CardStream(self.api, ctx.texts)
            await stream.open(ctx.reply_card)
            await conversations.set_answering(self.db, talk.id, stream.message_id)
        except BaseException:
            self._busy.discard(talk.id)
            raise
        task = asyncio.create_task(self._answer(ctx, talk, question, event.message_id, stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(
        self,
        ctx: HandlerContext,
        talk: Conversation,
        question: str,
        message_id: str,
        stream: CardStream,
    ) -> None:
        assert self.agent is not None
        outcome = ChatOutcome()
        try:
            rows = await conversations.history(self.db, talk.id, max_chars=HISTORY_CHARS)
            outcome = await self.agent.answer(
                to_messages(rows),
                self.scrub.text(question),
                self._toolbox(ctx),
                stream,
                conversation_id=str(talk.id),
            )
        except Exception as exc:
            log.exception("chat.failed", conversation=talk.id)
            outcome.degraded, outcome.code = f"{type(exc).__name__}", "error"
        finally:
            self._busy.discard(talk.id)
        await self._finish(ctx, talk, outcome, message_id, stream)

    def _toolbox(self, ctx: HandlerContext) -> ChatToolbox:
        """The asker's tools: a viewer's question is answered from the bot's data; running
        diagnostics and posting change cards is an operator's (as /run and /schedule are)."""
        acting = admits(ctx.roles, ("operator",))
        tools = READ_TOOLS + CHANGE_TOOLS if acting else READ_TOOLS
        return ChatToolbox(
            ToolScope(ctx, self.health), tools, self.toolkit if acting else None, self.scrub
        )

    async def answer_once(
        self, ctx: HandlerContext, question: str, listener: Listener, conversation_id: str
    ) -> ChatOutcome:
        """One question from outside a Lark thread (the REST API, the console): the same
        agent, tools, budgets and rule (changes are cards posted in `ctx`'s chat for people
        to confirm, never actions), streamed to `listener`. Without a model: `code`
        `no_agent`."""
        if self.agent is None:
            return ChatOutcome(code="no_agent")
        try:
            outcome = await self.agent.answer(
                [],
                self.scrub.text(question.strip()[:MAX_QUESTION]),
                self._toolbox(ctx),
                listener,
                conversation_id=conversation_id,
            )
        except Exception as exc:
            log.exception("chat.failed", conversation=conversation_id)
            outcome = ChatOutcome(degraded=type(exc).__name__, code="error")
        kind = "budget" if outcome.over_budget else "answered"
        ANSWERS.labels("unavailable" if outcome.degraded and not outcome.answer else kind).inc()
        return outcome

    async def _finish(
        self,
        ctx: HandlerContext,
        talk: Conversation,
        outcome: ChatOutcome,
        message_id: str,
        stream: CardStream,
    ) -> None:
        say = ctx.texts
        note, kind = "", "answered"
        if outcome.over_budget:
            note, kind = say("chat.budget"), "budget"
        elif outcome.degraded:
            # why, in the reader's words from the code; the technical reason goes to the log
            log.info("chat.degraded", code=outcome.code, reason=outcome.degraded[:200])
            why = f"chat.why.{outcome.code}"
            reason = say(why) if say.has(why) else say("chat.why.unknown")
            if not (outcome.answer or stream.written):
                note, kind = say("chat.unavailable", reason=reason), "unavailable"
            else:
                note, kind = say("chat.degraded", reason=reason), "degraded"
        ANSWERS.labels(kind).inc()
        evidence = tuple(Evidence(c.name, c.summary, c.ok, c.finding) for c in outcome.calls)
        await stream.finish(evidence=evidence, note=note, text=outcome.answer)
        rows = to_rows(outcome.messages) or [{"role": "user", "content": ""}]
        rows[0]["message_id"] = message_id
        if rows[-1]["role"] != "assistant" or rows[-1]["tool_calls"]:
            # no answer: keep the exchange well-formed for the next question
            rows = [rows[0], {"role": "assistant", "content": f"(no answer: {note})"}]
            rows[0]["content"] = rows[0]["content"] or "(question)"
        try:
            await conversations.append(self.db, talk.id, rows)
        finally:
            await conversations.set_answering(self.db, talk.id, None)
        log.info(
            "chat.answered",
            conversation=talk.id,
            tools=[c.name for c in outcome.calls],
            degraded=outcome.code or None,
            patches=stream.patches,
        )

    async def recover(self) -> int:
        """Mark answers cut off by a stopped process (older than a whole answer may take)."""
        if self.agent is None:
            return 0
        wall = self.agent.guard.config.wall_seconds
        say = texts(self.settings.language)
        cut = await conversations.interrupted(self.db, timedelta(seconds=wall + 30))
        for _, _, message_id in cut:
            card = answer_card(AnswerView(done=True, note=say("chat.interrupted")), say)
            with contextlib.suppress(LarkApiError):
                await self.api.patch_card(message_id, card)
        return len(cut)

    async def drain(self, patience: float = 10.0) -> None:
        """Let answers in progress finish (then cancel what is left)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(list(self._tasks), timeout=patience)
        for task in pending:
            task.cancel()
