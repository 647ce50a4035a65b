"""Anthropic models over the Messages API (`/v1/messages`).

System messages become the `system` parameter; tool calls are `tool_use` blocks and their results
`tool_result` blocks in a user message (consecutive messages of one role are merged, tool results
first, as the API requires). The official SDK never retries (`max_retries=0`): the guard does.

Usage::

    model = AnthropicChat("sk-ant-…", "claude-haiku-4-5")
    async for event in model.stream([Message("user", "Why is db-1 slow?")]):
        ...
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workflows.llm.model import (
    Done,
    Message,
    ModelError,
    Reply,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from workflows.llm.providers import (
    SdkErrors,
    parse_tool_arguments,
)

if TYPE_CHECKING:
    from anthropic.types import ContentBlockParam, MessageParam, ToolParam, ToolUseBlockParam

_STOP_REASONS = {
    "end_turn": "end",
    "stop_sequence": "end",
    "tool_use": "tool_calls",
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "max_tokens",
}


@dataclass
class _PartialBlock:
    """A streamed content block, assembled from its deltas."""

    kind: str
    id: str = ""
    name: str = ""
    text: str = ""


class AnthropicChat:
    """`ChatModel` over the Anthropic Messages API."""

    provider: str = "anthropic"

    def __init__(self, api_key: str, model: str, *, base_url: str | None = None) -> None:
        import anthropic

        self.model = model
        self._key = api_key
        self._errors = SdkErrors(self.provider, model, api_key, anthropic)
        self._client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        max_tokens: int = 1024,
        request_timeout: float = 60.0,
    ) -> Reply:
        """One call; raises ModelError."""
        import anthropic
        from anthropic.types import TextBlock, ToolUseBlock

        system, sent = _messages(messages)
        try:
            response = await self._client.messages.create(
                model=self.model,
                system=system or anthropic.omit,
                messages=sent,
                tools=_tools(tools) if tools else anthropic.omit,
                max_tokens=max_tokens,
                timeout=request_timeout,
            )
            text: list[str] = []
            calls: list[ToolCall] = []
            for block in response.content:
                if isinstance(block, TextBlock):
                    text.append(block.text)
                elif isinstance(block, ToolUseBlock):
                    calls.append(_tool_call(block.id, block.name, block.input))
            return Reply(
                text="".join(text),
                tool_calls=tuple(calls),
                usage=Usage(response.usage.input_tokens, response.usage.output_tokens),
                stop_reason=_STOP_REASONS.get(response.stop_reason or "", "other"),
                model=response.model or self.model,
            )
        except Exception as exc:
            raise self._error(exc, request_timeout) from None

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        max_tokens: int = 1024,
        request_timeout: float = 60.0,
    ) -> AsyncIterator[StreamEvent]:
        """The same call, streamed: TextDelta events, then exactly one Done; raises ModelError."""
        import anthropic
        from anthropic.types import (
            InputJSONDelta,
            RawContentBlockDeltaEvent,
            RawContentBlockStartEvent,
            RawMessageDeltaEvent,
            RawMessageStartEvent,
            RawMessageStopEvent,
            TextBlock,
            ToolUseBlock,
        )
        from anthropic.types import TextDelta as AnthropicTextDelta

        system, sent = _messages(messages)
        blocks: dict[int, _PartialBlock] = {}
        input_tokens = output_tokens = 0
        stop_reason: str | None = None
        model = self.model
        finished = seen = False
        try:
            events = await self._client.messages.create(
                model=self.model,
                system=system or anthropic.omit,
                messages=sent,
                tools=_tools(tools) if tools else anthropic.omit,
                max_tokens=max_tokens,
                stream=True,
                timeout=request_timeout,
            )
            async with events:
                async for event in events:
                    seen = True
                    if isinstance(event, RawMessageStartEvent):
                        model = event.message.model or model
                        input_tokens = event.message.usage.input_tokens
                        output_tokens = event.message.usage.output_tokens
                    elif isinstance(event, RawContentBlockStartEvent):
                        start = event.content_block
                        if isinstance(start, TextBlock):
                            blocks[event.index] = _PartialBlock("text", text=start.text)
                        elif isinstance(start, ToolUseBlock):
                            initial = json.dumps(start.input) if start.input else ""
                            blocks[event.index] = _PartialBlock("tool", start.id, start.name)
                            blocks[event.index].text = initial
                    elif isinstance(event, RawContentBlockDeltaEvent):
                        block = blocks.get(event.index)
                        delta = event.delta
                        if block is None:
                            continue
                        if isinstance(delta, AnthropicTextDelta) and block.kind == "text":
                            block.text += delta.text
                            if delta.text:
                                yield TextDelta(delta.text)
                        elif isinstance(delta, InputJSONDelta) and block.kind == "tool":
                            block.text += delta.partial_json
                    elif isinstance(event, RawMessageDeltaEvent):
                        stop_reason = event.delta.stop_reason or stop_reason
                        output_tokens = event.usage.output_tokens
                        if event.usage.input_tokens is not None:
                            input_tokens = event.usage.input_tokens
                    elif isinstance(event, RawMessageStopEvent):
                        finished = True
        except Exception as exc:
            raise self._error(exc, request_timeout) from None
        if not finished:
            raise self._unfinished(seen)
        ordered = [blocks[i] for i in sorted(blocks)]
        yield Done(
            Reply(
                text="".join(b.text for b in ordered if b.kind == "text"),
                tool_calls=tuple(
                    ToolCall(b.id, b.name, parse_tool_arguments(b.text), b.text)
                    for b in ordered
                    if b.kind == "tool"
                ),
                usage=Usage(input_tokens, output_tokens),
                stop_reason=_STOP_REASONS.get(stop_reason or "", "other"),
                model=model,
            )
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.close()

    def _text(self, what: str, detail: str = "") -> str:
        return self._errors.text(what, detail)

    def _unfinished(self, seen: bool) -> ModelError:
        return self._errors.unfinished(seen)

    def _error(self, exc: Exception, timeout: float) -> ModelError:
        return self._errors.error(exc, timeout)


def _messages(messages: Sequence[Message]) -> tuple[str, list[MessageParam]]:
    """The `system` text and the alternating user/assistant messages."""
    system: list[str] = []
    turns: list[tuple[str, list[ContentBlockParam]]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks: list[ContentBlockParam] = []
        if message.role == "system":
            if message.content:
                system.append(message.content)
            continue
        if message.role == "tool":
            if not message.tool_call_id:
                raise ModelError("a tool message needs its tool_call_id", retryable=False)
            blocks.append(
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id,
                    "content": message.content,
                }
            )
        elif message.content:
            blocks.append({"type": "text", "text": message.content})
        for call in message.tool_calls if message.role == "assistant" else ():
            use: ToolUseBlockParam = {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": dict(call.arguments or {}),
            }
            blocks.append(use)
        if not blocks:
            continue
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    sent: list[MessageParam] = []
    for role, blocks in turns:
        if role == "assistant":
            sent.append({"role": "assistant", "content": blocks})
        else:
            # Tool results must open the user message that follows the tool calls.
            blocks.sort(key=lambda block: block["type"] != "tool_result")
            sent.append({"role": "user", "content": blocks})
    return "\n\n".join(system), sent


def _tools(tools: Sequence[ToolSpec]) -> list[ToolParam]:
    return [
        {"name": tool.name, "description": tool.description, "input_schema": dict(tool.parameters)}
        for tool in tools
    ]


def _tool_call(call_id: str, name: str, arguments: Any) -> ToolCall:
    if isinstance(arguments, dict):
        return ToolCall(call_id, name, arguments, json.dumps(arguments, ensure_ascii=False))
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(call_id, name, None, raw)
