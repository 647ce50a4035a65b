"""Running one plugin safely: validate, bound the time, clean the result. Never raises.

Usage::

    result = await execute(registry, "http_check", PluginContext(), {"url": "https://x/healthz"})
    if not result.ok:
        print(result.summary)        # e.g. "invalid parameters: url: ..." or "timed out after 10s"

`spec.timeout` is the hard limit: the run is cancelled after it (plugins with a finer limit of
their own, like `command`'s per-template timeout, declare a little more so theirs fires first).
Whatever the plugin returns (or raises), the caller gets a `PluginResult` whose summary, output,
evidence and data went through the registry's `Redactor` and are size-capped: output to
`OUTPUT_LIMIT` bytes of UTF-8, at most `EVIDENCE_LIMIT` evidence lines of `LINE_LIMIT` characters.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Histogram
from pydantic import BaseModel

from plugins.contract import InvalidParams, PluginContext, PluginResult, validate_params
from plugins.registry import PluginRegistry
from storage import tracing
from storage.redaction import Redactor

OUTPUT_LIMIT = 8 * 1024
SUMMARY_LIMIT = 500
LINE_LIMIT = 1000
EVIDENCE_LIMIT = 20
DATA_LIMIT = 8 * 1024

# result: ok | failed (the plugin said so) | timeout | error (raised, or returned no result) |
# refused (disabled, invalid parameters, no dry run; plugin `unknown` for a name not registered);
# a dry run that ran is dry_run_ok or dry_run_failed
EXECUTIONS = Counter(
    "larkops_plugin_executions_total",
    "Plugin runs by plugin, category and result",
    ["plugin", "category", "result"],
)
EXECUTION_SECONDS = Histogram(
    "larkops_plugin_execution_seconds",
    "Plugin run time (runs that started)",
    ["plugin"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)


async def execute(
    registry: PluginRegistry,
    name: str,
    ctx: PluginContext,
    params: Mapping[str, Any] | BaseModel,
) -> PluginResult:
    """Run plugin `name` with `params` validated by its model; ok=False on any problem."""
    plugin = registry.get(name)
    if plugin is None:  # the name may be anyone's text: never a label
        EXECUTIONS.labels("unknown", "unknown", "refused").inc()
        return _refused(f"unknown plugin {name!r}", registry.redactor, "plugin_unknown", name)
    spec = plugin.spec
    counted = EXECUTIONS.labels(spec.name, spec.category, "refused")
    if not registry.is_enabled(name):
        counted.inc()
        return _refused(f"plugin {name!r} is disabled", registry.redactor, "plugin_disabled", name)
    try:
        model = validate_params(spec, params)
    except InvalidParams as exc:
        counted.inc()
        text = f"invalid parameters: {exc}"
        return _refused(text, registry.redactor, "plugin_invalid", name, str(exc))
    if ctx.dry_run and spec.category == "remediation" and not spec.supports_dry_run:
        counted.inc()
        text = f"{name} does not support dry runs; nothing was run"
        return _refused(text, registry.redactor, "plugin_no_dry_run", name)
    started = time.monotonic()
    outcome = "error"
    attributes = {"plugin.name": spec.name, "plugin.category": spec.category}
    with tracing.span("plugin.run", attributes) as current:
        try:
            # `asyncio.timeout`, not `wait_for`: Python 3.11's `wait_for` returns the result
            # when it is cancelled as the run completes (cpython gh-86296), and the run's
            # worker went on after a stop() or a lost run lease (`workflows.driver`) stopped it
            async with asyncio.timeout(spec.timeout):
                result = await plugin.run(ctx, model)
        except TimeoutError:
            outcome = "timeout"
            result = PluginResult(
                ok=False,
                summary=f"{name} timed out after {spec.timeout:g}s",
                code="plugin_timeout",
                values={"plugin": name, "seconds": f"{spec.timeout:g}"},
            )
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            result = PluginResult(
                ok=False,
                summary=f"{name} failed: {reason}",
                code="plugin_crashed",
                values={"plugin": name, "reason": reason},
            )
        else:
            if isinstance(result, PluginResult):
                outcome = "ok" if result.ok else "failed"
            else:
                result = PluginResult(
                    ok=False,
                    summary=f"{name} returned {type(result).__name__}, not a PluginResult",
                    code="plugin_bad_result",
                    values={"plugin": name},
                )
        if ctx.dry_run:  # a rehearsal (a proposal's preview, dry-run mode): nothing was changed
            outcome = "dry_run_ok" if outcome == "ok" else "dry_run_failed"
        current.set_attribute("plugin.outcome", outcome)
        current.set_attribute("plugin.dry_run", ctx.dry_run)
    EXECUTION_SECONDS.labels(spec.name).observe(time.monotonic() - started)
    EXECUTIONS.labels(spec.name, spec.category, outcome).inc()
    return clean(result, registry.redactor)


def clean(result: PluginResult, redactor: Redactor) -> PluginResult:
    """Redact then cap every field of a result (redacting first: no secret is cut in half)."""
    evidence = tuple(
        cap_text(redactor.text(line), LINE_LIMIT) for line in result.evidence[:EVIDENCE_LIMIT]
    )
    if len(result.evidence) > EVIDENCE_LIMIT:
        evidence += (f"… {len(result.evidence) - EVIDENCE_LIMIT} more evidence lines dropped",)
    return PluginResult(
        ok=bool(result.ok),
        summary=cap_text(redactor.text(str(result.summary)), SUMMARY_LIMIT),
        data=_capped_data(redactor.data(_plain(result.data))),
        evidence=evidence,
        output=cap_bytes(redactor.text(str(result.output)[: OUTPUT_LIMIT * 4]), OUTPUT_LIMIT),
        code=str(result.code or "")[:64],
        values={
            str(k)[:64]: cap_text(redactor.text(str(v)), LINE_LIMIT)
            for k, v in list(dict(result.values or {}).items())[:16]
        },
    )


def cap_text(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when something was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cap_bytes(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8 (marker included), never splitting a character."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    marker = f"\n… [{len(raw) - limit} more bytes cut]"
    keep = raw[: max(0, limit - len(marker.encode()))]
    return keep.decode(errors="ignore") + marker


def _refused(
    reason: str, redactor: Redactor, code: str, name: str, detail: str = ""
) -> PluginResult:
    """A run refused before it started; `code` and the plugin's name (and the validator's
    `detail`) word it in the chat's language."""
    values = {"plugin": cap_text(redactor.text(name), 64)}
    if detail:
        values["reason"] = cap_text(redactor.text(detail), SUMMARY_LIMIT)
    return PluginResult(
        ok=False,
        summary=cap_text(redactor.text(reason), SUMMARY_LIMIT),
        code=code,
        values=values,
    )


