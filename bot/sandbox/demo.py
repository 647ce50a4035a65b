"""The sandbox's demo: the whole loop out of the box, alert → diagnosis → approve → fix →
verify → 已恢复, with nothing to configure.

`larkops run` without Lark credentials (the sandbox) gets, unless the configuration says
otherwise:

- people with roles (when the configuration names no approvers, admins or alert senders): 张三
  (ou_alice) an operator, 李四 (ou_bob) an approver, 王五 (ou_carol) an admin, and 告警机器人
  (ou_alertbot), an alert bot listed in `LARKOPS_ALERT_SENDERS` (the page shows each role);
- a small demo service served by the sandbox itself: `GET /sandbox/demo/healthz` answers 200
  while the file `$LARKOPS_HOME/sandbox/demo/healthy` exists, 503 once it is gone;
  `POST /sandbox/api/demo/break` removes it and has 告警机器人 post the alert
  `[FIRING:1] DemoServiceDown …` in 运维值班群 (oc_ops); `GET /sandbox/api/demo` tells its state;
- a `command` template `repair_demo` (`touch` of that file: the allow-listed fix that really
  repairs it, risk medium so a person approves it) and the runbook `demo-service`: diagnose and
  verify with `http_check` of the health URL, propose `repair_demo`.

Usage::

    demo = DemoService(settings.home, port)
    settings = demo.settings(settings)          # before the bot is assembled
    routes = demo.routes(emulator)
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.config import Settings
from bot.sandbox.model import DEFAULT_USERS, User

if TYPE_CHECKING:
    from bot.sandbox.emulator import LarkEmulator

ALERT_BOT = User("ou_alertbot", "告警机器人")
APPROVER, ADMIN = "ou_bob", "ou_carol"
SANDBOX_USERS: tuple[User, ...] = (*DEFAULT_USERS, ALERT_BOT)
# the roles the demo gives them (the page shows them beside the names)
ROLES = {"ou_alice": "操作员", APPROVER: "审批人", ADMIN: "管理员"}
ALERT_CHAT = "oc_ops"
ALERT_NAME = "DemoServiceDown"
RUNBOOK = "demo-service"
TEMPLATE = "repair_demo"
HEALTH_PATH = "/sandbox/demo/healthz"
API = "/sandbox/api/demo"


class DemoService:
    """The demo service's state (a file under `$LARKOPS_HOME`, so it survives a restart), its
    routes, and the sandbox settings that make the loop work."""

    def __init__(self, home: Path, port: int, host: str = "127.0.0.1") -> None:
        self.marker = (home / "sandbox" / "demo" / "healthy").absolute()
        self.url = f"http://{host}:{port}{HEALTH_PATH}"
        if not self.marker.parent.exists():  # the first start: the service starts healthy
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.touch()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.roles: dict[str, str] = {}  # the demo's roles, when the configuration had none

    @property
    def healthy(self) -> bool:
        return self.marker.exists()

    def settings(self, settings: Settings) -> Settings:
        """`settings` with the demo's people, fix and runbook added where the configuration
        names none of its own."""
        update: dict[str, Any] = {}
        if not (settings.approvers or settings.admins or settings.alert_senders):
            update |= {
                "approvers": [APPROVER],
                "admins": [ADMIN],
                "alert_senders": [ALERT_BOT.open_id],
            }
            self.roles = dict(ROLES)
        plugins = dict(settings.plugins)
        configured = dict(plugins.get("settings") or {})
        command = dict(configured.get("command") or {})
        templates = dict(command.get("templates") or {})
        if TEMPLATE not in templates:
            path = str(self.marker).replace("{", "{{").replace("}", "}}")
            templates[TEMPLATE] = {
                "argv": ["touch", path],
                "risk": "medium",
                "timeout": 10,
                "title_zh": "修复演示服务",
                "title_en": "Repair the demo service",
            }
            command["templates"] = templates
            configured["command"] = command
            plugins["settings"] = configured
            update["plugins"] = plugins
        if not any(book.get("name") == RUNBOOK for book in settings.runbooks):
            check = {"plugin": "http_check", "params": {"url": self.url}}
            runbook = {
                "name": RUNBOOK,
                "match": {"alertname": ALERT_NAME},
                "diagnose": [{**check, "title_zh": "检查演示服务", "title_en": "Check the demo"}],
                "propose": {"plugin": "command", "params": {"template": TEMPLATE}},
                "verify": check,
            }
            update["runbooks"] = [runbook, *settings.runbooks]
        return settings.model_copy(update=update) if update else settings

    def routes(self, emulator: LarkEmulator) -> list[BaseRoute]:
        async def health(request: Request) -> Response:
            if self.healthy:
                return PlainTextResponse("ok")
            return PlainTextResponse("demo service is broken", status_code=503)

        async def state(request: Request) -> Response:
            return JSONResponse(self._state())

        async def broken(request: Request) -> Response:
            self.marker.unlink(missing_ok=True)
            self._spawn(
                emulator.send_message(
                    ALERT_CHAT, ALERT_BOT, self.alert(), mention_bot=False, sender_type="app"
                )
            )
            return JSONResponse(self._state())

        return [
            Route(HEALTH_PATH, health, methods=["GET", "HEAD"]),
            Route(API, state, methods=["GET"]),
            Route(f"{API}/break", broken, methods=["POST"]),
        ]

    def _state(self) -> dict[str, Any]:
        """The page's view: health, the people's roles, and the bots (not people to pick)."""
        bots = [ALERT_BOT.open_id]
        return {"healthy": self.healthy, "url": self.url, "roles": self.roles, "bots": bots}

    def alert(self) -> str:
        """The alert 告警机器人 posts, as Alertmanager's default text reads."""
        return (
            f"[FIRING:1] {ALERT_NAME} (instance={self.url} service=demo severity=critical)\n"
            f"Labels:\n - alertname = {ALERT_NAME}\n - service = demo\n - severity = critical\n"
            f"Annotations:\n - summary = 演示服务的健康检查失败 {self.url}\n"
        )

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
