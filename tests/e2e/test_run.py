"""`larkops run` as a real process: health, metrics, logs, shutdown, restarts and crashes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import free_port
from tests.e2e.process import LARKOPS, Bot, base_env, pid_alive, postmaster_pid, wait_gone


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bot") / "home"


@pytest.fixture
def bot(home: Path) -> Iterator[Bot]:
    running = Bot(home, free_port()).start()
    yield running
    running.stop()


def _dsn(home: Path) -> str:
    port = (home / "postgres" / "port").read_text(encoding="utf-8").strip()
    return f"postgresql://postgres@127.0.0.1:{port}/larkops"


def test_health_ready_and_metrics_over_http(bot: Bot) -> None:
    health = httpx.get(f"{bot.url}/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}

    ready = httpx.get(f"{bot.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"startup": "ok", "database": "ok", "coordination": "ok"}

    metrics = httpx.get(f"{bot.url}/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    body = metrics.text
    assert "larkops_ready 1.0" in body
    assert 'larkops_component_up{component="database"} 1.0' in body
    assert "process_resident_memory_bytes" in body
    assert 'larkops_http_requests_total{method="GET",route="/healthz",status="200"}' in body


def test_embedded_database_is_migrated_with_pgvector(bot: Bot, home: Path) -> None:
    with psycopg.connect(_dsn(home)) as conn:
        tables = {
            row[0]
            for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        vector = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
    assert {"incidents", "approvals", "knowledge", "schedule_runs", "alembic_version"} <= tables
    assert vector is not None


def test_trace_id_is_returned_and_logged(home: Path) -> None:
    bot = Bot(home, free_port(), env={"LARKOPS_LOG_LEVEL": "debug"}).start()
    try:
        response = httpx.get(f"{bot.url}/healthz", headers={"X-Request-Id": "req-42"})
        fresh = httpx.get(f"{bot.url}/healthz")
    finally:
        assert bot.stop() == 0
    assert response.headers["x-trace-id"] == "req-42"
    assert len(fresh.headers["x-trace-id"]) == 32  # the OpenTelemetry trace id as it is
    records = [json.loads(line) for line in bot.log().splitlines() if line.startswith("{")]
    assert any(r.get("event") == "http.request" and r.get("trace_id") == "req-42" for r in records)
    assert all("level" in r and "timestamp" in r for r in records)


def test_sigterm_stops_cleanly_and_data_survives_restart(home: Path) -> None:
    first = Bot(home, free_port()).start()
    pid = postmaster_pid(home)
    assert pid is not None
    with psycopg.connect(_dsn(home), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO incidents (fingerprint, title) "
            "VALUES ('fp-restart', 'kept across restarts')"
        )
    assert first.stop() == 0
    assert wait_gone(pid), "the embedded server outlived its last holder"
    assert "app.stopped" in first.log()

    second = Bot(home, free_port()).start()
    try:
        with psycopg.connect(_dsn(home)) as conn:
            row = conn.execute(
                "SELECT title FROM incidents WHERE fingerprint = 'fp-restart'"
            ).fetchone()
        assert row == ("kept across restarts",)
    finally:
        assert second.stop() == 0


def test_ctrl_c_with_work_in_flight_stops_without_an_error(home: Path) -> None:
    """Ctrl-C while incidents are being diagnosed: the bot stops cleanly, logging no ERROR and
    no task exception nobody retrieved."""
    bot = Bot(home, free_port(), own_group=True).start()
    token = (home / "webhook.token").read_text(encoding="utf-8").strip()
    for n in range(3):
        alert = {
            "title": f"WebDown{n}",
            "severity": "critical",
            "labels": {"alertname": f"WebDown{n}"},
            "annotations": {"url": f"{bot.url}/healthz"},
        }
        answer = httpx.post(
            f"{bot.url}/webhooks/generic?chat=oc_ops",
            json=alert,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 202
    code = bot.ctrl_c()
    log = bot.log()
    assert code == 0, log[-6000:]
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    loud = [r for r in records if r.get("level") in ("error", "critical")]
    assert loud == [], json.dumps(loud, ensure_ascii=False, indent=1)
    assert "never retrieved" not in log
    assert "Traceback" not in log
    assert "app.stopped" in log


def test_second_run_on_same_home_shares_the_server(home: Path) -> None:
    first = Bot(home, free_port()).start()
    second = Bot(home, free_port()).start()
    pid = postmaster_pid(home)
    assert pid is not None
    try:
        assert first.stop() == 0
        # the other holder still uses it
        assert pid_alive(pid)
        assert httpx.get(f"{second.url}/readyz").status_code == 200
    finally:
        assert second.stop() == 0
    assert wait_gone(pid)


def test_crash_leaving_stale_lock_is_recovered(home: Path) -> None:
    first = Bot(home, free_port()).start()
    pid = postmaster_pid(home)
    assert pid is not None
    # the whole machine "crashes": bot and postmaster die without cleaning up
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid)
    assert (home / "postgres" / "data" / "postmaster.pid").exists()

    second = Bot(home, free_port()).start()
    try:
        assert postmaster_pid(home) not in (None, pid)
        assert "stale" in second.log()
    finally:
        assert second.stop() == 0


def test_database_url_is_used_and_embedded_never_started(tmp_path: Path, fresh_db_url: str) -> None:
    home = tmp_path / "home-with-url"
    bot = Bot(home, free_port(), env={"DATABASE_URL": fresh_db_url}).start()
    try:
        assert not (home / "postgres").exists()
        with psycopg.connect(fresh_db_url) as conn:
            assert conn.execute("SELECT count(*) FROM incidents").fetchone() == (0,)
    finally:
        assert bot.stop() == 0


def test_redis_coordination_when_configured(home: Path, redis_url: str) -> None:
    bot = Bot(home, free_port(), env={"REDIS_URL": redis_url}).start()
    try:
        assert '"coordination": "redis"' in bot.log()
        assert httpx.get(f"{bot.url}/readyz").json()["checks"]["coordination"] == "ok"
    finally:
        assert bot.stop() == 0


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "larkops: REDIS_URL: redis is unreachable"),
        (
            {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
            "larkops: DATABASE_URL: cannot connect",
        ),
    ],
)
def test_unreachable_dependency_stops_start_with_one_line(
    home: Path, env: dict[str, str], expected: str
) -> None:
    bot = Bot(home, free_port(), env=env).start(wait_ready=False)
    assert bot.wait_exit() == 1
    last = bot.log().strip().splitlines()[-1]
    assert last.startswith(expected)
    assert "Traceback" not in bot.log()


def test_port_in_use_is_one_clear_line(home: Path, bot: Bot) -> None:
    other = Bot(home.parent / "other", bot.port).start(wait_ready=False)
    assert other.wait_exit() == 1
    assert f"LARKOPS_HTTP_PORT: cannot listen on 127.0.0.1:{bot.port}" in other.log()


def test_migrate_command_upgrades_and_downgrades(fresh_db_url: str, tmp_path: Path) -> None:
    env = base_env(DATABASE_URL=fresh_db_url, LARKOPS_HOME=str(tmp_path / "h"))
    up = subprocess.run([LARKOPS, "migrate"], env=env, capture_output=True, text=True, check=False)
    assert up.returncode == 0, up.stderr
    from storage.migration import head_revision

    assert f"database at revision {head_revision()}" in up.stdout
    down = subprocess.run(
        [LARKOPS, "migrate", "--downgrade", "base"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert down.returncode == 0, down.stderr
    assert "database at revision base" in down.stdout
    with psycopg.connect(fresh_db_url) as conn:
        assert conn.execute("SELECT to_regclass('public.incidents')").fetchone() == (None,)
