"""The one interface every model provider implements (OpenAI, OpenAI-compatible, Anthropic).

Messages, tools and replies are provider-neutral; each adapter translates them to and from its
API's JSON. Adapters never retry (the guard does, with tenacity, across the shared rate limit)
and never raise anything but `ModelError`, which says whether a retry can help.

Usage::

    model = build_model("openai", "gpt-4o-mini", openai_api_key="sk-…")
    reply = await model.complete(
        [Message("system", "You are…"), Message("user", "Disk full on db-1")],
        tools=[ToolSpec("host_disk", "Disk usage", {"type": "object", "properties": {}})],
        max_tokens=800,
    )
    reply.text, reply.tool_calls, reply.usage.input_tokens
    async for event in model.stream(messages):          # TextDelta … then Done(reply)
        ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: a diagnostic plugin, its parameter JSON schema as `parameters`."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """A call the model asked for. `arguments` is None when `raw_arguments` is not a JSON object."""

    id: str
    name: str
    arguments: Mapping[str, Any] | None
    raw_arguments: str = ""


@dataclass(frozen=True)
class Message:
    """One conversation message. A `tool` message answers the call `tool_call_id`; an
    `assistant` message may carry the tool calls it made (they are sent back as history)."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Reply:
    """What one model call returned. `stop_reason` is normalised to
    `end` | `tool_calls` | `max_tokens` | `other`."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    stop_reason: str = "end"
    model: str = ""


@dataclass(frozen=True)
class TextDelta:
    """A piece of streamed text."""

    text: str


@dataclass(frozen=True)
class Done:
    """The end of a stream: the whole reply, as `complete` would have returned it."""

    reply: Reply


StreamEvent = TextDelta | Done


class ModelError(Exception):
    """A failed model call. `retryable`: 429, 5xx, timeouts and connection failures."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class ChatModel(Protocol):
    """A chat model with tool calling. `provider` is `openai` | `anthropic`."""

    provider: str
    model: str

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        max_tokens: int = 1024,
        request_timeout: float = 60.0,
    ) -> Reply:
        """One call; raises ModelError."""
        ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        max_tokens: int = 1024,
        request_timeout: float = 60.0,
    ) -> AsyncIterator[StreamEvent]:
        """The same call, streamed: TextDelta events, then exactly one Done; raises ModelError."""
        ...

    async def aclose(self) -> None:
        """Close the HTTP client."""
        ...
