"""Postgres remediations: cancel or terminate one backend, VACUUM (ANALYZE) one table.

Both support dry runs (they connect and look, then say what they would do) and take an
optional `target`; see `plugins.builtin.postgres` for settings and examples.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from pydantic import Field, field_validator

from plugins.builtin.pg_session import PgParams, PgPlugin, PgRun, PgSettings, shorten
from plugins.contract import PluginContext, PluginResult, Risk

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
TERMINATE_WAIT_MS = 2000


class CancelParams(PgParams):
    """Parameters of `pg_cancel_backend`."""

    pid: int = Field(ge=1, le=2**31 - 1)
    mode: Literal["cancel", "terminate"] = "cancel"

    def policy_risk(self) -> Risk:
        """Terminating a session is high risk; cancelling one statement is medium."""
        return "high" if self.mode == "terminate" else "medium"

    def policy_target(self) -> str:
        """Quotas count runs per database, whichever session they cancel."""
        return f"postgres:{self.target_name()}"


class VacuumParams(PgParams):
    """Parameters of `pg_vacuum`: `table` is `schema.table` or `table` (as stored, ASCII)."""

    table: str = Field(min_length=1, max_length=127)

    @field_validator("table")
    @classmethod
    def _identifier(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) > 2 or not all(IDENTIFIER.fullmatch(part) for part in parts):
            raise ValueError(
                "table must be `schema.table` or `table`: ASCII letters, digits, `_` and `$`, "
                "starting with a letter or `_`, at most 63 characters each"
            )
        if len(parts) == 2 and (parts[0] in SYSTEM_SCHEMAS or parts[0].startswith("pg_")):
            raise ValueError("system catalogs are not vacuumed by this plugin")
        return value

    def schema_and_name(self) -> tuple[str | None, str]:
        """(schema or None, table name)."""
        schema, _, name = self.table.rpartition(".")
        return schema or None, name

    def policy_target(self) -> str:
        """Quotas count runs per database, whichever table they vacuum."""
        return f"postgres:{self.target_name()}"


BACKEND_SQL = """
SELECT a.pid, coalesce(a.usename, '') AS usename, coalesce(a.datname, '') AS datname,
       a.state, a.backend_type, coalesce(a.application_name, '') AS application_name,
       a.backend_start, a.query,
       extract(epoch FROM clock_timestamp() - a.query_start)::float8 AS seconds,
       a.pid = pg_backend_pid() AS ours,
       coalesce(r.rolsuper, false) AS superuser, coalesce(r.rolreplication, false) AS replication
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.pid = $1
"""
# the same guards again, in the statement that signals: the pid cannot be reused in between
SIGNAL_SQL = {
    "cancel": "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
    " WHERE pid = $1 AND backend_start = $2 AND backend_type = 'client backend'"
    " AND pid <> pg_backend_pid()",
    "terminate": "SELECT pg_terminate_backend(pid, $3) FROM pg_stat_activity"
    " WHERE pid = $1 AND backend_start = $2 AND backend_type = 'client backend'"
    " AND pid <> pg_backend_pid()",
}


class PgCancelBackend(PgPlugin):
    """Cancels the running statement of one client backend, or terminates the session."""

    name = "pg_cancel_backend"
    category = "remediation"
    risk = "medium"
    params_model = CancelParams
    idempotent = False
    supports_dry_run = True
    read_only = False
    title_zh = "取消 Postgres 查询"
    title_en = "Cancel a Postgres query"
    description_zh = "取消一个客户端会话正在执行的语句（terminate 模式则断开该会话）"
    description_en = "Cancels one client backend's statement (terminate mode ends the session)"

    async def check(self, run: PgRun, params: Any, ctx: PluginContext) -> PluginResult:
        assert isinstance(params, CancelParams)
        row = await run.conn.fetchrow(BACKEND_SQL, params.pid)
        verb = params.mode
        if row is None:
            return _refused(run, f"no backend with pid {params.pid}", "missing", params.pid)
        backend = {
            "pid": row["pid"],
            "user": row["usename"],
            "database": row["datname"],
            "state": row["state"],
            "backend_type": row["backend_type"],
            "application": row["application_name"],
            "seconds": None if row["seconds"] is None else round(row["seconds"], 1),
            "query": shorten(row["query"]),
        }
        protected = _protected(row)
        if protected:
            kind, reason = protected
            text = f"pid {params.pid} is {reason}; not touched"
            return _refused(run, text, kind, params.pid, backend)
        who = f"{backend['user']}@{backend['database']}, {backend['state']}, {backend['seconds']}s"
        shown = f"pid {params.pid} ({who}): {backend['query']}"
        values = {
            "target": run.target,
            "pid": str(params.pid),
            "who": who,
            "query": str(backend["query"]),
        }
        data: dict[str, Any] = {"target": run.target, "mode": verb, "backend": backend}
        if ctx.dry_run:
            summary = f"dry run: would {verb} {shown} on {run.target}"
            return PluginResult(
                code=f"pg_{verb}_dry",
                values=values,
                ok=True,
                summary=summary,
                data={**data, "dry_run": True},
                evidence=(summary,),
            )
        args: tuple[Any, ...] = (params.pid, row["backend_start"])
        if verb == "terminate":
            args += (TERMINATE_WAIT_MS,)
        signalled = await run.conn.fetchval(SIGNAL_SQL[verb], *args)
        done = "terminated" if verb == "terminate" else "cancelled"
        if signalled is None:
            summary = f"{run.target}: pid {params.pid} went away before it could be {done}"
            return PluginResult(
                code="pg_backend_gone",
                values=values,
                ok=False,
                summary=summary,
                data={**data, "signalled": None},
            )
        summary = (
            f"{run.target}: {done} {shown}"
            if signalled
            else f"{run.target}: pg_{verb}_backend({params.pid}) returned false"
        )
        return PluginResult(
            code=f"pg_{done}" if signalled else f"pg_{verb}_false",
            values=values,
            ok=bool(signalled),
            summary=summary,
            data={**data, "signalled": bool(signalled)},
            evidence=(summary, *run.notices),
        )


def _protected(row: Any) -> tuple[str, str] | None:
    """Why a backend must not be signalled (a code's suffix and a sentence), or None."""
    if row["ours"]:
        return "ours", "this larkops session"
    if row["backend_type"] != "client backend":
        return "not_client", f"a {row['backend_type']} process, not a client backend"
    if row["superuser"]:
        return "superuser", "a superuser session"
    if row["replication"]:
        return "replication", "a replication role's session"
    if row["application_name"].startswith("larkops"):
        return "larkops", "another larkops session"
    return None


def _refused(
    run: PgRun, reason: str, kind: str, pid: int, backend: dict[str, Any] | None = None
) -> PluginResult:
    summary = f"{run.target}: refused: {reason}"
    values = {"target": run.target, "pid": str(pid)}
    if backend is not None:
        values["backend_type"] = str(backend["backend_type"])
    return PluginResult(
        code=f"pg_refused_{kind}",
        values=values,
        ok=False,
        summary=summary,
        data={"target": run.target, "refused": reason, "backend": backend},
        evidence=(summary,),
    )


RESOLVE_SQL = """
SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS qualified
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = $1 AND c.relkind IN ('r', 'm', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%'
  AND CASE WHEN $2::text IS NULL THEN pg_table_is_visible(c.oid) ELSE n.nspname = $2 END
"""
DEAD_SQL = """
SELECT n_dead_tup, n_live_tup, last_vacuum
FROM pg_stat_all_tables WHERE relid = $1
"""


class PgVacuum(PgPlugin):
    """Runs `VACUUM (ANALYZE)` on one existing table, named by the server's own quoting."""

    name = "pg_vacuum"
    category = "remediation"
    risk = "medium"
    params_model = VacuumParams
    idempotent = True
    supports_dry_run = True
    read_only = False
    title_zh = "清理 Postgres 表"
    title_en = "Vacuum a Postgres table"
    description_zh = "对一张表执行 VACUUM (ANALYZE)，回收死元组并更新统计信息"
    description_en = "Runs VACUUM (ANALYZE) on one table: reclaims dead rows, refreshes stats"

    def deadline(self, settings: PgSettings) -> float:
        return settings.deadline + 5.0  # two statements besides the VACUUM itself

    async def check(self, run: PgRun, params: Any, ctx: PluginContext) -> PluginResult:
        assert isinstance(params, VacuumParams)
        schema, name = params.schema_and_name()
        found = await run.conn.fetch(RESOLVE_SQL, name, schema)
        if not found:
            summary = f"{run.target}: no table {params.table} in the target's database"
            return PluginResult(
                code="pg_vacuum_no_table",
                values={"target": run.target, "table": params.table},
                ok=False,
                summary=summary,
                data={"target": run.target},
                evidence=(summary,),
            )
        oid, qualified = found[0]["oid"], str(found[0]["qualified"])
        statement = f"VACUUM (ANALYZE) {qualified}"
        before = await run.conn.fetchrow(DEAD_SQL, oid)
        dead_before = None if before is None else int(before["n_dead_tup"])
        data: dict[str, Any] = {
            "target": run.target,
            "table": qualified,
            "statement": statement,
            "dead_rows_before": dead_before,
        }
        if ctx.dry_run:
            summary = f"dry run: would run {statement} on {run.target} ({dead_before} dead rows)"
            return PluginResult(
                code="pg_vacuum_dry",
                values={"target": run.target, "statement": statement, "dead": str(dead_before)},
                ok=True,
                summary=summary,
                data={**data, "dry_run": True},
                evidence=(summary,),
                output=statement,
            )
        started = time.monotonic()
        await run.conn.execute(statement)  # identifier quoted by the server (format %I)
        duration_ms = round((time.monotonic() - started) * 1000)
        await run.conn.execute("SELECT pg_stat_clear_snapshot()")
        after = await run.conn.fetchrow(DEAD_SQL, oid)
        dead_after = None if after is None else int(after["n_dead_tup"])
        skipped = [n for n in run.notices if "skipping" in n]
        ok = not skipped
        if skipped:
            summary = f"{run.target}: {statement} was skipped: {skipped[0]}"
        else:
            summary = (
                f"{run.target}: {statement} done in {duration_ms} ms; dead rows "
                f"{dead_before} → {dead_after}"
            )
        evidence = [f"ran {statement}", summary, *run.notices]
        if ok and dead_after and dead_before is not None and dead_after >= dead_before:
            evidence.append("dead rows remain: an old transaction may be holding back cleanup")
        values = {
            "target": run.target,
            "statement": statement,
            "ms": str(duration_ms),
            "before": str(dead_before),
            "after": str(dead_after),
            "reason": skipped[0] if skipped else "",
        }
        return PluginResult(
            code="pg_vacuum_done" if ok else "pg_vacuum_skipped",
            values=values,
            ok=ok,
            summary=summary,
            data={
                **data,
                "dead_rows_after": dead_after,
                "duration_ms": duration_ms,
                "notices": list(run.notices),
            },
            evidence=tuple(evidence),
            output=statement,
        )
