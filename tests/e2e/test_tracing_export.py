"""`larkops run` with the standard `OTEL_EXPORTER_OTLP_ENDPOINT` sends its traces over
OTLP/HTTP to a real receiver started by the test (a collector, Jaeger, Tempo or Langfuse would
take them the same way): a webhook alert is one trace, from the request through the inbox to
the incident run's nodes and plugin runs, and its id is the `X-Trace-Id` the logs carry."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.e2e.process import Bot
from tests.support.cluster import free_port
from tests.support.wait import wait_until

TOKEN = "tracing-webhook-token"


@dataclass
class Received:
    """Spans as the receiver got them: (trace id hex, span name, service name)."""

    spans: list[tuple[str, str, str]] = field(default_factory=list)
    content_types: set[str] = field(default_factory=set)

    def of_trace(self, trace_id: str) -> set[str]:
        return {name for trace, name, _ in self.spans if trace == trace_id}


@contextlib.asynccontextmanager
async def otlp_receiver() -> AsyncIterator[tuple[str, Received]]:
    received = Received()

    async def traces(request: Request) -> Response:
        received.content_types.add(request.headers.get("content-type", ""))
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.body())
        for resource in message.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scoped in resource.scope_spans:
                for span in scoped.spans:
                    received.spans.append((span.trace_id.hex(), span.name, service))
        return Response(b"", media_type="application/x-protobuf")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])]),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: bool(server.started), 10, "the OTLP receiver")
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, Received]]:
    async with otlp_receiver() as found:
        yield found


async def test_a_webhook_alert_is_one_exported_trace(
    receiver: tuple[str, Received], tmp_path: Path
) -> None:
    endpoint, received = receiver
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": "larkops-e2e",
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # export every 200 ms (the SDK's standard variable)
        "LARKOPS_WEBHOOK_TOKEN": TOKEN,
        "LARKOPS_ALERT_CHAT_ID": "oc_ops",
    }
    bot = await asyncio.to_thread(Bot(tmp_path / "home", free_port(), env=env).start)
    try:
        alert = {
            "title": "WebDown",
            "severity": "critical",
            "labels": {"alertname": "WebDown", "service": "web"},
            "annotations": {"url": "http://127.0.0.1:9/health"},
        }
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(
                f"{bot.url}/webhooks/generic",
                content=json.dumps(alert),
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        assert answer.status_code == 202, answer.text
        trace_id = answer.headers["x-trace-id"]
        assert len(trace_id) == 32

        wanted = {"http.request", "inbox.dispatch", "graph.ingest", "graph.diagnose", "plugin.run"}
        await wait_until(
            lambda: wanted <= received.of_trace(trace_id),
            30,
            f"the alert's spans (got {sorted(received.of_trace(trace_id))})",
        )
        assert any("lark " in name for name in received.of_trace(trace_id))  # the card sent
    finally:
        assert await asyncio.to_thread(bot.stop) == 0
    assert {service for _, _, service in received.spans} == {"larkops-e2e"}
    assert received.content_types == {"application/x-protobuf"}
    records = [json.loads(line) for line in bot.log().splitlines() if line.startswith("{")]
    assert any(r.get("trace_id") == trace_id for r in records)  # a log line leads to it
