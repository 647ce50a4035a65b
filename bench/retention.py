"""Database growth per incident, and what `larkops gc` gives back.

`larkops run` (its embedded Postgres, fsync on) plays against the Lark emulator. `--incidents`
WebDown alerts (each with `--repeats` repeat notifications folded into it) go through the whole
workflow like a person would drive it: rules diagnosis (http_check: 503), 批准 on the diagnosis
gate, 批准 on the proposal gate, the `command` fix (it makes the health check answer 200),
verification, resolved. Then, per table: rows and bytes (`pg_total_relation_size`, indexes
and TOAST included, LangGraph's checkpoint tables too) per incident over the empty database's:
as written (with the dead row versions that updates leave), after `VACUUM FULL`, after
`larkops gc` once the runs have been finished for an hour (finished runs pruned to their last
checkpoint), and after `larkops gc` once everything is 400 days old (past every default
period). Sizes after a cleanup are measured after `VACUUM FULL` too, i.e. what the remaining rows
take; in production autovacuum makes the freed space reusable instead of returning it to the
disk. Prints figures; asserts nothing.

    .venv/bin/python bench/retention.py [--incidents 30] [--repeats 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import incidents
import psycopg
from figures import figure  # bench/, next to this file
from incidents import CLICK_CHATS, LARKOPS, Bot, alert, gate_of, notification
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.server import serve_emulator

SIZES = """
SELECT c.relname, pg_total_relation_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname
"""
AGE = [  # move everything the bot wrote back by %(days)s days
    "UPDATE incidents SET created_at = created_at - make_interval(days => %(days)s), "
    "updated_at = updated_at - make_interval(days => %(days)s)",
    "UPDATE inbound_events SET created_at = created_at - make_interval(days => %(days)s), "
    "handled_at = handled_at - make_interval(days => %(days)s)",
    "UPDATE incident_events SET created_at = created_at - make_interval(days => %(days)s)",
    "UPDATE llm_turns SET created_at = created_at - make_interval(days => %(days)s)",
]
Sizes = dict[str, tuple[int, int]]  # table -> (bytes, rows)


async def execute(bot: Bot, statement: str, params: dict[str, Any] | None = None) -> None:
    async with await psycopg.AsyncConnection.connect(bot.dsn, autocommit=True) as conn:
        await conn.execute(statement, params)


async def sizes(bot: Bot) -> Sizes:
    found = {}
    for name, size in await bot.rows(SIZES):
        rows = await bot.rows(f'SELECT count(*) FROM "{name}"')
        found[name] = (int(size), int(rows[0][0]))
    return found


async def age(bot: Bot, days: int) -> None:
    for statement in AGE:
        await execute(bot, statement, {"days": days})


def gc(bot: Bot, *options: str) -> dict[str, Any]:
    """`larkops gc --json` against the running bot's database (`--dry-run`: its table)."""
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": bot.dsn, "LARKOPS_LOG_LEVEL": "warning"}
    began = time.perf_counter()
    done = subprocess.run(
        [LARKOPS, "gc", *(options or ["--json"])],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    if options:
        return {"text": done.stdout}
    report: dict[str, Any] = json.loads(done.stdout)
    report["wall"] = time.perf_counter() - began
    return report


async def vacuum_full(bot: Bot) -> None:
    await execute(bot, "VACUUM FULL")


async def drive(bot: Bot, emulator: LarkEmulator, url: str, count: int, repeats: int) -> float:
    """Open `count` incidents and click them through both gates; seconds until all resolved."""
    began = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:
        for n in range(count):
            service = f"web{chr(97 + n // 26)}{chr(97 + n % 26)}"
            labelled = {"alertname": "WebDown", "service": service, "severity": "critical"}
            annotations = {"url": f"{url}/health/{service}", "summary": "web is down"}
            for _ in range(1 + repeats):
                body = notification([alert(labelled, annotations)])
                await bot.post(client, body, CLICK_CHATS[n % len(CLICK_CHATS)].chat_id)
    clicked: set[tuple[str, str]] = set()
    resolved = 0
    while resolved < count and time.monotonic() - began < 60 + 3 * count:
        for chat in CLICK_CHATS:
            for message in emulator.transcript(chat.chat_id):
                value = gate_of(message.card)
                if value is None or (message.message_id, value["gate"]) in clicked:
                    continue
                clicked.add((message.message_id, value["gate"]))
                await emulator.click(message.message_id, "ou_bob", value)
        found = await bot.rows("SELECT count(*) FROM incidents WHERE status = 'resolved'")
        resolved = int(found[0][0])
        await asyncio.sleep(0.3)
    statuses = await bot.rows("SELECT status, count(*) FROM incidents GROUP BY status")
    print(f"incidents: {dict(statuses)} after {time.monotonic() - began:.1f} s")
    return time.monotonic() - began


def table(title: str, count: int, base: Sizes, *columns: tuple[str, Sizes]) -> None:
    """Per table with rows: rows and bytes per incident over the empty database's."""
    names = sorted(
        name
        for name in columns[0][1]
        if any(sized[name][1] - base.get(name, (0, 0))[1] for _, sized in columns)
    )
    print(f"\n{title} (per incident, {count} incidents; bytes over the empty database)")
    header = f"{'table':<24}" + "".join(f"{label:>24}" for label, _ in columns)
    print(header + "\n" + f"{'':<24}" + f"{'rows':>9}{'bytes':>15}" * len(columns))
    totals = [0.0] * len(columns)
    for name in names:
        line = f"{name:<24}"
        for n, (_, sized) in enumerate(columns):
            size, rows = sized.get(name, (0, 0))
            base_size, base_rows = base.get(name, (0, 0))
            grown = (size - base_size) / count
            totals[n] += grown
            line += f"{(rows - base_rows) / count:>9.1f}{grown:>15,.0f}"
        print(line)
    print(f"{'total':<24}" + "".join(f"{'':>9}{total:>15,.0f}" for total in totals))


def quiet_settings(home: Path) -> dict[str, Any]:
    """bench/incidents.py's configuration, without the scheduled cleanup: gc runs by hand."""
    return SETTINGS(home) | {"retention": {"enabled": False}}


SETTINGS, incidents.settings = incidents.settings, quiet_settings  # what `Bot` writes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=1, help="repeat notifications each")
    args = parser.parse_args()
    asyncio.run(bench(args.incidents, args.repeats))


async def bench(count: int, repeats: int) -> None:
    emulator = LarkEmulator(chats=CLICK_CHATS)
    home = Path(tempfile.mkdtemp(prefix="larkops-bench-retention-"))

    async def health(request: Request) -> PlainTextResponse:
        fixed = (home / f"healthy-{request.path_params['service']}").exists()
        return PlainTextResponse("ok" if fixed else "down", status_code=200 if fixed else 503)

    routes = [Route("/health/{service}", health)]
    async with serve_emulator(emulator, extra_routes=routes) as url:
        bot = Bot(home, url, emulator)
        try:
            while not (emulator.connections and await bot.ready()):
                if bot.proc.poll() is not None:
                    raise SystemExit(f"larkops exited: {(home / 'bot.log').read_text()}")
                await asyncio.sleep(0.1)
            await vacuum_full(bot)
            empty = await sizes(bot)
            seconds = await drive(bot, emulator, url, count, repeats)
            await asyncio.sleep(2)  # the last memory writes and card patches
            written = await sizes(bot)
            await vacuum_full(bot)
            compact = await sizes(bot)
            await execute(bot, "UPDATE incidents SET updated_at = updated_at - interval '1 hour'")
            pruned_report = gc(bot)
            await vacuum_full(bot)
            pruned = await sizes(bot)
            await age(bot, 400)
            dry_run = gc(bot, "--dry-run")["text"]
            deleted_report = gc(bot)
            await vacuum_full(bot)
            deleted = await sizes(bot)
        finally:
            bot.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                bot.proc.wait(60)
            bot.log.close()
    shutil.rmtree(home, ignore_errors=True)
    print(f"{count} incidents through both gates to resolved in {seconds:.1f} s")
    table(
        "database growth",
        count,
        empty,
        ("as written", written),
        ("VACUUM FULL", compact),
        ("finished 1 h: gc", pruned),
        ("400 days: gc", deleted),
    )
    for label, report in (("1 h", pruned_report), ("400 days", deleted_report)):
        gone = {name: rows for name, rows in report["tables"].items() if rows}
        print(
            f"\nlarkops gc after {label}: {report['total']} rows in {report['seconds']:.2f} s "
            f"({report['wall']:.1f} s with start-up); runs deleted {report['runs']['deleted']}, "
            f"pruned {report['runs']['pruned']}: {gone}"
        )

    def total(sized: Sizes) -> float:
        return sum(sized[name][0] - empty.get(name, (0, 0))[0] for name in sized) / count

    print(f"\n$ larkops gc --dry-run   # 400 days later\n{dry_run}")
    figure(9, "database growth per incident, as written", total(written), "bytes", "", None)
    figure(9, "per incident after VACUUM FULL", total(compact), "bytes", "", None)
    figure(9, "per incident after gc, finished 1 h", total(pruned), "bytes", "", None)
    figure(9, "per incident after gc, 400 days", total(deleted), "bytes", "", None)


if __name__ == "__main__":
    sys.exit(main())
