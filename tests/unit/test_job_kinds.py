"""What a sentence's task becomes (`bot.scheduling.kinds.job_for`): the advisor report over the
period the words name, a reminder that @-mentions the asker, checks, a runbook, a plugin — or
nothing (None: the bot asks instead of echoing the sentence as a reminder)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.scheduling.kinds import Abilities, job_for
from workflows.schedule.parser import parse

ABILITIES = Abilities(
    {
        "host_disk": "diagnostic",
        "host_memory": "diagnostic",
        "host_load": "diagnostic",
        "http_check": "diagnostic",
        "pg_connections": "diagnostic",
        "command": "remediation",
    },
    {"demo-down": [{"plugin": "http_check", "params": {"url": "http://127.0.0.1:1/healthz"}}]},
)
REPORT_7 = {"type": "hygiene_report", "days": 7}
ME = {"type": "reminder", "mention": ["ou_asker"]}


def _job(sentence: str, *, period: int | None = 7, model: bool = False) -> Any:
    result = parse(sentence, timezone="Asia/Shanghai")
    assert result.status in ("scheduled", "clarify"), result
    abilities = Abilities(ABILITIES.plugins, ABILITIES.runbooks, model)
    return job_for(
        result.task or sentence, sentence, abilities, asker="ou_asker", period_days=period
    )


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("every Friday at 5pm post the weekly report", REPORT_7),
        ("每周五下午5点发周报", REPORT_7),
        ("每周五下午5点发送周报告", REPORT_7),
        ("每周一早上10点发上周的告警报告", REPORT_7),
        ("every monday at 9am send the report of the week", REPORT_7),
        ("每周五17:00推送周报", REPORT_7),
        ("周五下午五点把本周告警报告发到群里", REPORT_7),
        ("每周五下午5点发送本周的告警报告", REPORT_7),
        ("每周五下午五点，发个周报到群里", REPORT_7),
        ("每周一上午10点发送上周告警汇总", REPORT_7),
        ("send the weekly digest every friday at 5pm", REPORT_7),
        ("post a weekly summary every Friday at 17:00", REPORT_7),
        ("every monday 9am weekly report please", REPORT_7),
        ("每周五下午5点提醒我写周报", ME),  # a reminder to write it, not the report
        ("每天早上9点发日报", {"type": "hygiene_report", "days": 1}),
        ("every day at 6pm post the daily report", {"type": "hygiene_report", "days": 1}),
        ("每月1号早上9点发月报", {"type": "hygiene_report", "days": 30}),
        (
            "every month on the 1st at 9am post the monthly report",
            {"type": "hygiene_report", "days": 30},
        ),
        ("明天下午3点提醒我发版", ME),
        ("remind me to deploy tomorrow at 3pm", ME),
        ("提醒我开会 明天下午3点", ME),
        ("每天下午3点开会", ME),  # a person's own activity: a reminder of it
        ("每周五下午5点写周报", ME),  # writing it is a person's chore, not the bot's report
        ("每天凌晨3点提醒值班同学看备份", {"type": "reminder", "mention": []}),
        (
            "每天早上9点检查磁盘",
            {"type": "checks", "steps": [{"plugin": "host_disk", "params": {}}]},
        ),
        (
            "每小时检查 pg_connections",
            {"type": "checks", "steps": [{"plugin": "pg_connections", "params": {}}]},
        ),
        (
            "每天9点运行 demo-down",
            {
                "type": "checks",
                "runbook": "demo-down",
                "steps": [
                    {"plugin": "http_check", "params": {"url": "http://127.0.0.1:1/healthz"}}
                ],
            },
        ),
        (
            "每天凌晨2点 /run command template=x",
            {"type": "fix", "plugin": "command", "params": {"template": "x"}},
        ),
        ("每天凌晨3点清理7天前的日志", None),
        ("明天下午3点发版", None),
        ("every day at 3am back up the database", None),
    ],
)
def test_a_task_becomes_the_job_it_names(sentence: str, expected: Any) -> None:
    assert _job(sentence) == expected


def test_a_report_without_a_period_word_covers_the_jobs_own_period() -> None:
    assert _job("每天早上9点发告警报告", period=1) == {"type": "hygiene_report", "days": 1}
    assert _job("每月1号早上9点发告警报告", period=30) == {"type": "hygiene_report", "days": 30}


def test_with_a_model_an_unmapped_task_is_an_investigation() -> None:
    assert _job("每天凌晨3点清理7天前的日志", model=True) == {"type": "agent"}
