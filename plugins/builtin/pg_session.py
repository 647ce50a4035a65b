"""What every Postgres plugin shares: settings, the target-bound parameter base, one connection.

Each run opens its own asyncpg connection to the named target (connect timeout from the
settings) with `application_name=larkops` and session `statement_timeout` / `lock_timeout`,
and closes it afterwards (it is terminated when the run is cancelled). Diagnostic runs also set
`default_transaction_read_only=on`. Errors become ok=False results whose summary names the
target (never the DSN) and says what went wrong, e.g. `pg_vacuum on main: lock timeout (0.5s):
canceling statement due to lock timeout`; the target's password is scrubbed from any message.

Usage (see `plugins.builtin.postgres` for the plugins themselves)::

    settings = PgSettings.parse({"targets": {"main": {"dsn": "postgresql://..."}}})

    class PgPing(PgPlugin):
        name = "pg_ping"
        ...
        async def check(self, run: PgRun, params: Any, ctx: PluginContext) -> PluginResult:
            one = await run.conn.fetchval("SELECT 1")
            return PluginResult(ok=one == 1, summary=f"{run.target} answers")
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg
from pydantic import BaseModel

from plugins.builtin.targets import (
    TargetParams,
    Targets,
    bind_hosts,
    parse_targets,
    target_hosts,
)
from plugins.contract import Category, PluginContext, PluginResult, PluginSpec, Risk

SETTINGS_KEYS = frozenset(
    {"targets", "default", "connect_timeout_s", "statement_timeout_s", "lock_timeout_s"}
)
QUERY_LIMIT = 300
ERROR_LIMIT = 300
_PASSWORD_LITERAL = re.compile(r"(?i)(\bpassword\s+)'(?:[^']|'')*'")

if TYPE_CHECKING:
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record]
else:
    Connection = asyncpg.Connection


@dataclass(frozen=True)
class PgSettings:
    """`plugins.settings.postgres`: the targets and the per-run time limits (seconds)."""

    targets: Targets
    connect_timeout: float = 5.0
    statement_timeout: float = 10.0
    lock_timeout: float = 3.0

    @classmethod
    def parse(cls, settings: Mapping[str, Any]) -> PgSettings:
        """Validate the settings; ValueError naming the problem (never echoing a DSN)."""
        if not isinstance(settings, Mapping):
            raise ValueError("postgres: settings must be a mapping")
        unknown = set(settings) - SETTINGS_KEYS
        if unknown:
            raise ValueError(f"postgres: unknown settings {', '.join(sorted(map(str, unknown)))}")
        targets = parse_targets(
            "postgres", settings, fields={"dsn": str}, required=frozenset({"dsn"})
        )
        target_hosts(targets, target_host)  # every DSN names a host
        return cls(
            targets=targets,
            connect_timeout=_seconds(settings, "connect_timeout_s", 5.0, 60.0),
            statement_timeout=_seconds(settings, "statement_timeout_s", 10.0, 600.0),
            lock_timeout=_seconds(settings, "lock_timeout_s", 3.0, 600.0),
        )

    @property
    def deadline(self) -> float:
        """A plugin's hard limit: the server-side limits fire first."""
        return self.connect_timeout + self.statement_timeout + 5.0


def _seconds(settings: Mapping[str, Any], key: str, default: float, most: float) -> float:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= most:
        raise ValueError(f"postgres: {key} must be a number of seconds in (0, {most:g}]")
    return float(value)


def dsn_host(dsn: str) -> str:
    """The host(s) of a `postgresql://` DSN (comma-joined when several); ValueError if none."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("dsn must be a postgresql:// URL")
    hosts = []
    for item in parts.netloc.rpartition("@")[2].split(","):
        host = item[1 : item.find("]")] if item.startswith("[") else item.partition(":")[0]
        if host:
            hosts.append(unquote(host))
    if not hosts:
        hosts = [h for value in parse_qs(parts.query).get("host", []) for h in value.split(",")]
    if not hosts:
        raise ValueError("dsn names no host")
    return ",".join(hosts)


def dsn_secrets(dsn: str) -> list[str]:
    """The password(s) in a DSN, raw and decoded, to scrub from error messages."""
    parts = urlsplit(dsn)
    found = [*parse_qs(parts.query).get("password", [])]
    userinfo = parts.netloc.rpartition("@")[0]
    if ":" in userinfo:
        raw = userinfo.partition(":")[2]
        found += [raw, unquote(raw)]
    return [s for s in found if s]


def shorten(text: str | None, limit: int = QUERY_LIMIT) -> str:
    """Query text for results: `PASSWORD '…'` literals masked, at most `limit` characters."""
    if text is None:
        return ""
    text = _PASSWORD_LITERAL.sub(r"\1'***'", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class PgParams(TargetParams):
    """Base of every Postgres parameter model: the optional `target` (a configured name)."""

    def policy_target(self) -> str:
        """Quotas count runs per target (remediations narrow this to a pid or a table)."""
        return f"postgres:{self.target_name()}"


def target_host(body: Mapping[str, Any]) -> str:
    """The host(s) of a configured target (its `dsn`)."""
    return dsn_host(str(body["dsn"]))


@dataclass
class PgRun:
    """One run's connection, target name and the server notices received so far."""

    conn: Connection
    target: str
    settings: PgSettings
    notices: list[str] = field(default_factory=list)


