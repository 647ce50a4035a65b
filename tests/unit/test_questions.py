"""What an @bot sentence is: a question for the chat agent, or a request for a job."""

from __future__ import annotations

import pytest

from bot.commands.free_text import is_question

QUESTIONS = [
    "最近有什么任务失败了？",
    "why is checkout paging so much this week?",
    "明天有什么任务",
    "有哪些进行中的事件",
    "为什么 checkout 一直告警",
    "现在系统健康吗",
    "show me the open incidents",
    "how many alerts fired today",
    "帮我看看事件 #3 是怎么回事",
    "磁盘满了吗？",
]
JOBS = [
    "每个工作日早上9点检查服务器健康并发到群里",
    "every Friday at 5pm check disk usage",
    "明天下午3点提醒我开会",
    "30分钟后检查 https://example.com",
    "清理7天前的日志 每天3点",
    "in 2 hours remind me to deploy",
]


@pytest.mark.parametrize("text", QUESTIONS)
def test_questions(text: str) -> None:
    assert is_question(text)


@pytest.mark.parametrize("text", JOBS)
def test_jobs(text: str) -> None:
    assert not is_question(text)
