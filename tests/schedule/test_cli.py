"""`larkops schedule parse`: the JSON-lines contract through the real CLI (subprocesses), bad
lines and flags, the default zone, the human form, the model fallback end to end against the
scripted fake OpenAI server, and what a parse imports."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from tests.support.fake_llm import FakeTurn, fake_llm

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"status", "task", "timezone", "cron", "run_at", "next_runs", "question", "source"}
NOW = "2026-03-02T10:00:00+08:00"


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "OPENAI", "LARKOPS"))}
    return {**env, "LLM_PROVIDER": "rules", **extra}


def larkops(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "schedule", "parse", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment(**env),
        timeout=60,
        check=False,
    )


def objects(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_one_text_one_object() -> None:
    done = larkops("周一到周五早上9点检查服务器健康", "--now", NOW, "--json")
    assert done.returncode == 0, done.stderr
    [data] = objects(done.stdout)
    assert set(data) == KEYS
    assert data == {
        "status": "scheduled",
        "task": "检查服务器健康",
        "timezone": "Asia/Shanghai",
        "cron": "0 9 * * 1-5",
        "run_at": None,
        "next_runs": [
            "2026-03-03T09:00:00+08:00",
            "2026-03-04T09:00:00+08:00",
            "2026-03-05T09:00:00+08:00",
            "2026-03-06T09:00:00+08:00",
            "2026-03-09T09:00:00+08:00",
        ],
        "question": None,
        "source": "rules",
    }


def test_stdin_lines_in_order_with_bad_lines_answered_and_skipped_over() -> None:
    lines = [
        {"text": "每天9点"},
        "this is not json",
        {"text": "in 2 hours check", "tz": "UTC", "now": "2026-03-08T06:30:00Z"},
        "",
        ["a", "list"],
        {"text": 5},
        {"text": "每天9点", "tz": "Mars/Base"},
        {"text": "每天9点", "now": "yesterday"},
        {"text": "提醒我开会"},
        {"text": "/help"},
        {"text": "every day at 9am", "now": "2026-03-02T10:00:00"},
        {"text": "每天9点", "tz": None, "now": None},  # null: as if absent
    ]
    stdin = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    done = larkops("--json", "--now", NOW, "--tz", "Asia/Shanghai", stdin=stdin + "\n")
    assert done.returncode == 0, done.stderr
    out = objects(done.stdout)
    assert len(out) == len(lines) - 1  # the blank line is skipped
    assert all(set(item) >= KEYS for item in out)
    assert out[0]["next_runs"][0] == "2026-03-03T09:00:00+08:00"
    assert out[1]["status"] == "not_schedule"
    assert out[1]["error"] == "not JSON"
    assert out[2]["timezone"] == "UTC"
    assert out[2]["run_at"] == "2026-03-08T08:30:00+00:00"
    errors = [item.get("error") for item in out[3:7]]
    assert all(errors), errors
    assert all(item["status"] == "not_schedule" and item["next_runs"] == [] for item in out[3:7])
    assert out[7]["status"] == "clarify"
    assert "error" not in out[7]
    assert out[8]["status"] == "not_schedule"
    assert "error" not in out[8]
    assert out[9]["next_runs"][0] == "2026-03-03T09:00:00+08:00"  # naive now: in the zone
    assert out[10] == out[0]


def test_each_line_is_flushed_before_the_next_is_read() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "schedule", "parse", "--json", "--now", NOW],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=environment(),
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        for text in ("每天9点", "every Friday at 5pm"):
            process.stdin.write(json.dumps({"text": text}) + "\n")
            process.stdin.flush()
            answer = json.loads(process.stdout.readline())  # would hang if not flushed
            assert answer["status"] == "scheduled"
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def test_default_zone_from_larkops_timezone_and_the_text_wins() -> None:
    done = larkops(
        "每天9点", "--now", "2026-03-02T00:00:00Z", "--json", LARKOPS_TIMEZONE="Europe/London"
    )
    [data] = objects(done.stdout)
    assert data["timezone"] == "Europe/London"
    assert data["next_runs"][0] == "2026-03-02T09:00:00+00:00"
    done = larkops("每天东京时间9点", "--now", NOW, "--json", LARKOPS_TIMEZONE="Europe/London")
    assert objects(done.stdout)[0]["timezone"] == "Asia/Tokyo"


@pytest.mark.parametrize(
    "args", [("x", "--tz", "Mars/Base"), ("x", "--now", "soon"), ("x", "--bogus")]
)
def test_bad_flags_exit_2(args: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(["schedule", "parse", *args])
    except SystemExit as exit_:  # argparse's own usage errors
        code = int(exit_.code or 0)
    assert code == 2
    assert capsys.readouterr().err


def test_human_form_in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_PROVIDER", "rules")
    assert main(["schedule", "parse", "每月最后一天晚上11点生成月报", "--now", NOW]) == 0
    out = capsys.readouterr().out
    assert "scheduled (rules) · Asia/Shanghai" in out
    assert "每月最后一天 23:00" in out
    assert "生成月报" in out
    assert "2026-03-31T23:00:00+08:00" in out
    assert main(["schedule", "parse", "remind me to deploy", "--now", NOW]) == 0
    assert 'When should "deploy" run?' in capsys.readouterr().out


def test_importtime_shows_no_lark_database_or_sdk() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot.cli", "schedule", "parse", "每天9点"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment(),
        timeout=60,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    for heavy in ("lark_oapi", "sqlalchemy.ext.asyncio", "openai", "anthropic", "bot.app"):
        assert heavy not in imported, heavy
    assert "workflows.schedule.parser" in imported


async def test_the_model_fallback_end_to_end() -> None:
    spec = {
        "form": "calendar",
        "timezone": "Asia/Shanghai",
        "times": ["10:00"],
        "days": {"type": "monthly", "days": [1, 15]},
    }
    good = json.dumps({"status": "scheduled", "task": "烧香", "spec": spec})
    async with fake_llm() as fake:
        fake.script(FakeTurn(text=good), FakeTurn(text="I am not sure"))
        env = environment(
            LLM_PROVIDER="openai",
            LLM_MODEL="gpt-test",
            OPENAI_API_KEY="sk-test-cli",
            OPENAI_BASE_URL=f"{fake.base_url}/v1",
        )
        lines = [
            {"text": "每逢初一十五上午十点提醒我烧香"},
            {"text": "每天9点检查"},  # the rules read it: no model call
            {"text": "每逢初一十五上午十点提醒我烧香"},  # the model answers nonsense
        ]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "schedule",
            "parse",
            "--json",
            "--now",
            NOW,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        stdin = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
        assert process.returncode == 0, stderr.decode()
        out = objects(stdout.decode())
        assert len(fake.requests) == 2
        assert fake.requests[0].api_key == "sk-test-cli"
    assert out[0]["source"] == "llm"
    assert out[0]["status"] == "scheduled"
    assert out[0]["cron"] == "0 10 1,15 * *"
    assert out[0]["next_runs"][0] == "2026-03-15T10:00:00+08:00"
    assert out[1]["source"] == "rules"
    assert out[2]["source"] == "rules"
    assert out[2]["status"] == "clarify"


def test_workdays_follow_the_configured_calendar(tmp_path: Path) -> None:
    """工作日 is China's calendar by default (no cron says it); `schedules.workdays: mon-fri` in
    the configuration makes it Monday to Friday again."""
    before_national_day = "2026-09-30T10:00:00+08:00"
    done = larkops("每个工作日早上9点检查", "--now", before_national_day, "--json")
    [data] = objects(done.stdout)
    assert data["cron"] is None
    assert data["next_runs"][0] == "2026-10-08T09:00:00+08:00"
    config = tmp_path / "larkops.yaml"
    config.write_text("schedules: {workdays: mon-fri}\n", encoding="utf-8")
    done = larkops(
        "每个工作日早上9点检查", "--now", before_national_day, "--json", LARKOPS_CONFIG=str(config)
    )
    [data] = objects(done.stdout)
    assert data["cron"] == "0 9 * * 1-5"
    assert data["next_runs"][0] == "2026-10-01T09:00:00+08:00"
