"""The OpenTelemetry Collector example (`deploy/otel/collector.yaml`) takes what larkops sends:
OTLP over HTTP on 4318, a traces pipeline whose every part is defined, and model content
dropped should it ever be turned on."""

from __future__ import annotations

from pathlib import Path

import yaml

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "otel" / "collector.yaml"


def test_the_collector_example_receives_otlp_http_and_wires_every_part() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    pipeline = config["service"]["pipelines"]["traces"]
    for kind in ("receivers", "processors", "exporters"):
        for name in pipeline[kind]:
            assert name in config[kind], (kind, name)
    dropped = {a["key"] for a in config["processors"]["attributes/no-content"]["actions"]}
    assert dropped == {"llm.prompt", "llm.output"}
    assert "attributes/no-content" in pipeline["processors"]
    endpoints = {name: e.get("endpoint", "") for name, e in config["exporters"].items()}
    assert endpoints["otlphttp/langfuse"].endswith("/api/public/otel")
