"""The `larkops` command.

    larkops run              the bot; with no LARK_APP_ID it also serves the local Lark sandbox
    larkops sandbox          the local Lark sandbox alone (emulator + web chat)
    larkops migrate          upgrade the database to the newest schema
    larkops gc               one retention cleanup pass (`--dry-run` counts, `--json`)
    larkops config check     print the effective configuration, secrets masked
    larkops schedule parse   read a schedule text (JSON lines on stdin); see bot.schedule_cli
    larkops apikey           create, list and revoke REST API keys; see bot.apikey_cli

Imports are deferred into each command so that commands which do not need the database or
Lark start fast. Failures print one line to stderr: exit 2 for configuration, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Settings

EXIT_FAILURE = 1
EXIT_CONFIG = 2


def _fail(message: str, code: int) -> int:
    print(f"larkops: {message}", file=sys.stderr)
    return code


def _configure_logs(settings: Settings) -> None:
    from bot.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format, settings.secret_values())


def command_run(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from bot.startup import StartupError, paused_collection

    with paused_collection():
        from bot.app import App
    from bot.logs import get_logger
    from bot.workers import plan

    _configure_logs(settings)
    processes = plan(settings, args.workers) if args.intake_of is None else None
    if processes is not None and processes.reason is not None:
        # a warning only when asked for by hand; by default one process is the usual case
        say = get_logger("bot.workers").warning if args.workers else get_logger("bot.workers").info
        say("intake.one_process", asked=args.workers, reason=processes.reason)
    app = App(
        settings,
        workers=processes.count if processes is not None else 1,
        intake_of=args.intake_of,
    )
    try:
        asyncio.run(app.run())
    except StartupError as exc:
        return _fail(str(exc), EXIT_FAILURE)
    return 0


def command_migrate(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from bot.startup import StartupError, open_database
    from storage.migration import current_revision, downgrade, upgrade

    _configure_logs(settings)

    async def migrate() -> str | None:
        database, embedded = await open_database(settings)
        try:
            if args.downgrade:
                await downgrade(database, args.downgrade)
            else:
                await upgrade(database, args.revision)
            return await current_revision(database)
        finally:
            await database.close()
            if embedded is not None:
                await asyncio.to_thread(embedded.release)

    try:
        revision = asyncio.run(migrate())
    except StartupError as exc:
        return _fail(str(exc), EXIT_FAILURE)
    print(f"database at revision {revision or 'base'}")
    return 0


def command_gc(settings: Settings, args: argparse.Namespace) -> int:
    """One retention cleanup pass (`retention:` section); prints rows per table."""
    import asyncio

    from bot.startup import StartupError, open_database
    from storage.migration import current_revision, head_revision
    from workflows.checkpoint import CheckpointerError, open_checkpointer
    from workflows.cleanup import CleanupReport, clean

    _configure_logs(settings)

    async def collect() -> CleanupReport:
        database, embedded = await open_database(settings)
        try:
            revision, head = await current_revision(database), head_revision()
            if revision != head:
                raise StartupError(
                    f"the database is at revision {revision or 'base'}, not {head}: "
                    "run `larkops migrate` first"
                )
            try:
                async with open_checkpointer(database.url, max_size=2) as saver:
                    return await clean(database, saver, settings.retention, dry_run=args.dry_run)
            except CheckpointerError as exc:
                raise StartupError(f"workflow checkpointer: {exc}") from None
        finally:
            await database.close()
            if embedded is not None:
                await asyncio.to_thread(embedded.release)

    try:
        report = asyncio.run(collect())
    except StartupError as exc:
        return _fail(str(exc), EXIT_FAILURE)
    if args.json:
        json.dump(report.as_json(), sys.stdout, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    verb = "would delete" if report.dry_run else "deleted"
    print(f"{'table':<24} {verb:>12} {'seconds':>8}")
    for step in report.steps:
        for n, (table, rows) in enumerate(step.rows.items()):
            took = f"{step.seconds:8.3f}" if n == 0 else ""
            print(f"{table:<24} {rows:>12} {took:>8}".rstrip())
    print(f"{'total':<24} {report.total:>12} {report.seconds:8.3f}")
    would = "would be " if report.dry_run else ""
    print(
        f"finished runs: {report.runs_deleted} {would}deleted, "
        f"{report.runs_pruned} {would}pruned to their last checkpoint"
    )
    return 0


def command_sandbox(settings: Settings, args: argparse.Namespace) -> int:
    """The Lark emulator and its web chat alone, for bots configured with real-looking
    credentials (`LARK_DOMAIN` pointed here), or several replicas sharing one sandbox."""
    import asyncio
    import signal

    from bot.sandbox.emulator import LarkEmulator
    from bot.sandbox.server import serve_emulator
    from bot.sandbox.webchat import webchat_routes

    _configure_logs(settings)

    async def serve() -> None:
        emulator = LarkEmulator()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        routes = webchat_routes()
        async with serve_emulator(
            emulator, host=args.host, port=args.port, extra_routes=routes
        ) as url:
            print(f"Lark sandbox: {url}  (web chat: {url}/sandbox)", flush=True)
            print(
                f"point a bot at it: LARK_APP_ID={emulator.app_id} "
                f"LARK_APP_SECRET={emulator.app_secret} LARK_DOMAIN={url}",
                flush=True,
            )
            await stop.wait()

    try:
        asyncio.run(serve())
    except SystemExit:
        return _fail(f"sandbox: cannot listen on {args.host}:{args.port}", EXIT_FAILURE)
    return 0


def command_config_check(settings: Settings, _: argparse.Namespace) -> int:
    json.dump(settings.masked(), sys.stdout, indent=2, ensure_ascii=False, sort_keys=True)
    sys.stdout.write("\nconfiguration OK\n")
    return 0


def command_schedule(_: Settings, args: argparse.Namespace) -> int:
    from bot.schedule_cli import main as schedule_main

    return schedule_main(args.schedule_args)


def parser() -> argparse.ArgumentParser:
    from bot.version import package_version

    root = argparse.ArgumentParser(prog="larkops", description="Chat-ops bot for Feishu/Lark")
    root.add_argument("--version", action="version", version=f"larkops {package_version()}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the bot")
    run.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes taking webhooks and inbox work (default: the number of cores, at "
        "most 4; more than one needs REDIS_URL, and the sandbox is one process)",
    )
    run.add_argument("--intake-of", type=int, default=None, help=argparse.SUPPRESS)
    run.set_defaults(handler=command_run)

    migrate = commands.add_parser("migrate", help="migrate the database schema")
    migrate.add_argument("--revision", default="head", help="upgrade to this revision")
    migrate.add_argument("--downgrade", metavar="REV", help="downgrade to REV (e.g. base)")
    migrate.set_defaults(handler=command_migrate)

    gc = commands.add_parser("gc", help="delete what the retention periods no longer keep")
    gc.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    gc.add_argument("--json", action="store_true", help="print one JSON object")
    gc.set_defaults(handler=command_gc)

    sandbox = commands.add_parser("sandbox", help="run the local Lark sandbox alone")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8090, help="default 8090")
    sandbox.set_defaults(handler=command_sandbox)

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate and print the configuration")
    check.set_defaults(handler=command_config_check)

    schedule = commands.add_parser(
        "schedule", help="schedule tools: `larkops schedule parse TEXT --json`", add_help=False
    )
    schedule.add_argument("schedule_args", nargs=argparse.REMAINDER)
    schedule.set_defaults(handler=command_schedule)

    apikey = commands.add_parser(
        "apikey", help="REST API keys: `larkops apikey create|list|revoke`", add_help=False
    )
    apikey.add_argument("apikey_args", nargs=argparse.REMAINDER)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["schedule"]:
        # fast path: no bot.app (Lark SDK, database), no settings validation up front
        from bot.schedule_cli import main as schedule_main

        return schedule_main(arguments[1:])
    if arguments[:1] == ["apikey"]:
        # fast path too: the database only (no Lark SDK, no HTTP app)
        from bot.apikey_cli import main as apikey_main

        return apikey_main(arguments[1:])
    args = parser().parse_args(arguments)
    # after parsing: `--version` and `--help` answer without reading the configuration
    from bot.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", EXIT_CONFIG)
    code: int = args.handler(settings, args)
    return code


if __name__ == "__main__":
    sys.exit(main())
