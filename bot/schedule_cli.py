"""`larkops schedule parse`: read schedule texts without the bot, the database or Lark.

    larkops schedule parse "每个工作日早上9点检查服务器健康" --json
    larkops schedule parse "every Friday at 5pm" --now 2026-03-02T10:00:00+08:00 --tz UTC --json
    printf '%s\\n' '{"text": "每天9点"}' '{"text": "in 2 hours", "tz": "UTC"}' \\
        | larkops schedule parse --json

With TEXT: one JSON object. Without TEXT: JSON lines `{"text", "now"?, "tz"?}` from stdin, one
JSON object per line, in order, flushed per line; a line's `now`/`tz` override the flags.
Blank lines are skipped. A line that is not such an object (bad JSON, no string `text`, a bad
`now` or `tz`) gets `{"status": "not_schedule", …, "error": "<why>"}` (every contract key, plus
`error`) and the next line is read. Each object:

    {"status": "scheduled"|"clarify"|"not_schedule", "task", "timezone", "cron", "run_at",
     "next_runs", "question", "source": "rules"|"llm"}

`--now` defaults to the current time (naive times are in the zone), `--tz` to
`LARKOPS_TIMEZONE` (environment, `.env` or `LARKOPS_CONFIG`) or Asia/Shanghai. A zone named in
the text wins and is reported in `timezone`. Without `--json` a short human-readable form is
printed. The model fallback (`source: "llm"`) is tried only for texts the rules cannot read,
and only with `LLM_PROVIDER` openai/anthropic and `LLM_MODEL` set; its SDK is imported only
then. Bad flags exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workflows.schedule.parser import DEFAULT_TIMEZONE, ParseResult, parse, zone_of
from workflows.schedule.wording import describe
from workflows.schedule.zones import known

if TYPE_CHECKING:
    from bot.config import Settings

EXIT_USAGE = 2
LLM_KEYS = (
    "LLM_PROVIDER",
    "LLM_MODEL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
)


class LineError(ValueError):
    """A stdin line that is not a request."""


def environment() -> dict[str, str]:
    """LARKOPS_TIMEZONE and the LLM settings, from the bot's configuration (environment, `.env`,
    `LARKOPS_CONFIG`), or straight from the environment when that configuration is invalid."""
    from bot.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError:
        return {key: value for key, value in os.environ.items() if key in LLM_KEYS} | {
            "LARKOPS_TIMEZONE": os.environ.get("LARKOPS_TIMEZONE", DEFAULT_TIMEZONE)
        }
    return environment_of(settings)


def environment_of(settings: Settings) -> dict[str, str]:
    """The keys `Reader` reads, from loaded settings (the REST API has them already)."""
    return {
        "LARKOPS_TIMEZONE": settings.timezone,
        "SCHEDULES_WORKDAYS": settings.schedules.workdays or "",
        "LLM_PROVIDER": settings.llm_provider,
        "LLM_MODEL": settings.llm_model,
        "OPENAI_API_KEY": settings.openai_api_key.get_secret_value(),
        "OPENAI_BASE_URL": settings.openai_base_url,
        "ANTHROPIC_API_KEY": settings.anthropic_api_key.get_secret_value(),
        "ANTHROPIC_BASE_URL": settings.anthropic_base_url,
    }


def moment(text: str | None, zone: str) -> datetime:
    """`--now`/"now": ISO 8601 (naive is in `zone`), None the current time; ValueError if bad."""
    if text is None:
        return zone_of(None, zone)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"now is not an ISO 8601 time: {text!r}") from None
    return zone_of(value, zone)


class Reader:
    """Parses texts; asks the model only when the rules cannot read one and a model is
    configured (built, used and closed within that one call: it is rare)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    @property
    def has_model(self) -> bool:
        provider = self._env.get("LLM_PROVIDER", "rules").strip().lower()
        return provider in ("openai", "anthropic") and bool(self._env.get("LLM_MODEL", "").strip())

    @property
    def workdays(self) -> str | None:
        """`schedules.workdays` of the configuration; None: the parser's default."""
        return self._env.get("SCHEDULES_WORKDAYS") or None

    def read(self, text: str, now: datetime, zone: str) -> ParseResult:
        result = parse(text, now=now, timezone=zone, workdays=self.workdays)
        if not result.may_ask_model or not self.has_model:
            return result
        import asyncio

        return asyncio.run(self._ask(text, now, zone, result))

    async def aread(self, text: str, now: datetime, zone: str) -> ParseResult:
        """`read` inside a running event loop (the REST API)."""
        result = parse(text, now=now, timezone=zone, workdays=self.workdays)
        if not result.may_ask_model or not self.has_model:
            return result
        return await self._ask(text, now, zone, result)

    async def _ask(self, text: str, now: datetime, zone: str, rules: ParseResult) -> ParseResult:
        from workflows.schedule.fallback import model_from_env, parse_with_model

        model = model_from_env(self._env)
        if model is None:
            return rules
        try:
            return await parse_with_model(
                text, now=now, timezone=zone, model=model, workdays=self.workdays
            )
        finally:
            await model.aclose()