def _plain(data: Any, depth: int = 0) -> Any:
    """JSON-shaped copy: mappings, lists, strings (capped), numbers, booleans, None."""
    if depth > 8:
        return "…"
    if isinstance(data, str):
        return cap_text(data, LINE_LIMIT)
    if isinstance(data, bool | int | float) or data is None:
        return data
    if isinstance(data, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in list(data.items())[:100]}
    if isinstance(data, list | tuple):
        return [_plain(v, depth + 1) for v in data[:100]]
    return cap_text(str(data), LINE_LIMIT)


def _capped_data(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        return {}
    if len(json.dumps(data, ensure_ascii=False, default=str)) <= DATA_LIMIT:
        return data
    return {"truncated": True, "keys": sorted(data)[:50]}


def call_of(registry: PluginRegistry, name: str, params: Mapping[str, Any]) -> list[str]:
    """The exact command line a fix would run (a plugin whose parameters render an argv,
    like `command`'s templates), for the approver to read; empty when the plugin is unknown,
    the parameters invalid, or the plugin runs no command line."""
    plugin = registry.get(name)
    if plugin is None:
        return []
    try:
        model = validate_params(plugin.spec, dict(params))
    except InvalidParams:
        return []
    render = getattr(model, "argv", None)
    if not callable(render):
        return []
    argv = render()
    return [registry.redactor.text(str(part)) for part in argv] if isinstance(argv, list) else []
