"""The model as a fallback for schedule texts the rules cannot read.

Only a rules result that is `clarify` because the text was *unreadable* or used an
*unsupported* pattern goes to a model (`ParseResult.may_ask_model`); vague or ambiguous text
keeps its question — a model must not guess what we refuse to guess. The text is redacted
before it is sent. In the bot the call goes through `ModelGuard` like every other model call
(`parse_guarded`: budgets, rate limit, retries, the record, the configured redaction); the
CLI, which has no database, calls the model itself (`parse_with_model`). The model answers with a
spec in our intermediate form (`spec.to_json`); the answer is accepted only when it validates
(`from_json`), compiles to a trigger and yields a next fire time in the future. Otherwise, and
on any model error, the rules' answer stands.

Usage::

    model = model_from_env(os.environ)            # None unless LLM_PROVIDER is openai/anthropic
    result = await parse_with_model(text, now=now, timezone="Asia/Shanghai", model=model)
    result.source                                  # "llm" when the model's answer was taken
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workflows.schedule.compiler import next_runs
from workflows.schedule.parser import DEFAULT_TIMEZONE, ParseResult, parse, zone_of
from workflows.schedule.spec import Once, SpecError, from_json

if TYPE_CHECKING:
    from workflows.llm.guard import ModelGuard
    from workflows.llm.model import ChatModel, Message
    from workflows.llm.prompt import Scrubber

REQUEST_TIMEOUT = 20.0
MAX_TOKENS = 600
SYSTEM = """You turn one chat message into a schedule. Answer with one JSON object only.

If the message asks for something to happen at a time you can determine exactly:
{"status": "scheduled", "task": "<what to do, without the time words>", "spec": SPEC}
Otherwise: {"status": "clarify", "question": "<one short question>"} or
{"status": "not_schedule"}. Never guess a time that the message does not state.

SPEC is one of (times "HH:MM" 24-hour, weekdays "mon".."sun", zone an IANA name):
- one time:  {"form": "once", "timezone": Z, "at": "<ISO 8601 with offset>"}
- fixed times on days: {"form": "calendar", "timezone": Z, "times": ["09:00", ...],
    "days": {"type": "daily"} | {"type": "weekly", "weekdays": ["mon", ...]}
          | {"type": "monthly", "days": [1, 15], "last": false}
          | {"type": "nth", "positions": [[1, "mon"], [-1, "fri"]]}
          | {"type": "workdays", "calendar": "cn" | "mon-fri"}
          | {"type": "month_workday", "nth": 1 | -1, "near": 0, "calendar": "cn" | "mon-fri"}
          | {"type": "week_step", "weekdays": ["fri"], "weeks": 2, "start": "<Monday, ISO date>"}
          | {"type": "festival", "name": "chuxi" | "chunjie" | "zhongqiu" | "lunar-8-15" | ...},
    "months": [] (or e.g. [12] for every December), "start": null or "<ISO date>"}
