"""Issue 20: what tracing costs on the incident path, off and on.

One incident from start to resolved through both gates (start to the diagnosis gate, two
claims and resumes; a scripted advisor answers at once, so the figure is the machinery's own:
about twenty spans), timed in three modes, alternated so drift hits all of them:

- `bypass`: the tracing calls replaced by bare no-ops (the code as if it had no tracing);
- `off`: tracing as shipped with no `OTEL_EXPORTER_OTLP_ENDPOINT` (the default);
- `on`: the SDK with a batch processor and the real OTLP/HTTP exporter, sending to a receiver
  on 127.0.0.1 that accepts everything (the serialisation and the HTTP export run as in
  production, on the same two cores).

The modes run in a random order in each round of three (seeded), so neither drift nor the
exporter's background work favours one. Goals: off ≤ 1 % over bypass, on ≤ 5 % over off
(median per incident).

    .venv/bin/python bench/tracing.py [--incidents 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import random
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from figures import figure
from incident_resume import NEW_INCIDENTS, manager
from sqlalchemy import text

from storage import approvals, tracing
from storage.database import Database
from storage.embedded import EmbeddedPostgres
from storage.migration import upgrade
from workflows.incident_graph import gate_token
from workflows.runs import RunManager

NOOP = tracing.trace.NoOpTracer()
MODES = ["bypass", "off", "on"]


class Accept(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@contextlib.contextmanager
def receiver() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Accept)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@contextlib.contextmanager
def bypassed() -> Iterator[None]:
    """Tracing's entry points as bare no-ops."""

    @contextlib.contextmanager
    def nothing(*args: Any, **kwargs: Any) -> Iterator[Any]:
        yield tracing.trace.INVALID_SPAN

    saved = (tracing.span, tracing.root_span, tracing.here, tracing.finished_span)
    tracing.span, tracing.root_span = nothing, nothing  # type: ignore[assignment]
    tracing.here = lambda: ""  # type: ignore[assignment]
    tracing.finished_span = lambda *a, **k: None  # type: ignore[assignment]
    try:
        yield
    finally:
        tracing.span, tracing.root_span, tracing.here, tracing.finished_span = saved  # type: ignore[assignment]


async def one_incident(db: Database, runs: RunManager) -> float:
    """Milliseconds from an incident's start to resolved, both gates approved."""
    async with db.engine.begin() as conn:
        incident, run_id = (await conn.execute(text(NEW_INCIDENTS), {"n": 1})).one()
        await conn.execute(
            text(
                "INSERT INTO alerts (incident_id, source, fingerprint, title, annotations) "
                """SELECT id, 'generic', fingerprint, title, '{"url": "http://x"}' """
                "FROM incidents WHERE id = :i"
            ),
            {"i": incident},
        )
    run = str(run_id)
    started = time.perf_counter()
    with tracing.root_span("inbox.dispatch", run.replace("-", "")):
        await runs.run_now(incident, run)
    for gate in ("diagnosis", "proposal"):
        token = gate_token(run, gate)
        with tracing.root_span("inbox.dispatch", run.replace("-", "")):
            await approvals.claim(db, run, gate, token, "ou_bob", "approve")
            await runs.resume(run, token, {"decision": "approve", "by": ["ou_bob"]})
    return (time.perf_counter() - started) * 1000


async def main(incidents: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="larkops-bench-tracing-"))
    server = EmbeddedPostgres(home, fsync=False)
    server.start()
    dsn = server.dsn.rsplit("/", 1)[0] + "/tracing"
    try:
        with psycopg.connect(server.dsn.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE tracing")
        db = await Database.open(dsn)
        await upgrade(db)
        await db.close()
        times: dict[str, list[float]] = {"bypass": [], "off": [], "on": []}
        with receiver() as endpoint:
            env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "larkops-bench"}
            tracing.setup(env)
            on_state = (tracing._state.provider, tracing._state.tracer)
            async with manager(dsn) as (db, runs):
                for _ in range(5):  # warm-up
                    await one_incident(db, runs)
                order = random.Random(20)
                rounds = [order.sample(MODES, 3) for _ in range(incidents)]  # no position bias
                for mode in (mode for triple in rounds for mode in triple):
                    # one provider (its batch exporter keeps running); off: none installed
                    provider, tracer = on_state if mode == "on" else (None, NOOP)
                    tracing._state.provider, tracing._state.tracer = provider, tracer
                    if mode == "bypass":
                        with bypassed():
                            times[mode].append(await one_incident(db, runs))
                    else:
                        times[mode].append(await one_incident(db, runs))
            tracing._state.provider, tracing._state.tracer = on_state
            tracing.shutdown()
        med = {mode: statistics.median(values) for mode, values in times.items()}
        off = (med["off"] / med["bypass"] - 1) * 100
        on = (med["on"] / med["off"] - 1) * 100
        print(
            f"incident start → resolved, median of {incidents}: bypass {med['bypass']:.2f} ms, "
            f"off {med['off']:.2f} ms, on {med['on']:.2f} ms"
        )
        figure(20, "tracing overhead off", off, "%", "≤ 1", off <= 1)
        figure(20, "tracing overhead on", on, "%", "≤ 5", on <= 5)
    finally:
        server.release()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--incidents", type=int, default=200)
    asyncio.run(main(parser.parse_args().incidents))
