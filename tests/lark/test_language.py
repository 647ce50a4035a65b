"""A Chinese chat reads Chinese: every card (every version of it), every reply and every toast
the bot sends over a day of incidents, commands and clicks carries no English of its own —
only code, names, labels, commands and the values it was given (tests/support/language.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text as sqltext

from bot.lark.events import card_text
from tests.lark.test_incidents import card_with, settings_for
from tests.lark.test_job_memory import closed_port, fire, job
from tests.lark.testbot import TestBot, card_buttons, wait_until
from tests.support.fake_llm import FakeTurn, fake_llm
from tests.support.health import health_service
from tests.support.language import STATUS_WORDS, chat_leaks, english
from workflows.intake import parse_generic

APPROVE, REJECT = "批准", "拒绝"


@pytest.fixture
async def health(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    async with health_service(tmp_path / "healthy-web") as url:
        yield url, tmp_path


def alert(title: str, url: str, status: str = "firing", **annotations: str) -> dict[str, Any]:
    return {
        "title": title,
        "severity": "critical",
        "status": status,
        "labels": {"alertname": title.split()[0], "service": "web", "instance": "web-3:9100"},
        "annotations": {"url": url, "summary": "web is down", **annotations},
    }


def values_of(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from values_of(value)
            if isinstance(value, str):
                yield f"{key}={value}"
    elif isinstance(node, list):
        for item in node:
            yield from values_of(item)


COMMANDS = [
    "/help",
    "/whoami",
    "/incidents",
    "/incidents all",
    "/incident 1",
    "/incident 2",
    "/similar 1",
    '/silence alertname=~"[" 2h',
    "/silence alertname=Maintenance 2h 例行维护",
    "/silences",
    "/plugins",
    "/plugin http_check",
    "/runbooks",
    "/policy",
    "/policy check host_disk",
    "/policy check command template=restart_web service=web",
    "/run host_disk",
    "/report 24h",
    "/jobs",
    "/roles",
    "/resolve 1 已修复",
    "/incident 1",
    "/nosuchcommand",
]


async def test_a_day_in_a_chinese_chat_has_no_english_sentence(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    url, state = health
    bot: TestBot = await make_testbot(settings=settings_for(state), incidents=True)
    assert bot.runtime.desk is not None
    sent: list[dict[str, Any]] = []
    toasts: list[str] = []

    async def fire(payload: dict[str, Any]) -> None:
        sent.append(payload)
        assert bot.runtime.desk is not None
        await bot.runtime.desk.receive(parse_generic(payload), "oc_ops")

    # a web outage: diagnosed, its diagnosis rejected (escalated), a late and a stranger's click
    await fire(alert("WebDown", url))
    card = await bot.expect_reply(contains="WebDown")
    diagnosed = await card_with(bot, card, "http_check", APPROVE)
    approve = card_buttons(diagnosed.card)[APPROVE]
    stranger = await bot.click(diagnosed, APPROVE, user="ou_alice")
    rejected = await bot.click(diagnosed, REJECT, user="ou_bob")
    late = await bot.click(diagnosed, APPROVE, user="ou_carol", value=approve)
    toasts += [json.dumps(c.toast, ensure_ascii=False) for c in (stranger, rejected, late)]
    await wait_until(lambda: _status(bot, 1, "escalated"), timeout=20, what="incident 1 escalated")

    # a disk alert no runbook knows, folded twice, then resolved by its alert
    disk = alert("DiskFull on web-3", url, value="91%")
    await fire(disk)
    await bot.expect_reply(contains="DiskFull")
    await fire({**disk, "annotations": {**disk["annotations"], "value": "97%"}})
    await fire({**disk, "status": "resolved"})
    await wait_until(lambda: _status(bot, 2, "resolved"), timeout=20, what="incident 2 resolved")

    # an alert no runbook knows: the card says what people can do
    await fire({"title": "QueueStuck", "severity": "warning", "labels": {"queue": "mail"}})
    stuck = await bot.expect_reply(contains="QueueStuck")
    await card_with(bot, stuck, "未找到处置方案")

    for command in COMMANDS:
        await bot.send(command, user="ou_bob")
        await bot.expect_reply()

    values = {text for payload in sent for text in values_of(payload)}
    values |= {command for command in COMMANDS} | {url, "ou_alice"}
    values -= STATUS_WORDS  # a payload's "status": "resolved" is no licence to print the code
    leaked = chat_leaks(bot.emulator, "oc_ops", values)
    for toast in toasts:
        found = english(toast, values | {"success", "error", "info", "warning", "type", "content"})
        if found:
            leaked.append((toast, found))
    assert not leaked, json.dumps(leaked, ensure_ascii=False, indent=1)


async def _status(bot: TestBot, incident: int, wanted: str) -> bool:
    rows = await bot.rows(f"SELECT status FROM incidents WHERE id = {incident}")
    return bool(rows) and rows[0][0] == wanted


async def test_scheduled_jobs_failing_read_chinese(make_testbot: Any) -> None:
    """A checks job that fails (its analysis), a model job whose model gave no answer twice,
    and the job commands around them: every card and reply in a Chinese chat, no English of
    the bot's own (the error's and the model's own words are shown as code)."""
    async with fake_llm() as fake:
        settings = {
            "LLM_PROVIDER": "openai",
            "LLM_MODEL": "gpt-test",
            "OPENAI_API_KEY": "sk-test-0123456789",
            "OPENAI_BASE_URL": f"{fake.base_url}/v1",
        }
        bot: TestBot = await make_testbot(settings=settings, incidents=True)
        port = closed_port()
        failing = await job(bot, "检查数据库端口", port)
        shown = await fire(bot, failing, datetime.now(UTC))
        assert "连接被拒绝" in shown  # the analysis, worded
        assert "确认服务在该主机和端口上运行并监听" in shown

        await bot.send("/schedule 每天早上9点 看看 checkout 服务为什么变慢")
        draft = await bot.expect_reply("新的定时任务")
        await bot.click(draft, "确认")
        async with bot.db.engine.begin() as conn:  # no retry (30 s later) of the failed run
            await conn.execute(
                sqltext("UPDATE schedules SET action = action || '{\"retries\": 0}' WHERE id = 2")
            )
        fake.script(FakeTurn(text="not json"), FakeTurn(text="still not json"))
        await bot.send("/job run 2")
        undone = await bot.expect_reply("模型没有给出答复", timeout=20)
        assert "定时任务 #2 失败" in card_text(undone.card)
        assert "原因：`the model" in card_text(undone.card)  # the agent's words, as code
        for command in ("/jobs", f"/job {failing}", "/job 2"):
            await bot.send(command)
            await bot.expect_reply()

    values = {"检查数据库端口", "看看 checkout 服务为什么变慢", "checkout", f"127.0.0.1:{port}"}
    values |= {"/schedule 每天早上9点 看看 checkout 服务为什么变慢", "/job run 2", "/jobs"}
    leaked = chat_leaks(bot.emulator, "oc_ops", values)
    assert not leaked, json.dumps(leaked, ensure_ascii=False, indent=1)
