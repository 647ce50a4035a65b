"""Traces of every step with OpenTelemetry: one trace per inbound event, webhook or scheduled
fire, with spans for the inbox commit, dispatch, each graph node, each plugin run, each model
call and each Lark API call. A paused gate is a link from the step that resumes it to the step
that opened it, never a span left open for hours.

Off by default, at no measurable cost: with no exporter configured the spans are the
OpenTelemetry API's no-op spans. Turned on by the standard variables: `OTEL_EXPORTER_OTLP_ENDPOINT`
(or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), with `OTEL_SERVICE_NAME` (default `larkops`),
`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)` and
`OTEL_SDK_DISABLED` as the SDK reads them; spans go over OTLP/HTTP to any collector (Jaeger,
Tempo, Langfuse). Prompts and model outputs are recorded only with
`LARKOPS_TRACE_CONTENT=true`, and always after redaction.

The trace id is the `trace_id` the logs carry (and `X-Trace-Id`): the bot's own ids are 32 hex
digits, used as the OpenTelemetry trace id as they are; an id taken from a request's
`X-Request-Id` is hashed into one and kept on the root span as `larkops.trace_id`.

This module sits in `storage/` (the lowest layer) so that every package can make spans.

Usage::

    setup(os.environ)                                  # once, at start-up
    with root_span("lark.receive", trace_id, {"lark.event_type": "im.message.receive_v1"}):
        with span("plugin.run", {"plugin.name": "http_check"}) as current:
            current.set_attribute("plugin.ok", True)
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

SCOPE = "larkops"
HEX_TRACE = re.compile(r"[0-9a-f]{32}")
_root_trace: contextvars.ContextVar[int | None] = contextvars.ContextVar("root_trace", default=None)
Attribute = str | bool | int | float


@dataclass
class _State:
    provider: Any = None  # an SDK TracerProvider when tracing is on
    tracer: trace.Tracer = field(default_factory=trace.NoOpTracer)
    content: bool = False


_state = _State()


def setup(environ: Mapping[str, str]) -> bool:
    """Turn tracing on when the environment names an OTLP endpoint; True when it is on."""
    traces = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not (traces or base) or environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    # the exporter is imported only when tracing is on: it costs nothing otherwise
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # as the specification says: the signal's own endpoint as it is, the base one + /v1/traces
    endpoint = traces or f"{str(base).rstrip('/')}/v1/traces"
    install(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)), environ)
    return True


def install(processor: Any, environ: Mapping[str, str] | None = None) -> None:
    """Trace through `processor` (tests: a `SimpleSpanProcessor` of an in-memory exporter)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    env = environ or {}
    name = env.get("OTEL_SERVICE_NAME") or "larkops"
    provider = TracerProvider(
        resource=Resource.create({"service.name": name}), id_generator=_root_ids()
    )
    provider.add_span_processor(processor)
    _state.provider = provider
    _state.tracer = provider.get_tracer(SCOPE)
    _state.content = env.get("LARKOPS_TRACE_CONTENT", "").lower() == "true"


def _root_ids() -> Any:
    """The SDK's random ids, except that a new trace takes the log trace id `root_span` set."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class RootIds(RandomIdGenerator):
        def generate_trace_id(self) -> int:
            wanted = _root_trace.get()
            return wanted if wanted is not None else super().generate_trace_id()

    return RootIds()


def shutdown() -> None:
    """Flush what is buffered and turn tracing off."""
    if _state.provider is not None:
        _state.provider.shutdown()
    _state.provider, _state.tracer, _state.content = None, trace.NoOpTracer(), False


def enabled() -> bool:
    return _state.provider is not None


def record_content() -> bool:
    """Prompts and outputs may be recorded (explicitly enabled; the caller redacts them)."""
    return _state.content


def otel_trace_id(trace_id: str) -> int:
    """The OpenTelemetry trace id of a log trace id (itself when it is 32 hex digits)."""
    if HEX_TRACE.fullmatch(trace_id) and int(trace_id, 16):
        return int(trace_id, 16)
    return int(hashlib.sha256(trace_id.encode()).hexdigest()[:32], 16) or 1


@contextlib.contextmanager
def root_span(
    name: str, trace_id: str, attributes: Mapping[str, Attribute | None] | None = None
) -> Iterator[Span]:
    """A new trace whose id is the log trace id `trace_id` (one per event, request or fire)."""
    if not enabled():
        yield trace.INVALID_SPAN
        return
    token = _root_trace.set(otel_trace_id(trace_id))
    empty = trace.set_span_in_context(trace.INVALID_SPAN)
    try:
        started = _state.tracer.start_span(
            name, context=empty, kind=SpanKind.SERVER, attributes=_clean(attributes or {})
        )
    finally:
        _root_trace.reset(token)  # only this root takes the id; its children inherit it
    if not HEX_TRACE.fullmatch(trace_id):
        started.set_attribute("larkops.trace_id", trace_id)
    with trace.use_span(started, end_on_exit=True) as current:
        yield current


@contextlib.contextmanager
def span(
    name: str,
    attributes: Mapping[str, Attribute | None] | None = None,
    *,
    links: tuple[str, ...] = (),
    kind: SpanKind = SpanKind.INTERNAL,
    quiet: tuple[type[BaseException], ...] = (),
) -> Iterator[Span]:
    """A span in the current trace; `links` are `here()` values of related steps (the step
    that opened a gate, seen from the step that resumes it). An exception marks it failed,
    except those in `quiet` (a graph's pause at a gate is not a failure)."""
    if not enabled():
        yield trace.INVALID_SPAN
        return
    joined = [Link(found) for found in (_context_of(text) for text in links) if found is not None]
    with _state.tracer.start_as_current_span(
        name,
        kind=kind,
        links=joined,
        attributes=_clean(attributes or {}),
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except quiet:
            raise
        except Exception as exc:
            current.record_exception(exc)
            current.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}"))
            raise


def finished_span(
    name: str,
    seconds: float,
    attributes: Mapping[str, Attribute | None],
    *,
    failed: str = "",
) -> None:
    """A span for work that took `seconds` and ended just now, as a child of the current span
    (a model call that was streamed: no span is held open across the stream's yields)."""
    if not enabled():
        return
    end = time.time_ns()
    started = _state.tracer.start_span(
        name, start_time=end - int(seconds * 1e9), attributes=_clean(attributes)
    )
    if failed:
        started.set_status(Status(StatusCode.ERROR, failed[:200]))
    started.end(end_time=end)


def here() -> str:
    """The current span as `trace_id:span_id` (hex), for a later link; empty when none."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return ""
    return f"{context.trace_id:032x}:{context.span_id:016x}"


def current_trace_id() -> str:
    """The current trace id (32 hex digits), or empty."""
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else ""


def _context_of(text: str) -> SpanContext | None:
    trace_hex, _, span_hex = text.partition(":")
    try:
        context = SpanContext(
            int(trace_hex, 16), int(span_hex, 16), is_remote=True, trace_flags=TraceFlags(1)
        )
    except ValueError:
        return None
    return context if context.is_valid else None


def _clean(attributes: Mapping[str, Attribute | None]) -> dict[str, Attribute]:
    return {key: value for key, value in attributes.items() if value is not None}
