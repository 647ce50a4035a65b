"""How many processes `larkops run --workers` starts, and why fewer than asked."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from bot.config import Settings
from bot.workers import Plan, plan, usable_cores


def settings(*, lark: bool = True, redis: bool = True) -> Settings:
    return Settings(
        lark_app_id="cli_x" if lark else "",
        lark_app_secret=SecretStr("secret" if lark else ""),
        redis_url=SecretStr("redis://127.0.0.1:6379/0") if redis else None,
    )


def test_processes_follow_the_cores_up_to_four() -> None:
    assert plan(settings(), None, cores=2) == Plan(2)
    assert plan(settings(), None, cores=16) == Plan(4)
    assert plan(settings(), 6, cores=2) == Plan(6)  # asked for by hand: as asked
    assert plan(settings(), 1, cores=8) == Plan(1)


def test_one_process_without_redis_or_in_the_sandbox() -> None:
    assert plan(settings(redis=False), None, cores=4) == Plan(1, "no_redis")
    assert plan(settings(lark=False), 3, cores=4) == Plan(1, "sandbox")


def test_a_container_cpu_limit_caps_the_cores(tmp_path: Path) -> None:
    limit = tmp_path / "cpu.max"
    limit.write_text("150000 100000\n", encoding="utf-8")
    assert usable_cores(limit) == min(2, usable_cores(tmp_path / "absent"))
    limit.write_text("max 100000\n", encoding="utf-8")
    assert usable_cores(limit) == usable_cores(tmp_path / "absent")