def error_object(zone: str, why: str) -> dict[str, Any]:
    return {
        "status": "not_schedule",
        "task": None,
        "timezone": zone,
        "cron": None,
        "run_at": None,
        "next_runs": [],
        "question": None,
        "source": "rules",
        "error": why,
    }


def request(line: str, now: str | None, zone: str) -> tuple[str, datetime, str]:
    """(text, now, zone) of one stdin line; LineError when it is not a request."""
    try:
        data = json.loads(line)
    except ValueError:
        raise LineError("not JSON") from None
    if not isinstance(data, dict):
        raise LineError("not a JSON object")
    return fields(data, now, zone)


def fields(data: Mapping[str, Any], now: str | None, zone: str) -> tuple[str, datetime, str]:
    """(text, now, zone) of one request object `{"text", "now"?, "tz"?}`; LineError when it
    is not one."""
    text = data.get("text")
    if not isinstance(text, str):
        raise LineError("no string 'text'")
    line_zone = zone if data.get("tz") is None else data["tz"]  # null: as if absent
    if not isinstance(line_zone, str) or not known(line_zone):
        raise LineError(f"unknown time zone {line_zone!r}")
    line_now = now if data.get("now") is None else data["now"]
    if line_now is not None and not isinstance(line_now, str):
        raise LineError("'now' must be an ISO 8601 string")
    try:
        return text, moment(line_now, line_zone), line_zone
    except ValueError as exc:
        raise LineError(str(exc)) from None


async def answer(reader: Reader, data: Mapping[str, Any], zone: str) -> dict[str, Any]:
    """The `--json` object of one request `{"text", "now"?, "tz"?}`, exactly as a stdin line
    of `larkops schedule parse --json` gets it (`POST /api/v1/schedules/parse` answers this)."""
    try:
        text, now, line_zone = fields(data, None, zone)
    except LineError as exc:
        return error_object(zone, str(exc))
    result = await reader.aread(text, now, line_zone)
    return result.contract(now)


def human(result: ParseResult, data: Mapping[str, Any]) -> str:
    """A short readable form of one result."""
    head = f"{result.status} ({result.source}) · {result.timezone}"
    if result.status == "not_schedule":
        return head + (f"\n  error: {data['error']}" if data.get("error") else "")
    if result.status == "clarify":
        return f"{head}\n  task:     {result.task or '-'}\n  question: {result.question}"
    assert result.spec is not None
    lines = [head, f"  task:     {result.task or '-'}"]
    lines.append(f"  rule:     {describe(result.spec, result.language)}")
    lines.append(f"  cron:     {data['cron'] or '-'}")
    for index, run in enumerate(data["next_runs"]):
        lines.append(f"  {'next:' if index == 0 else '':9} {run}")
    return "\n".join(lines)


def _emit(data: Mapping[str, Any], text: str, as_json: bool) -> None:
    print(json.dumps(data, ensure_ascii=False) if as_json else text, flush=True)


def _lines(stream: Iterable[str]) -> Iterable[str]:
    for line in stream:
        if line.strip():
            yield line


def command_parse(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    zone = args.tz or env.get("LARKOPS_TIMEZONE") or DEFAULT_TIMEZONE
    if not known(zone):
        print(f"larkops: unknown time zone {zone!r} (use an IANA name)", file=sys.stderr)
        return EXIT_USAGE
    try:
        default_now = moment(args.now, zone) if args.now else None
    except ValueError as exc:
        print(f"larkops: {exc}", file=sys.stderr)
        return EXIT_USAGE
    reader = Reader(env)
    if args.text is not None:
        now = default_now or moment(None, zone)
        result = reader.read(args.text, now, zone)
        data = result.contract(now)
        _emit(data, human(result, data), args.json)
        return 0
    for line in _lines(sys.stdin):
        try:
            text, now, line_zone = request(line, args.now, zone)
        except LineError as exc:
            data = error_object(zone, str(exc))
            _emit(data, f"not_schedule (rules) · {zone}\n  error: {exc}", args.json)
            continue
        result = reader.read(text, now, line_zone)
        data = result.contract(now)
        _emit(data, human(result, data), args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="larkops schedule", description="Schedule tools")
    actions = root.add_subparsers(dest="action", required=True, metavar="ACTION")
    reader = actions.add_parser(
        "parse",
        help="read a schedule text (or JSON lines on stdin)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reader.add_argument("text", nargs="?", help="the text; omit to read JSON lines from stdin")
    reader.add_argument("--now", help="ISO 8601 time to read it at (default: now)")
    reader.add_argument("--tz", help="default zone (default: LARKOPS_TIMEZONE or Asia/Shanghai)")
    reader.add_argument("--json", action="store_true", help="print the JSON contract")
    return root


def main(argv: Sequence[str]) -> int:
    """`larkops schedule …` (called by `bot.cli` before anything heavy is imported)."""
    args = build_parser().parse_args(list(argv))
    return command_parse(args, environment())
