"""A real Prometheus for plugin tests, scraping the bot's own `/metrics` app.

`bot_metrics_server()` serves `bot.endpoints.build_app` (the real `/metrics`) with uvicorn in a
thread; `running_prometheus(scrape)` starts `/usr/bin/prometheus` with a temporary config and
TSDB, on a free port of 127.0.0.1, scraping every second, and returns once `up{job=...} == 1`
can be queried (at most 15 s). `bearer_proxy(upstream, token)` is a tiny reverse proxy that
requires a bearer token and, when refused, echoes the presented credentials back (as some
misconfigured gateways do) so tests can prove a token never reaches a result.

A missing binary fails the test with the install command; it never skips.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import uvicorn

from bot.endpoints import Readiness, build_app
from tests.conftest import free_port
from tests.support.wait import wait_until_sync

PROMETHEUS_BIN = "/usr/bin/prometheus"
READY_TIMEOUT = 15.0

CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: {job}
    static_configs:
      - targets: ["{target}"]
"""


@dataclass
class PrometheusServer:
    """A running Prometheus: its base URL, the scrape job name and its process."""

    url: str
    job: str
    process: subprocess.Popen[bytes]
    home: Path

    def log_tail(self, limit: int = 2000) -> str:
        """The end of Prometheus's own log (for failure messages)."""
        log = self.home / "prometheus.log"
        return log.read_text(errors="replace")[-limit:] if log.exists() else ""


@contextlib.contextmanager
def bot_metrics_server() -> Iterator[str]:
    """Serve the bot's real HTTP app (with `/metrics`); yields `127.0.0.1:<port>`."""
    port = free_port()
    config = uvicorn.Config(
        build_app(Readiness(started=True)), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="bot-metrics", daemon=True)
    thread.start()

    def started() -> bool:
        if not thread.is_alive():
            pytest.fail("the bot metrics app stopped during start-up", pytrace=False)
        return bool(server.started)

    wait_until_sync(started, 10, "the bot metrics app to serve")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def running_prometheus(scrape: str, job: str = "larkops") -> Iterator[PrometheusServer]:
    """Start Prometheus scraping `scrape` (host:port) as `job`; stop and clean up afterwards."""
    binary = shutil.which("prometheus") or PROMETHEUS_BIN
    if not Path(binary).is_file():
        pytest.fail(
            f"Prometheus is required at {PROMETHEUS_BIN}; install it with "
            "`sudo apt-get install prometheus` (CI installs it too)",
            pytrace=False,
        )
    home = Path(tempfile.mkdtemp(prefix="larkops-test-prom-"))
    (home / "prometheus.yml").write_text(CONFIG.format(job=job, target=scrape))
    port = free_port()
    with (home / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={home / 'prometheus.yml'}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = PrometheusServer(url=f"http://127.0.0.1:{port}", job=job, process=process, home=home)
    try:
        _wait_until_scraped(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        shutil.rmtree(home, ignore_errors=True)


def _wait_until_scraped(server: PrometheusServer) -> None:
    query = f'up{{job="{server.job}"}} == 1'
    last = ["no answer yet"]
    with httpx.Client(trust_env=False, timeout=2) as client:

        def scraped() -> bool:
            if server.process.poll() is not None:
                pytest.fail(
                    f"prometheus exited with {server.process.returncode}:\n{server.log_tail()}",
                    pytrace=False,
                )
            try:
                answer = client.get(f"{server.url}/api/v1/query", params={"query": query})
                if answer.status_code == 200 and answer.json()["data"]["result"]:
                    return True
                last[0] = answer.text[:300]
            except httpx.HTTPError as exc:
                last[0] = f"{type(exc).__name__}: {exc}"
            return False

        try:
            wait_until_sync(scraped, READY_TIMEOUT, f"prometheus to report {query}")
        except AssertionError as exc:
            pytest.fail(f"{exc} (last: {last[0]})\n{server.log_tail()}", pytrace=False)


@contextlib.contextmanager
def bearer_proxy(upstream: str, token: str) -> Iterator[str]:
    """A reverse proxy to `upstream` that requires `Authorization: Bearer <token>`.

    A refused request gets a Prometheus-style 401 error that echoes the presented header.
    Yields the proxy's base URL.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            presented = self.headers.get("Authorization", "")
            if presented != f"Bearer {token}":
                body = json.dumps(
                    {
                        "status": "error",
                        "errorType": "unauthorized",
                        "error": f"invalid credentials: {presented or 'none'}",
                    }
                ).encode()
                self._reply(401, body)
                return
            with httpx.Client(trust_env=False, timeout=10) as client:
                answer = client.get(upstream + self.path)
            self._reply(answer.status_code, answer.content)

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=proxy.serve_forever, name="bearer-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}"
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(5)
