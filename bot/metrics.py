"""Prometheus metrics of the running app (served at `/metrics` from the default registry).

Lower layers define their own metrics with `prometheus_client` next to the code they measure;
they all land in the same default registry.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

BUILD = Info("larkops_build", "Version of the running larkops")
READY = Gauge("larkops_ready", "1 when the app is ready to serve, else 0")
STARTUP_SECONDS = Gauge("larkops_startup_seconds", "Seconds from process start to ready")
HTTP_REQUESTS = Counter(
    "larkops_http_requests_total", "HTTP requests served", ["route", "method", "status"]
)
HTTP_SECONDS = Histogram(
    "larkops_http_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
COMPONENT_UP = Gauge(
    "larkops_component_up", "1 when a dependency answered its last check", ["component"]
)
