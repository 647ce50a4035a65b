"""The service under repair in replica and fault tests: one health endpoint per service, a fix
script that logs every run, and the bot configuration that ties them together (WebDown → check
the endpoint → approve → run the fix → verify)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.support.cluster import free_port
from tests.support.wait import wait_until


@dataclass
class Services:
    """`GET /health/<service>`: 200 while `<state>/healthy-<service>` exists, else 503;
    `slow[service]` seconds of delay first (a diagnosis that takes a while). `checks` counts
    the requests per service as they arrive (a check under way has been counted)."""

    state: Path
    slow: dict[str, float] = field(default_factory=dict)
    url: str = ""
    checks: Counter[str] = field(default_factory=Counter)

    def healthy(self, service: str) -> bool:
        return (self.state / f"healthy-{service}").exists()

    def runs(self) -> Counter[str]:
        """How many times the fix ran, per service (the fix appends a line when it starts)."""
        log = self.state / "runs.log"
        lines = log.read_text(encoding="utf-8").split() if log.exists() else []
        return Counter(lines)


@contextlib.asynccontextmanager
async def services(state: Path) -> AsyncIterator[Services]:
    board = Services(state)

    async def health(request: Request) -> PlainTextResponse:
        service = request.path_params["service"]
        board.checks[service] += 1
        # the fake's latency (a slow service), not a wait for anything
        await asyncio.sleep(board.slow.get(service, 0.0))
        ok = board.healthy(service)
        return PlainTextResponse("ok" if ok else "down", status_code=200 if ok else 503)

    port = free_port()
    config = uvicorn.Config(
        Starlette(routes=[Route("/health/{service}", health)]),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    def started() -> bool:
        if task.done():
            task.result()
            raise RuntimeError("the health endpoints stopped during start-up")
        return bool(server.started)

    await wait_until(started, 10, "the health endpoints to serve")
    board.url = f"http://127.0.0.1:{port}/health"
    try:
        yield board
    finally:
        server.should_exit = True
        await task


FIX = """\
import pathlib, sys, time
state, service = pathlib.Path(sys.argv[1]), sys.argv[2]
with (state / "runs.log").open("a") as log:
    log.write(service + chr(10))
pause = state / f"fix-seconds-{service}"
time.sleep(float(pause.read_text()) if pause.exists() else 0.0)  # the fix's work takes this long
(state / f"healthy-{service}").touch()
"""


def bot_config(state: Path, **extra: Any) -> dict[str, Any]:
    """Approvers bob and carol; WebDown → check `{annotations.url}` → approve → the fix (a
    script that logs each run and makes `healthy-<service>` exist) → verify."""
    script = state / "fix.py"
    script.write_text(FIX, encoding="utf-8")
    check = {"plugin": "http_check", "params": {"url": "{annotations.url}"}}
    template = {
        "argv": [sys.executable, str(script), str(state), "{service}"],
        "params": {"service": "^[a-z0-9]{1,20}$"},
        "risk": "medium",
        "timeout": 30,
        "title_zh": "重启服务",
        "title_en": "Restart the service",
    }
    config: dict[str, Any] = {
        "approvers": ["ou_bob", "ou_carol"],
        "incidents": {"storm_threshold": 1000, "storm_window_seconds": 10},
        "scheduling": {"lease_seconds": 3},
        "plugins": {"settings": {"command": {"templates": {"restart": template}}}},
        "runbooks": [
            {
                "name": "web-down",
                "match": {"alertname": "WebDown"},
                "diagnose": [check],
                "propose": {
                    "plugin": "command",
                    "params": {"template": "restart", "args": {"service": "{labels.service}"}},
                },
                "verify": check,
            }
        ],
    }
    config.update(extra)
    return config


def write_config(state: Path, config: dict[str, Any]) -> Path:
    path = state / "larkops.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def alert(services: Services, service: str, n: int = 0) -> dict[str, Any]:
    """A generic-webhook WebDown alert for `service` (`n` makes the body unique: repeats of one
    alert are separate deliveries, folded into its incident)."""
    return {
        "title": "WebDown",
        "severity": "critical",
        "labels": {"alertname": "WebDown", "service": service},
        "annotations": {"url": f"{services.url}/{service}", "summary": f"down #{n}"},
    }
