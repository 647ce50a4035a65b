"""Both model adapters, driving the real `openai` and `anthropic` SDK clients against the local
protocol-faithful fake (`tests.support.fake_llm`): what is sent, what comes back, how it fails."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.fake_llm import (
    NO_SCRIPT_TEXT,
    FakeDelay,
    FakeFailure,
    FakeLLM,
    FakeRaw,
    FakeTurn,
    fake_llm,
)
from workflows.llm.anthropic_chat import AnthropicChat
from workflows.llm.model import (
    ChatModel,
    Done,
    Message,
    ModelError,
    Reply,
    StreamEvent,
    TextDelta,
    ToolSpec,
)
from workflows.llm.openai_chat import OpenAIChat
from workflows.llm.providers import build_model

OPENAI_KEY = "sk-test-openai-5f2b9c0e7d"
ANTHROPIC_KEY = "sk-ant-test-8a1d44e0c3"
DISK = ToolSpec(
    "host_disk",
    "Disk usage of a mount point",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)
LOAD = ToolSpec("host_load", "Load averages", {"type": "object", "properties": {}})
CHAT = [Message("system", "You are an SRE."), Message("user", "Disk full on db-1")]


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[FakeLLM]:
    async with fake_llm() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeLLM) -> FakeLLM:
    server.clear()
    return server


@pytest.fixture(params=["openai", "anthropic"])
async def model(request: pytest.FixtureRequest, fake: FakeLLM) -> AsyncIterator[ChatModel]:
    chat: ChatModel
    if request.param == "openai":
        chat = OpenAIChat(OPENAI_KEY, "gpt-4o-mini", base_url=f"{fake.base_url}/v1")
    else:
        chat = AnthropicChat(ANTHROPIC_KEY, "claude-test", base_url=fake.base_url)
    yield chat
    await chat.aclose()


def key_of(model: ChatModel) -> str:
    return OPENAI_KEY if model.provider == "openai" else ANTHROPIC_KEY


async def collect(model: ChatModel, messages: list[Message], **kwargs: Any) -> list[StreamEvent]:
    return [event async for event in model.stream(messages, **kwargs)]


async def call(model: ChatModel, streamed: bool, **kwargs: Any) -> object:
    """One call on CHAT, streamed or not."""
    if streamed:
        return await collect(model, CHAT, **kwargs)
    return await model.complete(CHAT, **kwargs)


async def test_plain_text_reply_with_usage(model: ChatModel, fake: FakeLLM) -> None:
    fake.script(FakeTurn(text="Root is 97% full.", input_tokens=120, output_tokens=30))

    reply = await model.complete(CHAT, max_tokens=300)

    assert reply == Reply(
        text="Root is 97% full.",
        usage=reply.usage,
        stop_reason="end",
        model=model.model,
    )
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.total) == (
        120,
        30,
        150,
    )
    (sent,) = fake.requests
    assert sent.api_key == key_of(model)
    if model.provider == "openai":
        assert sent.path == "/v1/chat/completions"
        assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
        assert sent.body["messages"] == [
            {"role": "system", "content": "You are an SRE."},
            {"role": "user", "content": "Disk full on db-1"},
        ]
        assert sent.body["max_tokens"] == 300  # a compatible server: not max_completion_tokens
        assert "tools" not in sent.body
    else:
        assert sent.path == "/v1/messages"
        assert sent.body["system"] == "You are an SRE."
        assert sent.body["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "Disk full on db-1"}]}
        ]
        assert sent.body["max_tokens"] == 300
        assert "tools" not in sent.body


async def test_tool_call_round_trip(model: ChatModel, fake: FakeLLM) -> None:
    fake.script(
        FakeTurn(text="Checking.", tool_calls=[("host_disk", {"path": "/"}), ("host_load", {})]),
        FakeTurn(text="Root is full; load is normal."),
    )

    first = await model.complete(CHAT, tools=[DISK, LOAD])
    assert first.stop_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in first.tool_calls] == [
        ("host_disk", {"path": "/"}),
        ("host_load", {}),
    ]
    disk, load = first.tool_calls
    history = [
        *CHAT,
        Message("assistant", first.text, tool_calls=first.tool_calls),
        Message("tool", '{"used": "97%"}', tool_call_id=disk.id, name="host_disk"),
        Message("tool", '{"load1": 0.4}', tool_call_id=load.id, name="host_load"),
    ]
    second = await model.complete(history, tools=[DISK, LOAD])

    assert second.text == "Root is full; load is normal."
    assert second.stop_reason == "end"
    asked, answered = fake.requests
    if model.provider == "openai":
        assert asked.body["tools"][0] == {
            "type": "function",
            "function": {
                "name": "host_disk",
                "description": "Disk usage of a mount point",
                "parameters": dict(DISK.parameters),
            },
        }
        assert answered.body["messages"][2:] == [
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": disk.id,
                        "type": "function",
                        "function": {"name": "host_disk", "arguments": '{"path": "/"}'},
                    },
                    {
                        "id": load.id,
                        "type": "function",
                        "function": {"name": "host_load", "arguments": "{}"},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": disk.id, "content": '{"used": "97%"}'},
            {"role": "tool", "tool_call_id": load.id, "content": '{"load1": 0.4}'},
        ]
    else:
        assert asked.body["tools"][0] == {
            "name": "host_disk",
            "description": "Disk usage of a mount point",
            "input_schema": dict(DISK.parameters),
        }
        assert answered.body["system"] == "You are an SRE."
        assert answered.body["messages"][1:] == [
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": disk.id,
                        "name": "host_disk",
                        "input": {"path": "/"},
                    },
                    {"type": "tool_use", "id": load.id, "name": "host_load", "input": {}},
                ],
            },
            {  # both results in one user message, as the API requires
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": disk.id, "content": '{"used": "97%"}'},
                    {"type": "tool_result", "tool_use_id": load.id, "content": '{"load1": 0.4}'},
                ],
            },
        ]


async def test_stream_deltas_and_assembled_tool_calls(model: ChatModel, fake: FakeLLM) -> None:
    text = "Checking the disk usage on db-1 now."
    path = {"path": "/var/lib/postgresql/data", "depth": 2}
    fake.script(
        FakeTurn(
            text=text,
            tool_calls=[("host_disk", path), ("host_load", {})],
            input_tokens=55,
            output_tokens=21,
        )
    )

    events = await collect(model, CHAT, tools=[DISK, LOAD])

    *deltas, done = events
    assert isinstance(done, Done)
    assert all(isinstance(event, TextDelta) for event in deltas)
    assert len(deltas) > 2  # really streamed in pieces
    assert "".join(d.text for d in deltas if isinstance(d, TextDelta)) == text == done.reply.text
    assert [(c.name, c.arguments) for c in done.reply.tool_calls] == [
        ("host_disk", path),
        ("host_load", {}),
    ]
    assert all(call.id for call in done.reply.tool_calls)
    assert (done.reply.usage.input_tokens, done.reply.usage.output_tokens) == (55, 21)
    assert done.reply.stop_reason == "tool_calls"
    (sent,) = fake.requests
    assert sent.body["stream"] is True
    if model.provider == "openai":
        assert sent.body["stream_options"] == {"include_usage": True}


async def test_stream_max_tokens_stop_reason(model: ChatModel, fake: FakeLLM) -> None:
    fake.script(
        FakeTurn(text="The disk is", stop="max_tokens"), FakeTurn(text="x", stop="max_tokens")
    )

    *_, done = await collect(model, CHAT, max_tokens=3)
    reply = await model.complete(CHAT, max_tokens=3)

    assert isinstance(done, Done)
    assert done.reply.stop_reason == reply.stop_reason == "max_tokens"


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(429, True), (500, True), (503, True), (529, True), (400, False), (401, False), (403, False)],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_http_errors(
    model: ChatModel, fake: FakeLLM, status: int, retryable: bool, streamed: bool
) -> None:
    # An unhelpful proxy that echoes the key: it must not reach our message.
    fake.script(FakeFailure(status, retry_after=1, message="Incorrect API key: {api_key}"))

    with pytest.raises(ModelError) as caught:
        await call(model, streamed)

    assert (caught.value.retryable, caught.value.status) == (retryable, status)
    assert f"HTTP {status}" in str(caught.value)
    assert key_of(model) not in str(caught.value)
    assert len(str(caught.value)) < 300
    assert len(fake.requests) == 1  # the SDK itself never retries


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_timeout_is_retryable(model: ChatModel, fake: FakeLLM, streamed: bool) -> None:
    fake.script(FakeDelay(3))

    with pytest.raises(ModelError) as caught:
        await call(model, streamed, request_timeout=0.3)

    assert caught.value.retryable is True
    assert caught.value.status is None
    assert len(fake.requests) == 1


async def test_connection_refused_is_retryable(fake: FakeLLM) -> None:
    async with fake_llm() as gone:
        url = gone.base_url
    for chat in (
        OpenAIChat(OPENAI_KEY, "gpt-4o-mini", base_url=f"{url}/v1"),
        AnthropicChat(ANTHROPIC_KEY, "claude-test", base_url=url),
    ):
        with pytest.raises(ModelError) as caught:
            await chat.complete(CHAT, request_timeout=2)
        assert caught.value.retryable is True
        await chat.aclose()


@pytest.mark.parametrize("garbage", ["{not json", "[1, 2]"])
async def test_garbage_tool_arguments_are_kept_raw(
    model: ChatModel, fake: FakeLLM, garbage: str
) -> None:
    fake.script(
        FakeTurn(tool_calls=[("host_disk", garbage)]),
        FakeTurn(tool_calls=[("host_disk", garbage)]),
    )

    reply = await model.complete(CHAT, tools=[DISK])
    *_, done = await collect(model, CHAT, tools=[DISK])

    assert isinstance(done, Done)
    for call in (reply.tool_calls[0], done.reply.tool_calls[0]):
        assert call.name == "host_disk"
        assert call.arguments is None
        assert garbage.replace(" ", "") in call.raw_arguments.replace(" ", "")


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_garbage_body_is_a_model_error(
    model: ChatModel, fake: FakeLLM, streamed: bool
) -> None:
    media = "text/event-stream" if streamed else "application/json"
    fake.script(FakeRaw("not json", content_type=media))

    with pytest.raises(ModelError) as caught:
        await call(model, streamed)

    assert caught.value.retryable is False


async def test_stream_cut_short_is_retryable(model: ChatModel, fake: FakeLLM) -> None:
    if model.provider == "openai":
        chunk = '{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", '
        chunk += (
            '"choices": [{"index": 0, "delta": {"content": "Root is"}, "finish_reason": null}]}'
        )
        body = f"data: {chunk}\n\n"
    else:
        message = '{"id": "m1", "type": "message", "role": "assistant", "model": "m", '
        message += '"content": [], "stop_reason": null, "stop_sequence": null, '
        message += '"usage": {"input_tokens": 3, "output_tokens": 1}}'
        body = f'event: message_start\ndata: {{"type": "message_start", "message": {message}}}\n\n'
    fake.script(FakeRaw(body, content_type="text/event-stream"))

    with pytest.raises(ModelError) as caught:
        await collect(model, CHAT)

    assert caught.value.retryable is True


async def test_unscripted_call_says_so(model: ChatModel, fake: FakeLLM) -> None:
    assert (await model.complete(CHAT)).text == NO_SCRIPT_TEXT


async def test_tool_message_without_call_id_is_refused(model: ChatModel) -> None:
    with pytest.raises(ModelError) as caught:
        await model.complete([*CHAT, Message("tool", "{}")])
    assert caught.value.retryable is False


# ---- build_model -----------------------------------------------------------------------------


def test_rules_needs_no_model() -> None:
    assert build_model("rules", "") is None


@pytest.mark.parametrize(
    ("provider", "model", "settings", "complaint"),
    [
        ("gemini", "x", {}, "unknown LLM provider 'gemini'"),
        ("openai", " ", {"openai_api_key": "k"}, "LLM_MODEL is empty"),
        ("anthropic", "", {"anthropic_api_key": "k"}, "LLM_MODEL is empty"),
        ("openai", "gpt-4o-mini", {}, "OPENAI_API_KEY is empty"),
        ("openai", "gpt-4o-mini", {"anthropic_api_key": "k"}, "OPENAI_API_KEY is empty"),
        ("anthropic", "claude-x", {"openai_api_key": "k"}, "ANTHROPIC_API_KEY is empty"),
    ],
)
def test_build_model_refuses_settings_that_cannot_work(
    provider: str, model: str, settings: dict[str, str], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        build_model(provider, model, **settings)


async def test_build_model_makes_each_adapter(fake: FakeLLM) -> None:
    openai_model = build_model("OpenAI", "gpt-4o-mini", openai_api_key=OPENAI_KEY)
    anthropic_model = build_model("anthropic", "claude-x", anthropic_api_key=ANTHROPIC_KEY)
    assert isinstance(openai_model, OpenAIChat)
    assert isinstance(anthropic_model, AnthropicChat)
    assert (openai_model.provider, anthropic_model.provider) == ("openai", "anthropic")
    await openai_model.aclose()
    await anthropic_model.aclose()


async def test_compatible_server_runs_without_a_key(fake: FakeLLM) -> None:
    local = build_model("openai", "qwen2.5:7b", openai_base_url=f"{fake.base_url}/v1")
    assert isinstance(local, OpenAIChat)
    fake.script(FakeTurn(text="hi"))

    assert (await local.complete(CHAT)).text == "hi"
    assert fake.requests[0].headers["authorization"] == "Bearer unused"
    await local.aclose()


def test_providers_module_does_not_import_the_sdks() -> None:
    code = (
        "import sys, workflows.llm.providers; "
        "print(sorted(m for m in ('openai', 'anthropic') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert out.stdout.strip() == "[]"


async def test_openai_compatible_stream_quirks(fake: FakeLLM) -> None:
    """Older compatible servers: no `index` on tool-call deltas, the name repeated in every
    delta, `stop` as the finish reason of a tool-calling turn, no usage chunk."""
    head = '{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "qwen2.5", '
    deltas = [
        '{"role": "assistant", "tool_calls": [{"id": "call_a", "type": "function", '
        '"function": {"name": "host_disk", "arguments": "{\\"pa"}}]}',
        '{"tool_calls": [{"function": {"name": "host_disk", "arguments": "th\\": \\"/\\"}"}}]}',
    ]
    chunks = [
        f'{head}"choices": [{{"index": 0, "delta": {d}, "finish_reason": null}}]}}' for d in deltas
    ]
    chunks.append(f'{head}"choices": [{{"index": 0, "delta": {{}}, "finish_reason": "stop"}}]}}')
    fake.script(
        FakeRaw("".join(f"data: {c}\n\n" for c in chunks), content_type="text/event-stream")
    )
    local = OpenAIChat("unused", "qwen2.5", base_url=f"{fake.base_url}/v1")

    *_, done = await collect(local, CHAT, tools=[DISK])

    assert isinstance(done, Done)
    assert [(c.id, c.name, c.arguments) for c in done.reply.tool_calls] == [
        ("call_a", "host_disk", {"path": "/"})
    ]
    assert done.reply.stop_reason == "tool_calls"
    assert done.reply.model == "qwen2.5"
    await local.aclose()