- a step: {"form": "every", "timezone": Z, "minutes": 30, "window": ["09:00", "18:00"] or null,
    "weekdays": [] or ["mon", ...], "anchor": "<ISO 8601 first run>" or null}
  (anchor is required when the step does not divide an hour, or a day in hours; day steps
  use minutes = days * 1440 with the anchor at the first run's time of day).
Use the zone given unless the message names another. The user message is JSON with the text,
the current time and the zone."""
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def model_from_env(env: Mapping[str, str]) -> ChatModel | None:
    """The configured chat model (LLM_PROVIDER openai/anthropic with LLM_MODEL set), else None.

    Reads LLM_PROVIDER, LLM_MODEL, OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY,
    ANTHROPIC_BASE_URL. The SDK is imported only here, only when a model is configured."""
    provider = env.get("LLM_PROVIDER", "rules").strip().lower()
    name = env.get("LLM_MODEL", "").strip()
    if provider not in ("openai", "anthropic") or not name:
        return None
    from workflows.llm.providers import build_model

    try:
        return build_model(
            provider,
            name,
            openai_api_key=env.get("OPENAI_API_KEY", ""),
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            anthropic_api_key=env.get("ANTHROPIC_API_KEY", ""),
            anthropic_base_url=env.get("ANTHROPIC_BASE_URL") or None,
        )
    except ValueError:
        return None


def _json_object(text: str) -> Any:
    text = _FENCE.sub("", text.strip())
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        return json.loads(text[start : end + 1])
    except ValueError:
        return None


def accept(answer: str, rules: ParseResult, now: datetime) -> ParseResult | None:
    """The model's `answer` as a scheduled result, or None when it does not hold up."""
    data = _json_object(answer)
    if not isinstance(data, dict) or data.get("status") != "scheduled":
        return None
    raw = data.get("spec")
    if not isinstance(raw, dict):
        return None
    raw = {"timezone": rules.timezone, **raw}
    try:
        spec = from_json(raw)
        runs = next_runs(spec, now, 1)
    except (SpecError, ValueError, TypeError, OverflowError):
        return None
    if not runs or (isinstance(spec, Once) and spec.at <= now):
        return None
    task = data.get("task")
    task = task.strip() if isinstance(task, str) and task.strip() else rules.task
    return ParseResult("scheduled", task, spec.timezone, rules.language, spec=spec, source="llm")


Ask = Callable[[list["Message"]], Awaitable[str]]
"""One model call: the messages in, the answer's text out (ModelError/ModelUnavailable raised)."""


async def model_reading(
    text: str, rules: ParseResult, now: datetime, ask: Ask, redact: Callable[[str], str]
) -> ParseResult:
    """The model's reading of `text` (redacted by `redact` before it leaves), when it
    compiles; else `rules`. Only for texts the rules could not read (`may_ask_model`)."""
    if not rules.may_ask_model:
        return rules
    from workflows.llm.model import Message, ModelError

    local_now = zone_of(now, rules.timezone)
    request = {"text": redact(text), "now": local_now.isoformat(), "timezone": rules.timezone}
    messages = [
        Message("system", SYSTEM),
        Message("user", json.dumps(request, ensure_ascii=False)),
    ]
    try:
        answer = await ask(messages)
    except (ModelError, RuntimeError):  # ModelUnavailable (the guard said no) is a RuntimeError
        return rules
    return accept(answer, rules, local_now) or rules


async def parse_with_model(
    text: str,
    *,
    now: datetime | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    model: ChatModel | None = None,
    workdays: str | None = None,
) -> ParseResult:
    """The rules' reading of `text`, or the model's when the rules could not read it and the
    model's answer compiles (see the module docstring). For `larkops schedule parse`, which
    has no database: the bot goes through `parse_guarded`."""
    rules = parse(text, now=now, timezone=timezone, workdays=workdays)
    if model is None or not rules.may_ask_model:
        return rules
    from storage.redaction import Redactor

    async def ask(messages: list[Message]) -> str:
        reply = await model.complete(
            messages, max_tokens=MAX_TOKENS, request_timeout=REQUEST_TIMEOUT
        )
        return reply.text

    return await model_reading(text, rules, zone_of(now, rules.timezone), ask, Redactor().text)


async def parse_guarded(
    text: str,
    *,
    now: datetime,
    timezone: str,
    guard: ModelGuard,
    scrub: Scrubber,
    workdays: str | None = None,
) -> ParseResult:
    """As `parse_with_model`, through the guard every model call of the bot goes through
    (budgets, the shared rate limit, retries, the `llm_turns` record) and its redaction."""
    rules = parse(text, now=now, timezone=timezone, workdays=workdays)
    if not rules.may_ask_model:
        return rules

    async def ask(messages: list[Message]) -> str:
        deadline = time.monotonic() + REQUEST_TIMEOUT
        reply = await guard.complete(messages, purpose="schedule", deadline=deadline)
        return reply.text

    return await model_reading(text, rules, now, ask, scrub.text)
