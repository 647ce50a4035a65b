"""The chat agent: a streamed tool-calling loop that answers one question of a conversation.

Each round streams the model's text to a `Listener` (the answer card) as it comes; tool calls
go to a `Toolbox` (read-only tools run, change tools only post a card for people). Caps: the
step limit, the conversation's and the day's token budgets, the wall-clock deadline (all in
`workflows.llm.guard`). When a cap or a dead model stops the loop, what was said so far stands,
and the outcome says why (`degraded`), so the card can say it too.

Usage::

    agent = ChatAgent(guard, language="zh", zone="Asia/Shanghai")
    outcome = await agent.answer(history, "最近有什么任务失败了？", toolbox, listener,
                                 conversation_id="12")
    outcome.answer, outcome.calls, outcome.messages (to store), outcome.degraded
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from workflows.chat.prompt import FINAL_NUDGE, system_message
from workflows.llm.guard import BUDGETS, ModelGuard, ModelUnavailable, Unavailability
from workflows.llm.model import Message, Reply, TextDelta, ToolCall, ToolSpec

MAX_CALLS_PER_STEP = 4


@dataclass(frozen=True)
class ToolOutcome:
    """What a tool call gave: `text` for the model (fenced), `summary` for the evidence list."""

    text: str
    summary: str
    ok: bool = True
    # a plugin's summary as {"code", "values"} (`card.finding.<code>`); {} for the bot's own
    finding: Mapping[str, Any] = field(default_factory=dict)


class Toolbox(Protocol):
    def specs(self) -> list[ToolSpec]: ...

    async def call(self, call: ToolCall) -> ToolOutcome: ...


class Listener(Protocol):
    """Where the answer shows as it is made (the streaming card)."""

    def text(self, delta: str) -> None: ...

    def tool(self, name: str) -> None: ...


@dataclass(frozen=True)
class UsedTool:
    name: str
    summary: str
    ok: bool
    finding: Mapping[str, Any] = field(default_factory=dict)  # see ToolOutcome


# why an answer is missing or incomplete: the model's unavailability, the step limit, a
# failure of the bot ("error"), or no agent configured; "" when it is whole
ChatCode = Unavailability | Literal["steps", "no_agent", ""]


@dataclass
class ChatOutcome:
    answer: str = ""
    calls: list[UsedTool] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)  # the question and all that followed
    degraded: str = ""  # why the answer is missing or incomplete (English, for logs)
    code: ChatCode = ""

    @property
    def over_budget(self) -> bool:
        """The model was not asked: a token budget is used up."""
        return self.code in BUDGETS


class ChatAgent:
    def __init__(self, guard: ModelGuard, *, language: str = "zh", zone: str = "UTC") -> None:
        self.guard = guard
        self.language = language
        self.zone = ZoneInfo(zone)

    async def answer(
        self,
        history: list[Message],
        question: str,
        toolbox: Toolbox,
        listener: Listener,
        *,
        conversation_id: str,
    ) -> ChatOutcome:
        config = self.guard.config
        deadline = time.monotonic() + config.wall_seconds
        today = datetime.now(self.zone).strftime("%Y-%m-%d %A %H:%M")
        system = system_message(self.language, today, str(self.zone))
        outcome = ChatOutcome(messages=[Message("user", question)])
        tools = toolbox.specs()

        async def ask(with_tools: bool) -> Reply:
            nudge = [] if with_tools else [Message("user", FINAL_NUDGE)]
            prompt = [system, *history, *outcome.messages, *nudge]
            reply: Reply | None = None
            async for event in self.guard.stream(
                prompt,
                tools=tools if with_tools else (),
                purpose="chat",
                conversation_id=conversation_id,
                deadline=deadline,
            ):
                if isinstance(event, TextDelta):
                    listener.text(event.text)
                else:
                    reply = event.reply
            assert reply is not None, "a stream ends with Done"
            return reply

        try:
            for _ in range(config.max_steps):
                reply = await ask(with_tools=True)
                if not reply.tool_calls:
                    outcome.answer = reply.text
                    outcome.messages.append(Message("assistant", reply.text))
                    return outcome
                await self._use_tools(reply, toolbox, listener, outcome)
            outcome.degraded, outcome.code = (
                f"the step limit ({config.max_steps}) was reached",
                "steps",
            )
            listener.text("\n\n")
            reply = await ask(with_tools=False)
            outcome.answer = reply.text
            outcome.messages.append(Message("assistant", reply.text))
        except ModelUnavailable as exc:
            outcome.degraded, outcome.code = str(exc), exc.code
        return outcome

    @staticmethod
    async def _use_tools(
        reply: Reply, toolbox: Toolbox, listener: Listener, outcome: ChatOutcome
    ) -> None:
        outcome.messages.append(Message("assistant", reply.text, tool_calls=reply.tool_calls))
        if reply.text:
            listener.text("\n")
        for call in reply.tool_calls[:MAX_CALLS_PER_STEP]:
            listener.tool(call.name)
            result = await toolbox.call(call)
            outcome.calls.append(UsedTool(call.name, result.summary, result.ok, result.finding))
            outcome.messages.append(
                Message("tool", result.text, tool_call_id=call.id, name=call.name)
            )
        for call in reply.tool_calls[MAX_CALLS_PER_STEP:]:
            skipped = f"not run: at most {MAX_CALLS_PER_STEP} tool calls per step"
            outcome.messages.append(Message("tool", skipped, tool_call_id=call.id, name=call.name))
