"""Postgres diagnostics (low risk, read-only sessions): connections, long queries, locks, bloat.

`ok` means "healthy": False when connections exceed the warning ratio, when a long query or a
blocked session is found, or when a table's dead rows exceed the limits. Every plugin takes
an optional `target`; see `plugins.builtin.postgres` for settings and examples.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from plugins.builtin.pg_session import PgParams, PgPlugin, PgRun, shorten
from plugins.contract import PluginContext, PluginResult

TOP = 20


class ConnectionsParams(PgParams):
    """Parameters of `pg_connections`."""

    warn_ratio: float = Field(default=0.8, gt=0, le=1)

    def policy_target(self) -> str:
        return f"postgres:{self.target_name()}:connections"


class LongQueriesParams(PgParams):
    """Parameters of `pg_long_queries`."""

    min_seconds: int = Field(default=60, ge=1, le=86_400)
    limit: int = Field(default=20, ge=1, le=100)

    def policy_target(self) -> str:
        return f"postgres:{self.target_name()}:long_queries"


class LocksParams(PgParams):
    """Parameters of `pg_locks`."""

    min_wait_seconds: float = Field(default=0, ge=0, le=86_400)
    limit: int = Field(default=20, ge=1, le=100)

    def policy_target(self) -> str:
        return f"postgres:{self.target_name()}:locks"


class BloatParams(PgParams):
    """Parameters of `pg_bloat`."""

    limit: int = Field(default=10, ge=1, le=50)
    min_dead_rows: int = Field(default=1000, ge=0, le=10**12)
    max_dead_ratio: float = Field(default=0.2, gt=0, le=1)

    def policy_target(self) -> str:
        return f"postgres:{self.target_name()}:bloat"


CONNECTIONS_SQL = """
SELECT coalesce(datname, '') AS datname, coalesce(usename, '') AS usename,
       coalesce(state, 'unknown') AS state, count(*) AS n
FROM pg_stat_activity WHERE backend_type = 'client backend'
GROUP BY 1, 2, 3
"""


class PgConnections(PgPlugin):
    """Client connections by state, database and user against `max_connections`."""

    name = "pg_connections"
    category = "diagnostic"
    risk = "low"
    params_model = ConnectionsParams
    title_zh = "Postgres 连接数"
    title_en = "Postgres connections"
    description_zh = "按状态、数据库、用户统计客户端连接数，并与 max_connections 比较"
    description_en = "Counts client connections by state, database and user vs max_connections"

    async def check(self, run: PgRun, params: Any, ctx: PluginContext) -> PluginResult:
        assert isinstance(params, ConnectionsParams)
        rows = await run.conn.fetch(CONNECTIONS_SQL)
        limits = await run.conn.fetchrow(
            "SELECT current_setting('max_connections')::int AS max,"
            " current_setting('superuser_reserved_connections')::int AS reserved"
        )
        assert limits is not None
        by: dict[str, dict[str, int]] = {"state": {}, "database": {}, "user": {}}
        for row in rows:
            for key, column in (("state", "state"), ("database", "datname"), ("user", "usename")):
                by[key][row[column]] = by[key].get(row[column], 0) + int(row["n"])
        total = sum(by["state"].values())
        maximum = int(limits["max"])
        ratio = round(total / maximum, 3) if maximum else 1.0
        ok = ratio <= params.warn_ratio
        top = {key: dict(sorted(v.items(), key=lambda kv: -kv[1])[:TOP]) for key, v in by.items()}
        summary = f"{run.target}: {total}/{maximum} connections ({ratio:.0%})"
        if not ok:
            summary += f", above the warning ratio {params.warn_ratio:.0%}"
        states = ", ".join(f"{k}={v}" for k, v in top["state"].items())
        values = {
            "target": run.target,
            "total": str(total),
            "max": str(maximum),
            "ratio": f"{ratio:.0%}",
            "warn": f"{params.warn_ratio:.0%}",
        }
        return PluginResult(
            code="pg_connections" if ok else "pg_connections_high",
            values=values,
            ok=ok,
            summary=summary,
            data={
                "target": run.target,
                "total": total,
                "max_connections": maximum,
                "superuser_reserved": int(limits["reserved"]),
                "ratio": ratio,
                "by_state": top["state"],
                "by_database": top["database"],
                "by_user": top["user"],
            },
            evidence=(summary, f"by state: {states}"),
        )


LONG_QUERIES_SQL = """
SELECT pid, coalesce(usename, '') AS usename, coalesce(datname, '') AS datname, state,
       extract(epoch FROM clock_timestamp() - query_start)::float8 AS seconds,
       extract(epoch FROM clock_timestamp() - xact_start)::float8 AS xact_seconds,
       wait_event_type, wait_event, application_name, query
FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'
  AND state IS DISTINCT FROM 'idle' AND query_start IS NOT NULL
  AND query_start < clock_timestamp() - make_interval(secs => $1)