class PgPlugin:
    """Base of the Postgres plugins: a per-instance spec, one connection per run."""

    name: ClassVar[str]
    category: ClassVar[Category]
    risk: ClassVar[Risk]
    params_model: ClassVar[type[PgParams]]
    idempotent: ClassVar[bool] = True
    supports_dry_run: ClassVar[bool] = False
    read_only: ClassVar[bool] = True
    title_zh: ClassVar[str]
    title_en: ClassVar[str]
    description_zh: ClassVar[str]
    description_en: ClassVar[str]

    def __init__(self, settings: PgSettings) -> None:
        self.settings = settings
        self.spec = PluginSpec(
            name=self.name,
            category=self.category,
            risk=self.risk,
            params=bind_hosts(self.params_model, settings.targets, target_host),
            timeout=self.deadline(settings),
            idempotent=self.idempotent,
            supports_dry_run=self.supports_dry_run,
            title_zh=self.title_zh,
            title_en=self.title_en,
            description_zh=self.description_zh,
            description_en=self.description_en,
        )

    def deadline(self, settings: PgSettings) -> float:
        """The spec's hard timeout (server-side limits fire first)."""
        return settings.deadline

    async def check(self, run: PgRun, params: Any, ctx: PluginContext) -> PluginResult:
        """The plugin's work on an open connection."""
        raise NotImplementedError

    async def run(self, ctx: PluginContext, params: BaseModel) -> PluginResult:
        """Connect to the target, do the work, always close the connection."""
        assert isinstance(params, self.params_model)
        target = params.target_name()
        dsn = str(self.settings.targets.get(target)["dsn"])
        where = f"{self.name} on {target}"
        try:
            conn = await self._connect(dsn)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            reason = scrub(describe_error(exc, self.settings), dsn)
            return PluginResult(
                ok=False,
                summary=f"{where}: cannot connect: {reason}",
                code="pg_unreachable",
                values={"plugin": self.name, "target": target, "reason": reason},
            )
        run = PgRun(conn=conn, target=target, settings=self.settings)
        conn.add_log_listener(lambda _conn, message: _note(run, message))
        finished = False
        try:
            result = await self.check(run, params, ctx)
            finished = True
            return result
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            finished = True
            reason = scrub(describe_error(exc, self.settings), dsn)
            return PluginResult(
                code="pg_failed",
                values={"plugin": self.name, "target": target, "reason": reason},
                ok=False,
                summary=f"{where}: {reason}",
                data={"target": target, "error": reason},
                evidence=(f"{where} failed: {reason}",),
            )
        finally:
            await _close(conn, graceful=finished)

    async def _connect(self, dsn: str) -> Connection:
        settings = self.settings
        server_settings = {
            "application_name": "larkops",
            "statement_timeout": str(round(settings.statement_timeout * 1000)),
            "lock_timeout": str(round(settings.lock_timeout * 1000)),
            "idle_in_transaction_session_timeout": str(round(settings.deadline * 1000)),
        }
        if self.read_only:
            server_settings["default_transaction_read_only"] = "on"
        return await asyncpg.connect(
            dsn,
            timeout=settings.connect_timeout,
            command_timeout=settings.statement_timeout + 2,
            statement_cache_size=0,
            server_settings=server_settings,
        )


def _note(run: PgRun, message: Any) -> None:
    severity = getattr(message, "severity", "NOTICE")
    text = str(getattr(message, "message", message))
    run.notices.append(f"{severity}: {text}"[:ERROR_LIMIT])


async def _close(conn: Connection, *, graceful: bool) -> None:
    if not graceful:
        conn.terminate()  # cancelled mid-query: do not wait for the server
        return
    try:
        await conn.close(timeout=2)
    except Exception:
        conn.terminate()


def describe_error(exc: BaseException, settings: PgSettings) -> str:
    """A short, readable reason: which limit fired, or the server's message."""
    if isinstance(exc, asyncpg.LockNotAvailableError):
        return f"lock timeout ({settings.lock_timeout:g}s): {exc}"
    if isinstance(exc, asyncpg.QueryCanceledError):
        text = str(exc)
        if "statement timeout" in text:
            return f"statement timeout ({settings.statement_timeout:g}s): {text}"
        return f"query canceled: {text}"
    if isinstance(exc, TimeoutError):
        return f"timed out (connect limit {settings.connect_timeout:g}s)"
    if isinstance(exc, asyncpg.PostgresError):
        return f"{type(exc).__name__} ({exc.sqlstate}): {exc}"
    return f"{type(exc).__name__}: {exc}"


def scrub(text: str, dsn: str) -> str:
    """`text` without the DSN's password, on one line, capped."""
    for secret in sorted(dsn_secrets(dsn), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 1] + "…"
