"""Traces in process, through the SDK's in-memory exporter: an incident run is one trace from
its start, each graph node a span, the paused gate a link (never a span left open), every
plugin run and model call a span with its figures; tracing is off by default at no cost; the
prompt is recorded only when asked for, and redacted."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from plugins import PluginContext
from plugins.execution import execute
from plugins.registry import discover
from storage import tracing
from storage.coordination import MemoryCoordination
from storage.database import Database
from tests.integration.test_incident_graph import Harness, harness
from tests.support.fake_llm import FakeTurn, fake_llm
from workflows.llm.guard import LlmConfig, ModelGuard
from workflows.llm.model import Message
from workflows.llm.openai_chat import OpenAIChat

__all__ = ["harness"]  # the fixture, used by name


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.install(SimpleSpanProcessor(exporter), {"OTEL_SERVICE_NAME": "larkops-test"})
    try:
        yield exporter
    finally:
        tracing.shutdown()


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def test_off_by_default_costs_nothing() -> None:
    assert not tracing.setup({})  # no OTLP endpoint
    assert not tracing.setup(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}
    )
    assert not tracing.enabled()
    with tracing.root_span("lark.receive", tracing_id()) as root, tracing.span("x") as child:
        assert not root.is_recording()
        assert not child.is_recording()
    assert tracing.here() == ""


def tracing_id() -> str:
    return "0af7651916cd43dd8448eb211c80319c"


async def test_an_incident_run_is_one_trace_with_its_gate_as_a_link(
    harness: Harness, spans: InMemorySpanExporter
) -> None:
    incident_id, run_id = await harness.incident()
    trace_id = tracing_id()
    with tracing.root_span("inbox.dispatch", trace_id):
        await harness.manager.run_now(incident_id, run_id)
    opened = named(spans, "graph.send_diagnosis_card")
    assert len(opened) == 1
    assert f"{opened[0].context.trace_id:032x}" == trace_id  # the log trace id as it is
    paused = named(spans, "graph.await_diagnosis_approval")
    assert [s.attributes.get("graph.paused") for s in paused] == [True]
    assert paused[0].status.is_unset  # a pause is not a failure

    with tracing.root_span("inbox.dispatch", "click-42"):  # a click: its own trace
        assert await harness.click(run_id, "diagnosis", "ou_bob", "approve")
    resumed = named(spans, "graph.await_diagnosis_approval")[-1]
    assert resumed.context.trace_id == tracing.otel_trace_id("click-42")
    assert [(link.context.trace_id, link.context.span_id) for link in resumed.links] == [
        (opened[0].context.trace_id, opened[0].context.span_id)
    ]
    root = named(spans, "inbox.dispatch")[-1]
    assert root.attributes.get("larkops.trace_id") == "click-42"  # a foreign id is kept
    nodes = {s.name for s in spans.get_finished_spans()}
    assert {"graph.ingest", "graph.triage", "graph.diagnose", "graph.propose"} <= nodes
    for node in named(spans, "graph.diagnose"):
        assert node.attributes.get("larkops.incident") == incident_id
        assert node.attributes.get("larkops.run_id") == run_id
    assert all(s.end_time is not None for s in spans.get_finished_spans())
    resource = spans.get_finished_spans()[0].resource.attributes
    assert resource.get("service.name") == "larkops-test"


async def test_a_plugin_run_is_a_span_with_its_outcome(spans: InMemorySpanExporter) -> None:
    registry = discover({})
    with tracing.root_span("schedule.fire", tracing_id()):
        result = await execute(registry, "dns_resolve", PluginContext(), {"name": "localhost"})
    assert result.ok
    (run,) = named(spans, "plugin.run")
    assert run.attributes.get("plugin.name") == "dns_resolve"
    assert run.attributes.get("plugin.outcome") == "ok"
    assert run.parent is not None
    assert f"{run.context.trace_id:032x}" == tracing_id()


def test_a_span_left_by_a_failure_says_so(spans: InMemorySpanExporter) -> None:
    with pytest.raises(RuntimeError), tracing.span("work"):
        raise RuntimeError("boom")
    (failed,) = named(spans, "work")
    assert not failed.status.is_ok
    assert failed.events[0].name == "exception"


@pytest.mark.parametrize("content", [False, True])
async def test_a_model_call_is_a_span_with_its_figures_and_content_only_when_asked(
    migrated_db: Database, content: bool
) -> None:
    exporter = InMemorySpanExporter()
    env = {"LARKOPS_TRACE_CONTENT": "true"} if content else {}
    tracing.install(SimpleSpanProcessor(exporter), env)
    try:
        async with fake_llm() as fake:
            fake.script(FakeTurn(text="disk full; token sk-live-abcdef0123456789", output_tokens=7))
            model = OpenAIChat("sk-test", "gpt-4o-mini", base_url=f"{fake.base_url}/v1")
            guard = ModelGuard(model, migrated_db, MemoryCoordination(), LlmConfig())
            question = Message("user", "why? password=hunter2 AKIAIOSFODNN7EXAMPLE")
            with tracing.root_span("inbox.dispatch", tracing_id()):
                await guard.complete([question], purpose="diagnose", deadline=time.monotonic() + 30)
    finally:
        tracing.shutdown()
    (call,) = named(exporter, "llm.call")
    assert call.attributes.get("llm.model") == "gpt-4o-mini"
    assert call.attributes.get("llm.tokens_out") == 7
    assert call.attributes.get("llm.attempt") == 1
    assert isinstance(call.attributes.get("llm.cost_usd"), float)
    assert f"{call.context.trace_id:032x}" == tracing_id()
    if not content:
        assert "llm.prompt" not in call.attributes
        assert "llm.output" not in call.attributes
        return
    prompt, output = str(call.attributes["llm.prompt"]), str(call.attributes["llm.output"])
    assert "why?" in prompt
    assert "hunter2" not in prompt
    assert "AKIAIOSFODNN7EXAMPLE" not in prompt
    assert "disk full" in output
    assert "sk-live-abcdef0123456789" not in output


async def test_the_remediation_steps_keep_their_spans_and_metric_labels(
    harness: Harness, spans: InMemorySpanExporter
) -> None:
    """The remediation subgraph's steps are traced and counted under the names they had as
    nodes of the incident graph, with the incident on every span."""
    from workflows.incident_graph import NODE_TRANSITIONS

    def count(node: str, outcome: str) -> float:
        return float(NODE_TRANSITIONS.labels(node, outcome)._value.get())

    steps = (
        "policy_evaluate",
        "send_proposal_card",
        "await_proposal_approval",
        "execute",
        "verify",
    )
    before = {(s, o): count(s, o) for s in steps for o in ("entered", "finished", "paused")}
    incident_id, run_id = await harness.incident()
    await harness.manager.run_now(incident_id, run_id)
    assert await harness.click(run_id, "diagnosis", "ou_bob", "approve")
    assert await harness.click(run_id, "proposal", "ou_bob", "approve")

    for step in steps:
        for span in named(spans, f"graph.{step}"):
            assert span.attributes.get("larkops.incident") == incident_id, step
            assert span.attributes.get("larkops.run_id") == run_id, step
    paused, resumed = named(spans, "graph.await_proposal_approval")
    assert paused.attributes.get("graph.paused") is True
    (opened,) = named(spans, "graph.send_proposal_card")
    assert [link.context.span_id for link in resumed.links] == [opened.context.span_id]
    delta = {key: count(*key) - value for key, value in before.items()}
    for step in steps:
        gate = step == "await_proposal_approval"
        assert delta[(step, "entered")] == (2 if gate else 1), step
        assert delta[(step, "finished")] == 1, step
        assert delta[(step, "paused")] == (1 if gate else 0), step