ORDER BY query_start
LIMIT $2
"""


class PgLongQueries(PgPlugin):
    """Statements (and open transactions' last statements) running longer than a threshold."""

    name = "pg_long_queries"
    category = "diagnostic"
    risk = "low"
    params_model = LongQueriesParams
    title_zh = "Postgres 慢查询"
    title_en = "Postgres long queries"
    description_zh = "列出运行时间超过阈值的查询（不含本会话）"
    description_en = "Lists statements running longer than a threshold (excluding our own)"

    async def check(self, run: PgRun, params: Any, ctx: PluginContext) -> PluginResult:
        assert isinstance(params, LongQueriesParams)
        rows = await run.conn.fetch(LONG_QUERIES_SQL, float(params.min_seconds), params.limit)
        queries = [
            {
                "pid": row["pid"],
                "user": row["usename"],
                "database": row["datname"],
                "state": row["state"],
                "seconds": round(row["seconds"], 1),
                "xact_seconds": _rounded(row["xact_seconds"]),
                "wait_event": _wait(row["wait_event_type"], row["wait_event"]),
                "application": row["application_name"] or "",
                "query": shorten(row["query"]),
            }
            for row in rows
        ]
        evidence = [
            f"pid {q['pid']} {q['user']}@{q['database']} {q['state']} {q['seconds']:g}s: "
            f"{q['query']}"
            for q in queries
        ]
        if queries:
            oldest = queries[0]
            summary = (
                f"{run.target}: {_count(queries, 'query', 'queries')} over {params.min_seconds}s; "
                f"longest pid "
                f"{oldest['pid']} ({oldest['state']}, {oldest['seconds']:g}s)"
            )
        else:
            summary = f"{run.target}: no queries over {params.min_seconds}s"
        values = {"target": run.target, "seconds": f"{params.min_seconds:g}"}
        if queries:
            values |= {
                "count": str(len(queries)),
                "pid": str(queries[0]["pid"]),
                "state": str(queries[0]["state"]),
                "longest": f"{queries[0]['seconds']:g}",
            }
        return PluginResult(
            code="pg_long_queries" if queries else "pg_long_none",
            values=values,
            ok=not queries,
            summary=summary,
            data={"target": run.target, "min_seconds": params.min_seconds, "queries": queries},
            evidence=(summary, *evidence),
        )


BLOCKED_SQL = """
SELECT a.pid, coalesce(a.usename, '') AS usename, coalesce(a.datname, '') AS datname,
       pg_blocking_pids(a.pid) AS blockers, a.wait_event_type, a.wait_event, a.query,
       extract(epoch FROM clock_timestamp() - coalesce(w.since, a.state_change))::float8 AS waited
FROM pg_stat_activity a
LEFT JOIN LATERAL (
    SELECT min(l.waitstart) AS since FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted
) w ON true
WHERE a.pid <> pg_backend_pid() AND cardinality(pg_blocking_pids(a.pid)) > 0
ORDER BY waited DESC NULLS LAST
"""
BLOCKERS_SQL = """
SELECT pid, coalesce(usename, '') AS usename, coalesce(datname, '') AS datname, state,
       extract(epoch FROM clock_timestamp() - xact_start)::float8 AS xact_seconds,
       application_name, query
FROM pg_stat_activity WHERE pid = ANY($1::int[])
"""


class PgLocks(PgPlugin):
    """Sessions waiting on locks, with the sessions blocking them."""

    name = "pg_locks"
    category = "diagnostic"
    risk = "low"
    params_model = LocksParams
    title_zh = "Postgres 锁等待"
    title_en = "Postgres lock waits"
    description_zh = "列出被锁阻塞的会话及阻塞它们的会话（pg_blocking_pids）"
    description_en = "Lists sessions waiting on locks and who blocks them (pg_blocking_pids)"

    async def check(self, run: PgRun, params: Any, ctx: PluginContext) -> PluginResult:
        assert isinstance(params, LocksParams)
        rows = [
            row
            for row in await run.conn.fetch(BLOCKED_SQL)
            if (row["waited"] or 0) >= params.min_wait_seconds
        ][: params.limit]
        blocked_pids = {row["pid"] for row in rows}
        blocker_pids = sorted({pid for row in rows for pid in row["blockers"]})
        blockers = {
            row["pid"]: {
                "pid": row["pid"],
                "user": row["usename"],
                "database": row["datname"],
                "state": row["state"],
                "xact_seconds": _rounded(row["xact_seconds"]),
                "application": row["application_name"] or "",
                "query": shorten(row["query"]),
                "also_blocked": row["pid"] in blocked_pids,
            }
            for row in await run.conn.fetch(BLOCKERS_SQL, blocker_pids)
        }
        blocked = [
            {
                "pid": row["pid"],
                "user": row["usename"],
                "database": row["datname"],
                "blocked_by": list(row["blockers"]),
                "wait_seconds": _rounded(row["waited"]),
                "wait_event": _wait(row["wait_event_type"], row["wait_event"]),
                "query": shorten(row["query"]),
            }
            for row in rows
        ]
        roots = [pid for pid in blocker_pids if pid not in blocked_pids]
        evidence = [
            f"pid {b['pid']} waits {b['wait_seconds']}s on {b['blocked_by']}: {b['query']}"
            for b in blocked
        ]
        evidence += [
            f"blocker pid {b['pid']} {b['user']}@{b['database']} {b['state']}: {b['query']}"
            for b in blockers.values()
        ]
        if blocked:
            root_list = ", ".join(f"pid {pid}" for pid in roots or blocker_pids)
            summary = (
                f"{run.target}: {_count(blocked, 'blocked session')}; root blockers {root_list}"
            )
        else:
            summary = f"{run.target}: no session is waiting on a lock"
        values = {"target": run.target, "count": str(len(blocked))}
        if blocked:
            values["roots"] = ", ".join(str(pid) for pid in roots or blocker_pids)
        return PluginResult(
            code="pg_locks" if blocked else "pg_locks_none",
            values=values,
            ok=not blocked,
            summary=summary,
            data={
                "target": run.target,
                "blocked": blocked,
                "blockers": list(blockers.values()),
                "root_blockers": roots,
            },
            evidence=(summary, *evidence),
        )


BLOAT_SQL = """
SELECT format('%I.%I', s.schemaname, s.relname) AS name, s.n_live_tup, s.n_dead_tup,
       pg_relation_size(s.relid) AS heap_bytes, pg_total_relation_size(s.relid) AS total_bytes,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze
FROM pg_stat_user_tables s
ORDER BY s.n_dead_tup DESC, s.relid
LIMIT $1
"""


class PgBloat(PgPlugin):
    """Tables of the target's database with the most dead rows, and an estimate of bloat."""

    name = "pg_bloat"
    category = "diagnostic"
    risk = "low"
    params_model = BloatParams
    title_zh = "Postgres 表膨胀估算"
    title_en = "Postgres table bloat (estimate)"
    description_zh = "按死元组数列出膨胀最严重的表（估算值）及最近一次（自动）清理时间"
    description_en = "Top tables by dead rows with an estimated bloat size and last (auto)vacuum"

    async def check(self, run: PgRun, params: Any, ctx: PluginContext) -> PluginResult:
        assert isinstance(params, BloatParams)
        tables = []
        flagged = []
        for row in await run.conn.fetch(BLOAT_SQL, params.limit):
            live, dead = int(row["n_live_tup"]), int(row["n_dead_tup"])
            ratio = round(dead / (live + dead), 3) if live + dead else 0.0
            table = {
                "table": row["name"],
                "live_rows": live,
                "dead_rows": dead,
                "dead_ratio": ratio,
                "heap_bytes": int(row["heap_bytes"]),
                "total_bytes": int(row["total_bytes"]),
                "estimated_bloat_bytes": round(int(row["heap_bytes"]) * ratio),
                "last_vacuum": _iso(row["last_vacuum"]),
                "last_autovacuum": _iso(row["last_autovacuum"]),
                "last_analyze": _iso(row["last_analyze"]),
                "last_autoanalyze": _iso(row["last_autoanalyze"]),
            }
            tables.append(table)
            if dead >= params.min_dead_rows and ratio > params.max_dead_ratio:
                flagged.append(row["name"])
        evidence = [
            f"{t['table']}: {t['dead_rows']} dead / {t['live_rows']} live "
            f"({t['dead_ratio']:.0%}), ~{_size(t['estimated_bloat_bytes'])} of "
            f"{_size(t['heap_bytes'])}, last vacuum "
            f"{t['last_vacuum'] or t['last_autovacuum'] or 'never (since stats reset)'}"
            for t in tables
        ]
        if flagged:
            names = ", ".join(flagged)
            summary = f"{run.target}: {_count(flagged, 'table')} with many dead rows: {names}"
        elif tables:
            summary = f"{run.target}: no table above {params.max_dead_ratio:.0%} dead rows"
        else:
            summary = f"{run.target}: no user tables"
        code = "pg_bloat" if flagged else ("pg_bloat_none" if tables else "pg_no_tables")
        values = {
            "target": run.target,
            "count": str(len(flagged)),
            "tables": ", ".join(flagged),
            "ratio": f"{params.max_dead_ratio:.0%}",
        }
        return PluginResult(
            code=code,
            values=values,
            ok=not flagged,
            summary=summary,
            data={"target": run.target, "estimate": True, "tables": tables, "flagged": flagged},
            evidence=(summary, *evidence),
        )


def _count(items: list[Any], one: str, many: str | None = None) -> str:
    return f"{len(items)} {one if len(items) == 1 else many or one + 's'}"


def _wait(kind: str | None, event: str | None) -> str:
    return f"{kind}:{event}" if kind else ""


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def _iso(moment: Any) -> str | None:
    return None if moment is None else str(moment.isoformat(timespec="seconds"))


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"
