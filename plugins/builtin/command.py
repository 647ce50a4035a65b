"""`command`: run ONE allow-listed argv template (remediation; never a shell).

Parameters: `{"template": "restart_service", "args": {"service": "web"}}`. The template must be
configured (`plugins.builtin.argv` documents the shape and the checks); every argument must
full-match its regex. The process gets no stdin, `/` as working directory, a scrubbed
environment (`PATH=/usr/sbin:/usr/bin:/sbin:/bin`, `LANG=C.UTF-8`, plus the template's fixed
`env`), its own process group, and the template's timeout; on timeout — or when the command
exits leaving children behind — the whole group is killed. stdout and stderr are captured
together and capped. Exit status 0 is ok. A dry run returns the argv it would run and runs
nothing.

Risk: the plugin declares `medium`; a template may raise it (`policy_risk()` on the
parameters reports the template's risk to the policy engine).

Usage::

    plugin = CommandPlugin.from_settings({"templates": {"restart_service": {...}}})
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import time
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plugins.builtin.argv import BASE_RISK, SAFE_PATH, ArgvTemplate, load_template
from plugins.contract import PluginContext, PluginResult, PluginSpec, Risk
from storage.tasks import cancel

OUTPUT_LIMIT = 64 * 1024
DRAIN_GRACE = 1.0
BASE_ENV = {"PATH": SAFE_PATH, "LANG": "C.UTF-8"}


class CommandParams(BaseModel):
    """Parameters of `command`: a template name and its arguments (strings only)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    template: str = Field(min_length=1, max_length=64)
    args: dict[str, str] = Field(default_factory=dict, max_length=32)


def bind_params(templates: Mapping[str, ArgvTemplate]) -> type[CommandParams]:
    """A parameter model that only accepts the given templates with matching arguments."""

    class AllowedCommandParams(CommandParams):
        @model_validator(mode="after")
        def _allowed(self) -> Self:
            template = templates.get(self.template)
            if template is None:
                raise ValueError("template is not in the allow-list")
            problems = template.problems(self.args)
            if problems:
                raise ValueError("; ".join(problems))
            return self

        def policy_risk(self) -> Risk:
            """The template's risk (at least the plugin's)."""
            return templates[self.template].risk

        def policy_target(self) -> str:
            """Quotas count runs per template and arguments."""
            args = ",".join(f"{k}={v}" for k, v in sorted(self.args.items()))
            return f"command:{self.template}:{args}"

        def argv(self) -> list[str]:
            """The exact argv this would run."""
            return templates[self.template].render(self.args)

    return AllowedCommandParams


class CommandPlugin:
    """Runs configured argv templates; the allow-list is fixed when the plugin is built."""

    def __init__(self, templates: Mapping[str, ArgvTemplate]) -> None:
        if not templates:
            raise ValueError("command: no templates configured")
        self.templates = dict(templates)
        self.spec = PluginSpec(
            name="command",
            category="remediation",
            risk=BASE_RISK,
            params=bind_params(self.templates),
            timeout=max(t.timeout for t in self.templates.values()) + DRAIN_GRACE + 1,
            idempotent=False,
            supports_dry_run=True,
            title_zh="执行命令模板",
            title_en="Run a command template",
            description_zh="运行一个预先配置的命令模板（不经过 shell，参数逐个校验）",
            description_en="Runs one configured argv template (no shell, each argument checked)",
        )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> CommandPlugin:
        """Build from `plugins.settings.command` = `{"templates": {name: template}}`."""
        unknown = set(settings) - {"templates"}
        if unknown:
            raise ValueError(f"command: unknown settings {', '.join(sorted(unknown))}")
        raw = settings.get("templates") or {}
        if not isinstance(raw, Mapping):
            raise ValueError("command: templates must be a mapping of name to template")
        return cls({name: load_template(str(name), body) for name, body in raw.items()})

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """Run the template (or, in a dry run, only say what would run)."""
        assert isinstance(params, CommandParams)
        template = self.templates[params.template]
        problems = template.problems(params.args)  # the model checked; check again, cheaply
        if problems:
            reason = "; ".join(problems)
            values = {"template": template.name, "reason": reason}
            return PluginResult(ok=False, summary=reason, code="command_refused", values=values)
        argv = template.render(params.args)
        shown = shlex.join(argv)
        if ctx.dry_run:
            return PluginResult(
                code="command_dry",
                values={"template": template.name, "argv": shown},
                ok=True,
                summary=f"dry run: would run {shown}",
                data={"argv": argv, "dry_run": True},
                output=shown,
            )
        env = {**BASE_ENV, **template.env}
        started = time.monotonic()
        exit_code, output, timed_out = await run_argv(argv, env, template.timeout)
        data: dict[str, Any] = {
            "argv": argv,
            "exit_code": exit_code,
            "duration_ms": round((time.monotonic() - started) * 1000),
        }
        if timed_out:
            summary = (
                f"{template.name}: timed out after {template.timeout:g}s; process group killed"
            )
        elif exit_code == 0:
            summary = f"{template.name}: exit 0"
        else:
            summary = f"{template.name}: exit {exit_code}"
        code = (
            "command_timeout" if timed_out else "command_ok" if exit_code == 0 else "command_exit"
        )
        values = {
            "template": template.name,
            "exit": str(exit_code),
            "seconds": f"{template.timeout:g}",
        }
        return PluginResult(
            code=code,
            values=values,
            ok=exit_code == 0 and not timed_out,
            summary=summary,
            data=data,
            evidence=(f"ran {shown}", summary),
            output=output,
        )


async def run_argv(
    argv: list[str], env: Mapping[str, str], time_limit: float, limit: int = OUTPUT_LIMIT
) -> tuple[int | None, str, bool]:
    """Run argv in its own process group: (exit code, capped output, timed out).

    The group is killed on timeout, on cancellation and after the leader exits (nothing it
    started outlives it unless it moved to a session of its own).
    """
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(env),
        cwd="/",
        start_new_session=True,
    )
    capture = _Capture(limit)
    assert process.stdout is not None
    reader = asyncio.create_task(capture.drain(process.stdout))
    timed_out = False
    try:
        try:
            # not `wait_for`: on Python 3.11 it returns when cancelled as the process ends
            # (cpython gh-86296), and a cancelled run went on as if it had not been
            async with asyncio.timeout(time_limit):
                await process.wait()
        except TimeoutError:
            timed_out = True
    finally:
        _kill_group(process.pid)
        await process.wait()
        _, draining = await asyncio.wait([reader], timeout=DRAIN_GRACE)
        await cancel(*draining)
    return (None if timed_out else process.returncode), capture.text(), timed_out


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class _Capture:
    """Keeps the first and last halves of a stream; counts what was dropped between."""

    def __init__(self, limit: int) -> None:
        self._half = limit // 2
        self._head = bytearray()
        self._tail = bytearray()
        self._dropped = 0

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            room = self._half - len(self._head)
            if room > 0:
                self._head += chunk[:room]
                chunk = chunk[room:]
            self._tail += chunk
            excess = len(self._tail) - self._half
            if excess > 0:
                del self._tail[:excess]
                self._dropped += excess

    def text(self) -> str:
        head = self._head.decode(errors="replace")
        tail = self._tail.decode(errors="replace")
        if self._dropped:
            return f"{head}\n… [{self._dropped} bytes dropped] …\n{tail}"
        return head + tail
