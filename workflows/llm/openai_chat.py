"""OpenAI and OpenAI-compatible servers (DeepSeek, Qwen, Ollama, vLLM) over Chat Completions.

Chat Completions (`/v1/chat/completions`) rather than the Responses API, because it is what the
compatible servers speak. The official SDK never retries (`max_retries=0`): the guard does.

Usage::

    model = OpenAIChat("sk-…", "gpt-4o-mini")
    model = OpenAIChat("unused", "qwen2.5:7b", base_url="http://127.0.0.1:11434/v1")
    reply = await model.complete([Message("user", "Disk full on db-1")], tools=specs)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
    dump_tool_arguments,
    parse_tool_arguments,
)

if TYPE_CHECKING:
    from openai.types import CompletionUsage
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolUnionParam
    from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

_STOP_REASONS = {"stop": "end", "tool_calls": "tool_calls", "length": "max_tokens"}


@dataclass
class _PartialCall:
    """A streamed tool call, assembled from its deltas."""

    id: str = ""
    name: str = ""
    arguments: str = ""


class OpenAIChat:
    """`ChatModel` over the Chat Completions API of OpenAI or a compatible server."""

    provider: str = "openai"

    def __init__(self, api_key: str, model: str, *, base_url: str | None = None) -> None:
        import openai

        self.model = model
        self._key = api_key
        self._errors = SdkErrors(self.provider, model, api_key, openai)
        # The official endpoint rejects `max_tokens` for its reasoning models; compatible
        # servers (Ollama, older vLLM) know only `max_tokens`.
        self._official = base_url is None or "api.openai.com" in base_url
        self._client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        max_tokens: int = 1024,
        request_timeout: float = 60.0,
    ) -> Reply:
        """One call; raises ModelError."""
        import openai

        sent = _messages(messages)
        try:
            response = await self._client.chat.completions.create(
                model=self.model,
                messages=sent,
                tools=_tools(tools) if tools else openai.omit,
                max_tokens=openai.omit if self._official else max_tokens,
                max_completion_tokens=max_tokens if self._official else openai.omit,
                timeout=request_timeout,
            )
            if not response.choices:
                raise ModelError(self._text("a reply without choices"), retryable=False)
            choice = response.choices[0]
            calls = tuple(
                _tool_call(call.id, call.function.name, call.function.arguments)
                for call in choice.message.tool_calls or ()
                if call.type == "function"
            )
            return Reply(
                text=choice.message.content or "",
                tool_calls=calls,
                usage=_usage(response.usage),
                stop_reason=_stop_reason(choice.finish_reason, bool(calls)),
                model=response.model or self.model,
            )
        except ModelError:
            raise
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
        import openai

        sent = _messages(messages)
        text: list[str] = []
        calls: dict[int, _PartialCall] = {}
        usage = Usage()
        finish: str | None = None
        model = self.model
        seen = False
        try:
            chunks = await self._client.chat.completions.create(
                model=self.model,
                messages=sent,
                tools=_tools(tools) if tools else openai.omit,
                max_tokens=openai.omit if self._official else max_tokens,
                max_completion_tokens=max_tokens if self._official else openai.omit,
                stream=True,
                stream_options={"include_usage": True},
                timeout=request_timeout,
            )
            async with chunks:
                async for chunk in chunks:
                    seen = True
                    model = chunk.model or model
                    if chunk.usage is not None:
                        usage = _usage(chunk.usage)
                    for choice in chunk.choices:
                        if choice.index != 0:
                            continue
                        if choice.delta.content:
                            text.append(choice.delta.content)
                            yield TextDelta(choice.delta.content)
                        for delta in choice.delta.tool_calls or ():
                            partial = calls.setdefault(_call_index(delta, calls), _PartialCall())
                            partial.id = delta.id or partial.id
                            if delta.function is not None:
                                name = delta.function.name or ""
                                # Some compatible servers repeat the whole name in every delta.
                                if name != partial.name:
                                    partial.name += name
                                partial.arguments += delta.function.arguments or ""
                        finish = choice.finish_reason or finish
        except Exception as exc:
            raise self._error(exc, request_timeout) from None
        if finish is None:
            raise self._unfinished(seen)
        assembled = tuple(
            _tool_call(calls[i].id, calls[i].name, calls[i].arguments) for i in sorted(calls)
        )
        yield Done(
            Reply(
                text="".join(text),
                tool_calls=assembled,
                usage=usage,
                stop_reason=_stop_reason(finish, bool(assembled)),
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


def _messages(messages: Sequence[Message]) -> list[ChatCompletionMessageParam]:
    sent: list[ChatCompletionMessageParam] = []
    for message in messages:
        if message.role == "system":
            sent.append({"role": "system", "content": message.content})
        elif message.role == "user":
            if message.name:
                sent.append({"role": "user", "content": message.content, "name": message.name})
            else:
                sent.append({"role": "user", "content": message.content})
        elif message.role == "assistant":
            if not message.tool_calls:
                sent.append({"role": "assistant", "content": message.content})
                continue
            sent.append(
                {
                    "role": "assistant",
                    "content": message.content or None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {
                                "name": call.name,
                                "arguments": dump_tool_arguments(
                                    call.arguments, call.raw_arguments
                                ),
                            },
                        }
                        for call in message.tool_calls
                    ],
                }
            )
        else:
            if not message.tool_call_id:
                raise ModelError("a tool message needs its tool_call_id", retryable=False)
            sent.append(
                {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
            )
    return sent


def _tools(tools: Sequence[ToolSpec]) -> list[ChatCompletionToolUnionParam]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": dict(tool.parameters),
            },
        }
        for tool in tools
    ]


def _stop_reason(finish: str | None, called: bool) -> str:
    # Some compatible servers (older Ollama) finish a tool-calling turn with `stop`.
    if called and finish == "stop":
        return "tool_calls"
    return _STOP_REASONS.get(finish or "", "other")


def _call_index(delta: ChoiceDeltaToolCall, calls: dict[int, _PartialCall]) -> int:
    """Where a tool-call delta belongs; a few servers omit `index`: an `id` starts a new call."""
    if isinstance(delta.index, int):
        return delta.index
    if delta.id or not calls:
        return len(calls)
    return max(calls)


def _tool_call(call_id: str, name: str, raw: str) -> ToolCall:
    return ToolCall(id=call_id, name=name, arguments=parse_tool_arguments(raw), raw_arguments=raw)


def _usage(usage: CompletionUsage | None) -> Usage:
    if usage is None:
        return Usage()
    return Usage(input_tokens=usage.prompt_tokens or 0, output_tokens=usage.completion_tokens or 0)
