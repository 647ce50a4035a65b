"""A scripted, protocol-faithful fake of the OpenAI Chat Completions and Anthropic Messages APIs.

A real HTTP server (starlette + uvicorn on 127.0.0.1, a free port) so the real `openai` and
`anthropic` SDK clients talk to it exactly as they talk to the real services: same paths, same
JSON, same SSE framing (OpenAI `data: {...}` chunks with split tool-call deltas, a usage chunk and
`data: [DONE]`; Anthropic `event: …` / `data: {...}` in the real order message_start,
content_block_start, ping, content_block_delta…, content_block_stop, message_delta,
message_stop).

Tests script provider-neutral turns; each is rendered in whichever API was called::

    async with fake_llm() as fake:
        fake.script(
            FakeTurn(tool_calls=[("host_disk", {"path": "/"})], input_tokens=120),
            FakeTurn(text="The disk is full.", output_tokens=30),
            FakeFailure(status=429, retry_after=2),
            FakeDelay(5),                      # answer only after 5 s (client timeouts)
            FakeRaw("not json"),               # a garbage 200 body
        )
        model = OpenAIChat("sk-test", "gpt-4o-mini", base_url=f"{fake.base_url}/v1")
        model = AnthropicChat("sk-ant-test", "claude-x", base_url=fake.base_url)
        ...
        fake.requests[0].body["messages"], fake.requests[0].headers["authorization"]
        fake.clear()                           # forget the script and the recorded requests

- `fake.requests`: every call, a `FakeRequest(api, path, body, headers)`; `api` is `openai` or
  `anthropic`, `body` the parsed JSON, `headers` lower-cased names, `.api_key` the key sent
  (`x-api-key` or `Authorization: Bearer`: recent `anthropic` SDKs send API keys as Bearer).
- A tool call's arguments may be a dict (sent as JSON) or a str (sent verbatim: garbage JSON).
- A `FakeFailure` message may contain `{api_key}`, replaced by the key the client sent (to prove
  a leaked key never reaches an error message).
- When the script is empty every call gets the text turn "(no scripted reply)", so a test that
  forgot to script notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.wait import wait_until

NO_SCRIPT_TEXT = "(no scripted reply)"
StopReason = Literal["end", "tool_calls", "max_tokens"]


@dataclass(frozen=True)
class FakeTurn:
    """A successful reply. `stop` defaults to `tool_calls` when there are calls, else `end`."""

    text: str = ""
    tool_calls: list[tuple[str, Mapping[str, Any] | str]] = field(default_factory=list)
    input_tokens: int = 10
    output_tokens: int = 5
    stop: StopReason | None = None
    pace: float = 0.0  # seconds between streamed events (a model writing at a readable speed)


@dataclass(frozen=True)
class FakeFailure:
    """An HTTP error in the API's own error JSON (with `retry-after` when given)."""

    status: int
    retry_after: float | None = None
    message: str | None = None


@dataclass(frozen=True)
class FakeDelay:
    """Wait `seconds` before answering with `then` (for client timeouts)."""

    seconds: float
    then: FakeTurn = field(default_factory=lambda: FakeTurn(text="late reply"))


@dataclass(frozen=True)
class FakeRaw:
    """A body sent verbatim (garbage), with a JSON content type unless told otherwise."""

    text: str
    status: int = 200
    content_type: str = "application/json"


Scripted = FakeTurn | FakeFailure | FakeDelay | FakeRaw


@dataclass(frozen=True)
class FakeRequest:
    api: Literal["openai", "anthropic"]
    path: str
    body: Any
    headers: dict[str, str]

    @property
    def api_key(self) -> str:
        """The key the client sent: `x-api-key`, or `Authorization: Bearer` (which OpenAI uses,
        and recent `anthropic` SDKs use for API keys too)."""
        bearer = self.headers.get("authorization", "").removeprefix("Bearer ")
        return self.headers.get("x-api-key") or bearer


