"""Postgres plugins against the real embedded server: real locks, real sleeps, real vacuum.

Every test gets a fresh database and three roles: `mon` (the plugins' login, with a password
in its DSN; pg_monitor, pg_signal_backend, pg_maintain), `app` (an ordinary client that owns
the tables and runs the victim sessions) and `ro` (no privileges). Plugins run through
`plugins.execution.execute` with a registry built by `create_plugins`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from plugins.builtin.postgres import NAMES, create_plugins
from plugins.contract import PluginContext, PluginResult, validate_params
from plugins.execution import execute
from plugins.registry import PluginRegistry
from tests.conftest import free_port
from tests.support.language import worded
from tests.support.wait import wait_until


@dataclass
class Pg:
    admin_dsn: str  # superuser, this test's database
    app_dsn: str
    mon_dsn: str
    ro_dsn: str
    password: str
    mon: str
    app: str
    results: list[PluginResult]

    def registry(self, dsn: str | None = None, **settings: Any) -> PluginRegistry:
        registry = PluginRegistry()
        targets = {"main": {"dsn": dsn or self.mon_dsn}}
        for plugin in create_plugins({"targets": targets, **settings}):
            registry.register(plugin)
        return registry

    async def run(
        self,
        name: str,
        params: dict[str, Any],
        *,
        dry_run: bool = False,
        registry: PluginRegistry | None = None,
    ) -> PluginResult:
        ctx = PluginContext(dry_run=dry_run, run_id="test")
        result = await execute(registry or self.registry(), name, ctx, params)
        self.results.append(result)
        return result


def _as(dsn: str, user: str, password: str | None = None) -> str:
    login = f"{user}:{password}" if password else user
    return dsn.replace("://postgres@", f"://{login}@", 1)


@pytest.fixture
async def pg(fresh_db_url: str) -> AsyncIterator[Pg]:
    tag = uuid.uuid4().hex[:8]
    mon, app, ro = f"lk_mon_{tag}", f"lk_app_{tag}", f"lk_ro_{tag}"
    password = f"Pw-{uuid.uuid4().hex}"
    admin = await asyncpg.connect(fresh_db_url)
    await admin.execute(
        f"CREATE ROLE {mon} LOGIN PASSWORD '{password}'"
        " IN ROLE pg_monitor, pg_signal_backend, pg_maintain;"
        f" CREATE ROLE {app} LOGIN; CREATE ROLE {ro} LOGIN;"
        f" GRANT CREATE ON SCHEMA public TO {app}"
    )
    state = Pg(
        admin_dsn=fresh_db_url,
        app_dsn=_as(fresh_db_url, app),
        mon_dsn=_as(fresh_db_url, mon, password),
        ro_dsn=_as(fresh_db_url, ro, password),
        password=password,
        mon=mon,
        app=app,
        results=[],
    )
    try:
        yield state
    finally:
        await admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE usename = ANY($1::text[])",
            [mon, app, ro],
        )
        await admin.execute(f"DROP OWNED BY {mon}, {app}, {ro}; DROP ROLE {mon}, {app}, {ro}")
        await admin.close()
    # the password never leaves a plugin, whatever happened in the test
    for result in state.results:
        dumped = json.dumps(
            [
                result.summary,
                result.output,
                list(result.evidence),
                dict(result.data),
                dict(result.values),
            ],
            default=str,
        )
        assert password not in dumped


async def _state(conn: asyncpg.Connection[asyncpg.Record], pid: int) -> Any:
    return await conn.fetchrow(
        "SELECT state, wait_event_type, query FROM pg_stat_activity WHERE pid = $1", pid
    )


# --- settings, scope, quotas ------------------------------------------------------------


def test_no_targets_no_plugins() -> None:
    assert create_plugins({}) == []
    assert create_plugins({"targets": {}}) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"targets": {"main": {"dsn": "mysql://u:Sekr1t-pw@db/app"}}}, "postgresql:// URL"),
        ({"targets": {"main": {"dsn": "postgresql://u:Sekr1t-pw@/app"}}}, "names no host"),
        ({"targets": {"main": {"url": "postgresql://db/app"}}}, "unknown keys url"),
        ({"targets": {"Main": {"dsn": "postgresql://db/app"}}}, "must be lower-case"),
        ({"targets": {"main": {"dsn": "postgresql://db/a"}}, "default": "x"}, "not configured"),
        ({"targets": {"main": {"dsn": "postgresql://db/a"}}, "statement_timeout_s": 0}, "(0, 600]"),
        ({"targets": {"main": {"dsn": "postgresql://db/a"}}, "dsn": "x"}, "unknown settings dsn"),
    ],
)
def test_bad_settings_are_refused_without_echoing_the_dsn(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match="postgres") as caught:
        create_plugins(settings)
    assert message in str(caught.value)
    assert "Sekr1t-pw" not in str(caught.value)


def test_specs_scope_and_quota_keys() -> None:
    plugins = create_plugins(
        {
            "targets": {
                "main": {"dsn": "postgresql://mon:pw@db1.internal:5432/app"},
                "replica": {"dsn": "postgresql://mon:pw@db2.internal,db3.internal:5433/app"},
            },
            "default": "main",
        }
    )
    specs = {p.spec.name: p.spec for p in plugins}
    assert tuple(specs) == NAMES
    assert {n: (s.category, s.risk) for n, s in specs.items()} == {
        "pg_connections": ("diagnostic", "low"),
        "pg_long_queries": ("diagnostic", "low"),
        "pg_locks": ("diagnostic", "low"),
        "pg_bloat": ("diagnostic", "low"),
        "pg_cancel_backend": ("remediation", "medium"),
        "pg_vacuum": ("remediation", "medium"),
    }
    assert specs["pg_cancel_backend"].supports_dry_run
    assert specs["pg_vacuum"].supports_dry_run

    cancel = validate_params(specs["pg_cancel_backend"], {"pid": "123"})
    assert cancel.policy_scope() == {"target": "main", "host": "db1.internal"}  # type: ignore[attr-defined]
    assert cancel.policy_target() == "postgres:main"  # type: ignore[attr-defined]
    assert cancel.policy_risk() == "medium"  # type: ignore[attr-defined]
    kill = validate_params(specs["pg_cancel_backend"], {"pid": 1, "mode": "terminate"})
    assert kill.policy_risk() == "high"  # type: ignore[attr-defined]
    vacuum = validate_params(specs["pg_vacuum"], {"table": "public.orders", "target": "replica"})
    assert vacuum.policy_target() == "postgres:replica"  # type: ignore[attr-defined]
    scope = vacuum.policy_scope()  # type: ignore[attr-defined]
    assert scope == {"target": "replica", "host": "db2.internal,db3.internal"}
    bloat = validate_params(specs["pg_bloat"], {})
    assert bloat.policy_target() == "postgres:main:bloat"  # type: ignore[attr-defined]


# --- hostile parameters ---------------------------------------------------------------------

HOSTILE = [
    ("pg_vacuum", {"table": "; DROP TABLE x"}, "table: table must be"),
    ("pg_vacuum", {"table": "pg_catalog.pg_authid; --"}, "table: table must be"),
    ("pg_vacuum", {"table": "pg_catalog.pg_authid"}, "system catalogs"),
    ("pg_vacuum", {"table": "../../etc/passwd"}, "table: table must be"),
    ("pg_vacuum", {"table": "ｏｒｄｅｒｓ"}, "table: table must be"),
    ("pg_vacuum", {"table": "o" * 10_000}, "at most 127 characters"),
    ("pg_vacuum", {"table": "ord\x00ers"}, "table: table must be"),
    ("pg_vacuum", {"table": 'orders"; DROP TABLE x; --'}, "table: table must be"),
    ("pg_vacuum", {"table": "a.b.c"}, "table: table must be"),
    ("pg_vacuum", {"table": "orders\n"}, "table: table must be"),
    ("pg_vacuum", {}, "table: Field required"),
    ("pg_cancel_backend", {"pid": "1; DROP TABLE x"}, "pid: Input should be a valid integer"),
    ("pg_cancel_backend", {"pid": "１２３"}, "pid: Input should be a valid integer"),
    ("pg_cancel_backend", {"pid": 0}, "pid: Input should be greater than or equal to 1"),
    ("pg_cancel_backend", {"pid": 2**40}, "pid: Input should be less than or equal to"),
    ("pg_cancel_backend", {"pid": 1, "mode": "kill -9"}, "mode: Input should be 'cancel'"),
    ("pg_cancel_backend", {"pid": 1, "dsn": "postgresql://evil/"}, "dsn: Extra inputs"),
    ("pg_long_queries", {"min_seconds": 0}, "min_seconds: Input should be greater"),
    ("pg_long_queries", {"limit": 10**9}, "limit: Input should be less"),
    ("pg_connections", {"warn_ratio": 5}, "warn_ratio: Input should be less"),
    ("pg_bloat", {"target": "../../etc/passwd"}, "target must be a configured target"),
    ("pg_bloat", {"target": "ｍａｉｎ"}, "target must be a configured target"),
    ("pg_bloat", {"target": "main\x00"}, "target must be a configured target"),
    ("pg_bloat", {"target": "m" * 10_000}, "at most 48 characters"),
    ("pg_bloat", {"target": "other"}, "target must be one of: main"),
]


@pytest.mark.parametrize(("name", "params", "message"), HOSTILE)
async def test_hostile_parameters_are_refused_before_connecting(
    name: str, params: dict[str, Any], message: str
) -> None:
    # the target's port is closed: anything that got past validation would say "cannot connect"
    registry = PluginRegistry()
    dead = f"postgresql://mon:Sekr1t-pw@127.0.0.1:{free_port()}/app"
    for plugin in create_plugins({"targets": {"main": {"dsn": dead}}}):
        registry.register(plugin)
    result = await execute(registry, name, PluginContext(), params)
    assert not result.ok
    assert result.summary.startswith("invalid parameters: ")
    assert message in result.summary
    for value in params.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in result.summary


async def test_unreachable_target_is_a_readable_failure_without_the_password() -> None:
    registry = PluginRegistry()
    dead = f"postgresql://mon:Sekr1t-pw@127.0.0.1:{free_port()}/app"
    for plugin in create_plugins({"targets": {"main": {"dsn": dead}}, "connect_timeout_s": 2}):
        registry.register(plugin)
    result = await execute(registry, "pg_connections", PluginContext(), {})
    assert not result.ok
    assert result.summary.startswith("pg_connections on main: cannot connect:")
    assert "Sekr1t-pw" not in json.dumps([result.summary, dict(result.data), result.evidence])
    assert "Sekr1t-pw" not in json.dumps(dict(result.values))
    assert worded(result).startswith("`pg_connections` 无法连接 `main`：")


# --- diagnostics and remediations on real situations ---------------------------------------


async def test_connections_counts_real_sessions(pg: Pg) -> None:
    others = [await asyncpg.connect(pg.app_dsn) for _ in range(3)]
    try:
        result = await pg.run("pg_connections", {})
        assert result.ok, result.summary
        assert result.data["max_connections"] == 200
        assert result.data["by_user"][pg.app] == 3
        assert result.data["total"] >= 4  # three app sessions and ours
        assert result.summary.startswith("main: ")
        assert worded(result).startswith(f"`main`：{result.data['total']}/200 个连接")
        crowded = await pg.run("pg_connections", {"warn_ratio": 0.01})
        assert not crowded.ok
        assert "above the warning ratio 1%" in crowded.summary
        assert worded(crowded).endswith("超过告警比例 1%")
    finally:
        for conn in others:
            await conn.close()


async def test_long_queries_found_cancelled_and_terminated(pg: Pg) -> None:
    admin = await asyncpg.connect(pg.admin_dsn)
    victim = await asyncpg.connect(pg.app_dsn)
    doomed = await asyncpg.connect(pg.app_dsn)
    witness = await asyncpg.connect(pg.app_dsn)
    larkops = await asyncpg.connect(pg.app_dsn, server_settings={"application_name": "larkops"})
    try:
        vpid, dpid, wpid = (c.get_server_pid() for c in (victim, doomed, witness))
        sleeping = asyncio.create_task(victim.fetchval("SELECT pg_sleep(30)"))
        dozing = asyncio.create_task(doomed.fetchval("SELECT pg_sleep(30) AS doze"))
        watching = asyncio.create_task(witness.fetchval("SELECT pg_sleep(30) AS watch"))

        async def all_running_for(seconds: float) -> bool:
            ran = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])"
                " AND state = 'active'"
                " AND query_start <= clock_timestamp() - make_interval(secs => $2)",
                [vpid, dpid, wpid],
                seconds,
            )
            return bool(ran == 3)

        await wait_until(lambda: all_running_for(1.0), what="the queries running for 1 s")

        found = await pg.run("pg_long_queries", {"min_seconds": 1})
        assert not found.ok
        by_pid = {q["pid"]: q for q in found.data["queries"]}
        assert {vpid, dpid} <= set(by_pid)
        assert by_pid[vpid]["query"] == "SELECT pg_sleep(30)"
        assert by_pid[vpid]["user"] == pg.app
        assert by_pid[vpid]["seconds"] >= 1
        assert all(q["user"] != pg.mon for q in found.data["queries"])  # not our own backend
        quiet = await pg.run("pg_long_queries", {"min_seconds": 600})
        assert quiet.ok
        assert quiet.summary == "main: no queries over 600s"
        assert worded(quiet) == "`main`：没有超过 600 秒的查询"
        assert "条查询超过 1 秒；最久的是 pid" in worded(found)

        preview = await pg.run("pg_cancel_backend", {"pid": vpid}, dry_run=True)
        assert preview.ok
        assert preview.summary.startswith(f"dry run: would cancel pid {vpid}")
        assert preview.data["dry_run"] is True
        assert worded(preview).startswith(f"演练：将取消 `main` 上 pid {vpid} 的当前查询")
        # a cancel that lands (here, of the witness query) proves one had time to land: the
        # victim's, had the dry run sent one, would have landed before it
        assert await admin.fetchval("SELECT pg_cancel_backend($1)", wpid) is True
        with pytest.raises(asyncpg.QueryCanceledError, match="due to user request"):
            await asyncio.wait_for(watching, 5)
        assert not sleeping.done()
        assert (await _state(admin, vpid))["state"] == "active"

        cancelled = await pg.run("pg_cancel_backend", {"pid": vpid})
        assert cancelled.ok, cancelled.summary
        assert cancelled.data["signalled"] is True
        assert worded(cancelled).startswith(f"`main`：已取消 pid {vpid} 的当前查询")
        with pytest.raises(asyncpg.QueryCanceledError, match="due to user request"):
            await asyncio.wait_for(sleeping, 5)
        assert await victim.fetchval("SELECT 1") == 1  # cancel keeps the session

        terminated = await pg.run("pg_cancel_backend", {"pid": dpid, "mode": "terminate"})
        assert terminated.ok, terminated.summary
        assert terminated.summary.startswith(f"main: terminated pid {dpid}")
        assert worded(terminated).startswith(f"`main`：已终止 pid {dpid} 的会话")
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
            await asyncio.wait_for(dozing, 5)
        assert await _state(admin, dpid) is None

        # refusals: a superuser session, a background process, another larkops, no such pid
        super_pid = admin.get_server_pid()
        refused = await pg.run("pg_cancel_backend", {"pid": super_pid})
        assert not refused.ok
        assert "a superuser session; not touched" in refused.summary
        assert worded(refused) == f"`main`：pid {super_pid} 是超级用户会话，不予处理"
        worker = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'"
        )
        refused = await pg.run("pg_cancel_backend", {"pid": worker, "mode": "terminate"})
        assert not refused.ok
        assert "a checkpointer process" in refused.summary
        assert "是 `checkpointer` 进程而非客户端会话" in worded(refused)
        refused = await pg.run("pg_cancel_backend", {"pid": larkops.get_server_pid()})
        assert not refused.ok
        assert "another larkops session" in refused.summary
        assert "是另一个 larkops 会话" in worded(refused)
        missing = await pg.run("pg_cancel_backend", {"pid": 2**31 - 1})
        assert not missing.ok
        assert "no backend with pid" in missing.summary
        assert worded(missing).startswith("`main`：没有 pid 为")
        assert await admin.fetchval("SELECT 1") == 1
    finally:
        for conn in (victim, doomed, witness, larkops, admin):
            if not conn.is_closed():
                conn.terminate()


async def test_locks_name_blocked_and_blocking_pids_and_lock_waits_time_out(pg: Pg) -> None:
    setup = await asyncpg.connect(pg.app_dsn)
    await setup.execute(
        "CREATE TABLE accounts (id int PRIMARY KEY); INSERT INTO accounts VALUES (1)"
    )
    await setup.close()
    admin = await asyncpg.connect(pg.admin_dsn)
    holder = await asyncpg.connect(pg.app_dsn)
    waiter = await asyncpg.connect(pg.app_dsn)
    try:
        assert (await pg.run("pg_locks", {})).ok
        hpid, wpid = holder.get_server_pid(), waiter.get_server_pid()
        await holder.execute("BEGIN; LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
        waiting = asyncio.create_task(waiter.fetchval("SELECT count(*) FROM accounts"))

        async def blocked() -> bool:
            row = await _state(admin, wpid)
            return row is not None and row["wait_event_type"] == "Lock"

        await wait_until(blocked, what="the waiter blocked on the lock")
        result = await pg.run("pg_locks", {})
        assert not result.ok
        [entry] = [b for b in result.data["blocked"] if b["pid"] == wpid]
        assert entry["blocked_by"] == [hpid]
        assert entry["query"] == "SELECT count(*) FROM accounts"
        assert entry["wait_seconds"] is not None
        assert entry["wait_seconds"] >= 0
        [blocker] = result.data["blockers"]
        assert blocker["pid"] == hpid
        assert blocker["state"] == "idle in transaction"
        assert "LOCK TABLE accounts" in blocker["query"]
        assert result.data["root_blockers"] == [hpid]
        assert f"root blockers pid {hpid}" in result.summary
        assert worded(result).endswith(f"根阻塞进程 pid {hpid}")
        assert (await pg.run("pg_locks", {"min_wait_seconds": 3600})).ok

        # the same lock makes VACUUM wait: the session's lock_timeout ends it, readably
        quick = pg.registry(lock_timeout_s=0.5)
        started = time.monotonic()
        stuck = await pg.run("pg_vacuum", {"table": "accounts"}, registry=quick)
        assert time.monotonic() - started < 5
        assert not stuck.ok
        assert stuck.summary.startswith("pg_vacuum on main: lock timeout (0.5s)"), stuck.summary
        assert worded(stuck).startswith("`pg_vacuum` 在 `main` 上执行失败：")
        # and statement_timeout when the lock wait is allowed to be longer than the statement
        slow = pg.registry(lock_timeout_s=30, statement_timeout_s=0.5)
        stuck = await pg.run("pg_vacuum", {"table": "public.accounts"}, registry=slow)
        assert not stuck.ok
        assert stuck.summary.startswith("pg_vacuum on main: statement timeout (0.5s)")

        await holder.execute("COMMIT")
        assert await asyncio.wait_for(waiting, 5) == 1
    finally:
        for conn in (holder, waiter, admin):
            conn.terminate()


async def test_bloat_found_and_vacuumed_away(pg: Pg) -> None:
    app = await asyncpg.connect(pg.app_dsn)
    admin = await asyncpg.connect(pg.admin_dsn)
    try:
        await app.execute(
            "CREATE TABLE orders (id int PRIMARY KEY, note text) WITH (autovacuum_enabled = off);"
            " INSERT INTO orders SELECT g, repeat('x', 50) FROM generate_series(1, 20000) g;"
            " DELETE FROM orders WHERE id > 5000;"
            " SELECT pg_stat_force_next_flush()"
        )

        async def counted() -> bool:
            dead = await admin.fetchval(
                "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'orders'"
            )
            return bool(dead and dead >= 15000)

        await wait_until(counted, what="the dead rows counted")
        bloat = await pg.run("pg_bloat", {})
        assert not bloat.ok
        assert bloat.data["flagged"] == ["public.orders"]
        [orders] = [t for t in bloat.data["tables"] if t["table"] == "public.orders"]
        assert orders["dead_rows"] >= 15000
        assert orders["dead_ratio"] > 0.7
        assert orders["estimated_bloat_bytes"] > 0
        assert orders["last_vacuum"] is None
        assert bloat.data["estimate"] is True
        assert worded(bloat) == "`main`：1 张表死行过多：`public.orders`"

        preview = await pg.run("pg_vacuum", {"table": "orders"}, dry_run=True)
        assert preview.ok
        assert preview.summary.startswith("dry run: would run VACUUM (ANALYZE) public.orders")
        assert preview.output == "VACUUM (ANALYZE) public.orders"
        assert worded(preview).startswith("演练：将在 `main` 上执行 `VACUUM (ANALYZE) public.")

        denied = await pg.run("pg_vacuum", {"table": "orders"}, registry=pg.registry(pg.ro_dsn))
        assert not denied.ok
        assert "was skipped" in denied.summary
        assert "被跳过" in worded(denied)

        vacuumed = await pg.run("pg_vacuum", {"table": "public.orders"})
        assert vacuumed.ok, vacuumed.summary
        assert vacuumed.data["dead_rows_before"] >= 15000
        assert vacuumed.data["dead_rows_after"] == 0
        assert "dead rows" in vacuumed.summary
        assert worded(vacuumed).endswith(" → 0")

        after = await pg.run("pg_bloat", {})
        assert after.ok, after.summary
        assert "没有死行比例超过" in worded(after)
        [orders] = [t for t in after.data["tables"] if t["table"] == "public.orders"]
        assert orders["dead_rows"] == 0
        assert orders["last_vacuum"] is not None

        missing = await pg.run("pg_vacuum", {"table": "public.nothing_here"})
        assert not missing.ok
        assert "no table public.nothing_here" in missing.summary
        assert worded(missing) == "`main`：数据库中没有表 `public.nothing_here`"
    finally:
        await app.close()
        await admin.close()