class FakeLLM:
    """The scripted state behind the server; see the module docstring."""

    def __init__(self) -> None:
        self.base_url = ""
        self.requests: list[FakeRequest] = []
        # (time.monotonic(), the SSE event) when each stream sent its first text
        self.first_text: list[tuple[float, str]] = []
        self._queue: deque[Scripted] = deque()
        self._closing = asyncio.Event()
        self._ids = 0

    def script(self, *turns: Scripted) -> None:
        """Append replies, answered in order, one per call."""
        self._queue.extend(turns)

    def clear(self) -> None:
        self._queue.clear()
        self.requests.clear()

    @property
    def pending(self) -> int:
        """Scripted replies not yet consumed."""
        return len(self._queue)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self._openai, methods=["POST"]),
            Route("/v1/messages", self._anthropic, methods=["POST"]),
        ]

    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids:04d}"

    async def _take(
        self, api: Literal["openai", "anthropic"], request: Request
    ) -> tuple[Scripted, FakeRequest]:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        headers = {k.lower(): v for k, v in request.headers.items()}
        recorded = FakeRequest(api, request.url.path, body, headers)
        self.requests.append(recorded)
        item = self._queue.popleft() if self._queue else FakeTurn(text=NO_SCRIPT_TEXT)
        if isinstance(item, FakeDelay):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), item.seconds)
            return item.then, recorded
        return item, recorded

    # ---- OpenAI Chat Completions -------------------------------------------------------------

    async def _openai(self, request: Request) -> Response:
        item, recorded = await self._take("openai", request)
        body = recorded.body if isinstance(recorded.body, dict) else {}
        if isinstance(item, FakeRaw):
            return Response(item.text, status_code=item.status, media_type=item.content_type)
        if isinstance(item, FakeFailure):
            return self._openai_error(item, recorded.api_key)
        assert isinstance(item, FakeTurn)
        model = str(body.get("model", "fake-model"))
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return _sse(self._openai_chunks(item, model, usage), item.pace, self.first_text)
        return JSONResponse(self._openai_completion(item, model))

    def _openai_error(self, failure: FakeFailure, key: str) -> Response:
        kind = {400: "invalid_request_error", 401: "invalid_request_error", 429: "requests"}
        error = {
            "message": _failure_message(failure, key),
            "type": kind.get(failure.status, "server_error"),
            "param": None,
            "code": "invalid_api_key" if failure.status == 401 else None,
        }
        return JSONResponse({"error": error}, failure.status, headers=_retry_headers(failure))

    def _openai_tool_calls(self, turn: FakeTurn) -> list[tuple[str, str, str]]:
        return [(self._next_id("call_"), name, _arguments(args)) for name, args in turn.tool_calls]

    def _openai_completion(self, turn: FakeTurn, model: str) -> dict[str, Any]:
        calls = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            for cid, name, args in self._openai_tool_calls(turn)
        ]
        message: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
        message["refusal"] = None
        if calls:
            message["tool_calls"] = calls
        return {
            "id": self._next_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": _openai_finish(turn),
                    "logprobs": None,
                }
            ],
            "usage": _openai_usage(turn),
        }

    def _openai_chunks(self, turn: FakeTurn, model: str, usage: bool) -> Iterator[str]:
        head = {
            "id": self._next_id("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            return _data({**head, "choices": [choice]})

        yield chunk({"role": "assistant", "content": ""})
        for piece in _pieces(turn.text):
            yield chunk({"content": piece})
        for index, (cid, name, args) in enumerate(self._openai_tool_calls(turn)):
            start = {"index": index, "id": cid, "type": "function"}
            yield chunk({"tool_calls": [{**start, "function": {"name": name, "arguments": ""}}]})
            for piece in _pieces(args):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, _openai_finish(turn))
        if usage:
            yield _data({**head, "choices": [], "usage": _openai_usage(turn)})
        yield "data: [DONE]\n\n"

    # ---- Anthropic Messages --------------------------------------------------------------------

    async def _anthropic(self, request: Request) -> Response:
        item, recorded = await self._take("anthropic", request)
        body = recorded.body if isinstance(recorded.body, dict) else {}
        if isinstance(item, FakeRaw):
            return Response(item.text, status_code=item.status, media_type=item.content_type)
        if isinstance(item, FakeFailure):
            return self._anthropic_error(item, recorded.api_key)
        assert isinstance(item, FakeTurn)
        model = str(body.get("model", "fake-model"))
        if body.get("stream"):
            return _sse(self._anthropic_events(item, model), item.pace, self.first_text)
        message = self._anthropic_message(item, model)
        message["content"] = self._anthropic_blocks(item)
        message["stop_reason"] = _anthropic_stop(item)
        message["usage"] = {"input_tokens": item.input_tokens, "output_tokens": item.output_tokens}
        return JSONResponse(message)

    def _anthropic_error(self, failure: FakeFailure, key: str) -> Response:
        kinds = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }
        error = {"type": kinds.get(failure.status, "api_error")}
        error["message"] = _failure_message(failure, key)
        headers = {"request-id": self._next_id("req_"), **_retry_headers(failure)}
        return JSONResponse(
            {"type": "error", "error": error}, status_code=failure.status, headers=headers
        )

    def _anthropic_message(self, turn: FakeTurn, model: str) -> dict[str, Any]:
        return {
            "id": self._next_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": turn.input_tokens, "output_tokens": 1},
        }

    def _anthropic_blocks(self, turn: FakeTurn) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if turn.text:
            blocks.append({"type": "text", "text": turn.text})
        for name, args in turn.tool_calls:
            # The real API always sends an object; a garbage str can only be sent as a str.
            tool_id = self._next_id("toolu_")
            blocks.append({"type": "tool_use", "id": tool_id, "name": name, "input": args})
        return blocks

    def _anthropic_events(self, turn: FakeTurn, model: str) -> Iterator[str]:
        message = self._anthropic_message(turn, model)
        yield _event("message_start", {"type": "message_start", "message": message})
        for index, block in enumerate(self._anthropic_blocks(turn)):
            if block["type"] == "text":
                start: dict[str, Any] = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
            else:
                start = {**block, "input": {}}
                json_text = _arguments(block["input"])
                parts = ["", *_pieces(json_text)]
                deltas = [{"type": "input_json_delta", "partial_json": p} for p in parts]
            event = {"type": "content_block_start", "index": index, "content_block": start}
            yield _event("content_block_start", event)
            if index == 0:
                yield _event("ping", {"type": "ping"})
            for delta in deltas:
                event = {"type": "content_block_delta", "index": index, "delta": delta}
                yield _event("content_block_delta", event)
            yield _event("content_block_stop", {"type": "content_block_stop", "index": index})
        end = {"stop_reason": _anthropic_stop(turn), "stop_sequence": None}
        usage = {"output_tokens": turn.output_tokens}
        yield _event("message_delta", {"type": "message_delta", "delta": end, "usage": usage})
        yield _event("message_stop", {"type": "message_stop"})


@contextlib.asynccontextmanager
async def fake_llm() -> AsyncIterator[FakeLLM]:
    """Serve a `FakeLLM` on a free local port for the duration of the block."""
    fake = FakeLLM()
    config = uvicorn.Config(
        Starlette(routes=fake.routes()),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    def started() -> bool:
        if task.done():
            task.result()
            raise RuntimeError("the fake LLM server stopped during start-up")
        return bool(server.started)

    await wait_until(started, 10, "the fake LLM server to serve")
    port = server.servers[0].sockets[0].getsockname()[1]
    fake.base_url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        fake._closing.set()
        server.should_exit = True
        await task


# ---- rendering helpers -----------------------------------------------------------------------


def _arguments(args: Mapping[str, Any] | str) -> str:
    return args if isinstance(args, str) else json.dumps(dict(args))


def _pieces(text: str, size: int = 7) -> list[str]:
    """Split text the way a model streams it: several small fragments."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def _data(payload: Mapping[str, Any]) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def _event(name: str, payload: Mapping[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n"


def _sse(
    events: Iterator[str], pace: float = 0.0, first_text: list[tuple[float, str]] | None = None
) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        seen_text = False
        for event in events:
            yield event.encode()
            if not seen_text and first_text is not None and _carries_text(event):
                seen_text = True
                first_text.append((time.monotonic(), event))
            await asyncio.sleep(pace)  # a model streams its tokens at a pace; not a wait

    return StreamingResponse(body(), media_type="text/event-stream")


def _stop(turn: FakeTurn) -> StopReason:
    return turn.stop or ("tool_calls" if turn.tool_calls else "end")


def _openai_finish(turn: FakeTurn) -> str:
    return {"end": "stop", "tool_calls": "tool_calls", "max_tokens": "length"}[_stop(turn)]


def _anthropic_stop(turn: FakeTurn) -> str:
    return {"end": "end_turn", "tool_calls": "tool_use", "max_tokens": "max_tokens"}[_stop(turn)]


def _openai_usage(turn: FakeTurn) -> dict[str, int]:
    return {
        "prompt_tokens": turn.input_tokens,
        "completion_tokens": turn.output_tokens,
        "total_tokens": turn.input_tokens + turn.output_tokens,
    }


def _failure_message(failure: FakeFailure, api_key: str) -> str:
    default = {
        400: "Invalid request.",
        401: "Invalid API key.",
        429: "Rate limit reached, please retry later.",
        529: "Overloaded.",
    }.get(failure.status, "The server had an error while processing your request.")
    return (failure.message or default).replace("{api_key}", api_key)


def _retry_headers(failure: FakeFailure) -> dict[str, str]:
    return {} if failure.retry_after is None else {"retry-after": f"{failure.retry_after:g}"}


def _carries_text(event: str) -> bool:
    """Whether an SSE event carries model text (an OpenAI content delta, an Anthropic
    text_delta)."""
    return '"text_delta"' in event or ('"content": "' in event and '"content": ""' not in event)
