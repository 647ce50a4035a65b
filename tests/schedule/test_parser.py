"""The parser beyond the corpus: the contract object, the hard cases of the issue one by one,
zones, task extraction, what is not a schedule, the model fallback (against the scripted fake
OpenAI server) and what the parser must not import."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text as sql

from storage.coordination import MemoryCoordination
from storage.database import Database
from tests.support.fake_llm import FakeLLM, FakeRaw, FakeTurn, fake_llm
from workflows.llm.guard import LlmConfig, ModelGuard
from workflows.llm.openai_chat import OpenAIChat
from workflows.llm.prompt import Scrubber
from workflows.schedule import Calendar, Every, Once, from_json, parse
from workflows.schedule.compiler import next_runs
from workflows.schedule.fallback import accept, model_from_env, parse_guarded, parse_with_model

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)  # a Monday, 10:00
KEYS = {"status", "task", "timezone", "cron", "run_at", "next_runs", "question", "source"}
ROOT = Path(__file__).resolve().parents[2]


def contract(text: str, now: datetime = NOW, tz: str = "Asia/Shanghai") -> dict[str, Any]:
    return parse(text, now=now, timezone=tz).contract(now)


def instants(values: list[str]) -> list[datetime]:
    return [datetime.fromisoformat(value).astimezone(UTC) for value in values]


# ---- the contract object -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["每个工作日早上9点检查", "明天下午3点开会", "提醒我开会", "最近有什么任务失败了？"]
)
def test_contract_has_every_key_with_the_right_types(text: str) -> None:
    data = contract(text)
    assert set(data) == KEYS
    assert data["status"] in ("scheduled", "clarify", "not_schedule")
    assert data["source"] == "rules"
    assert isinstance(data["timezone"], str)
    assert isinstance(data["next_runs"], list)
    for key in ("task", "cron", "run_at", "question"):
        assert data[key] is None or isinstance(data[key], str)
    assert json.loads(json.dumps(data)) == data
    if data["status"] == "scheduled":
        assert len(data["next_runs"]) == (1 if data["run_at"] else 5)
        assert all(datetime.fromisoformat(run).tzinfo for run in data["next_runs"])
        assert data["question"] is None
    else:
        assert data["next_runs"] == []
        assert data["cron"] is None
        assert data["run_at"] is None
        assert (data["question"] is not None) == (data["status"] == "clarify")


def test_one_shots_have_run_at_and_it_is_the_only_run() -> None:
    data = contract("明天下午3点开会")
    assert data["cron"] is None
    assert data["run_at"] == "2026-03-03T15:00:00+08:00"
    assert data["next_runs"] == [data["run_at"]]


def test_next_runs_are_in_the_schedules_zone() -> None:
    data = contract("every day at 9am New York time send the report")
    assert data["timezone"] == "America/New_York"
    assert data["next_runs"][0] == "2026-03-02T09:00:00-05:00"
    assert data["next_runs"][-1].endswith("-05:00")


def test_cron_only_when_standard_cron_says_it_exactly() -> None:
    assert contract("周一到周五9点")["cron"] == "0 9 * * 1-5"
    assert contract("每个工作日9点")["cron"] is None  # China's calendar: no cron says it
    assert contract("every Friday at 5pm")["cron"] == "0 17 * * 5"
    assert contract("每月1号和15号上午10点")["cron"] == "0 10 1,15 * *"
    for text in ("每月最后一天晚上11点", "每月第一个周一上午10点", "every 90 minutes", "明天9点"):
        assert contract(text)["cron"] is None, text


# ---- the hard cases of the issue ---------------------------------------------------------------

CLARIFY = [
    "提醒我开会",
    "remind me to deploy",
    "every morning",
    "每天早上",
    "on 4/5 at 12",
    "9点检查磁盘",  # 10:00 now: today's 9:00 has passed
    "2月30日上午10点开会",
    "at 12 call mom",
    "every day at 3 back up",  # English 3 without am/pm
    "今天上午9点开会",
    "3点开会",  # the small hours or the afternoon?
    "明天下午3点至8点",  # once at 15:00, or every hour?
    "monday the 13th at 9am",  # the coming 13th (2026-03-13) is a Friday
    "3月1日上午10点",  # passed yesterday: next year's, or every year?
    "每月31号结账",
    "晚上1点上线",
    "at 5 CST",
    "每天北京时间9点和纽约时间10点",  # two zones
]
NOT_SCHEDULES = [
    "最近有什么任务失败了？",
    "why is checkout paging so much?",
    "/help",
    "/incidents open",
    "",
    "   ",
    "重启3号机器",
    "昨天3点的告警是什么？",
    "what happened at 3pm yesterday?",
    "有两点建议",
]


@pytest.mark.parametrize("text", CLARIFY)
def test_vague_or_ambiguous_text_gets_a_question_not_a_guess(text: str) -> None:
    data = contract(text)
    assert data["status"] == "clarify", data
    assert data["question"]
    assert data["next_runs"] == []


@pytest.mark.parametrize("text", NOT_SCHEDULES)
def test_not_schedules(text: str) -> None:
    data = contract(text)
    assert data["status"] == "not_schedule", data
    assert data["question"] is None


def test_questions_are_in_the_language_of_the_text() -> None:
    zh = contract("提醒我开会")["question"]
    en = contract("remind me to deploy")["question"]
    assert zh is not None
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh)
    assert en is not None
    assert en.isascii()
    assert "deploy" in en
    assert "开会" in zh


def test_a_time_not_yet_passed_today_is_today() -> None:
    early = datetime(2026, 3, 2, 7, 0, tzinfo=SHANGHAI)
    assert contract("9点检查磁盘", early)["run_at"] == "2026-03-02T09:00:00+08:00"
    assert contract("9点检查磁盘", NOW)["status"] == "clarify"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("今晚12点重启", "2026-03-03T00:00:00+08:00"),
        ("零点清理缓存", "2026-03-03T00:00:00+08:00"),
        ("明天零点发版", "2026-03-03T00:00:00+08:00"),
        ("at midnight rotate logs", "2026-03-03T00:00:00+08:00"),
        ("tonight at 12 restart", "2026-03-03T00:00:00+08:00"),
        ("中午12点吃饭", "2026-03-02T12:00:00+08:00"),
        ("12点吃饭", "2026-03-02T12:00:00+08:00"),
        ("今天下午两点十五开会", "2026-03-02T14:15:00+08:00"),
        ("傍晚6点下班", "2026-03-02T18:00:00+08:00"),
        ("十二点一刻吃饭", "2026-03-02T12:15:00+08:00"),
        ("下午三点三刻喝茶", "2026-03-02T15:45:00+08:00"),
        ("明天九点半开会", "2026-03-03T09:30:00+08:00"),
    ],
)
def test_colloquial_times(text: str, expected: str) -> None:
    data = contract(text)
    assert data["status"] == "scheduled", data
    assert instants(data["next_runs"])[:1] == instants([expected])


def test_every_day_with_a_bare_small_hour_is_the_small_hour() -> None:
    assert contract("每天3点备份")["next_runs"][0] == "2026-03-03T03:00:00+08:00"
    assert contract("每天下午3点备份")["next_runs"][0] == "2026-03-02T15:00:00+08:00"


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("每天北京时间9点汇报", "Asia/Shanghai"),
        ("every day at 9am UTC report", "UTC"),
        ("every day at 9am New York time", "America/New_York"),
        ("每天东京时间10点", "Asia/Tokyo"),
        ("every day at 8am London time", "Europe/London"),
        ("every day at 9am PST", "America/Los_Angeles"),
        ("每天UTC+8 9点汇总", "Etc/GMT-8"),
        ("every day at 9am Europe/Berlin", "Europe/Berlin"),
    ],
)
def test_a_zone_in_the_text_overrides_the_default(text: str, zone: str) -> None:
    data = contract(text, tz="America/Chicago")
    assert data["status"] == "scheduled"
    assert data["timezone"] == zone


def test_new_york_time_in_march_and_november() -> None:
    before = datetime(2026, 3, 7, 12, tzinfo=UTC)
    runs = contract("every day at 9am New York time", before, "UTC")["next_runs"]
    assert runs[:3] == [
        "2026-03-07T09:00:00-05:00",
        "2026-03-08T09:00:00-04:00",
        "2026-03-09T09:00:00-04:00",
    ]
    autumn = datetime(2026, 10, 31, 12, tzinfo=UTC)
    runs = contract("every day at 9am New York time", autumn, "UTC")["next_runs"]
    assert runs[:3] == [
        "2026-10-31T09:00:00-04:00",
        "2026-11-01T09:00:00-05:00",
        "2026-11-02T09:00:00-05:00",
    ]


def test_a_one_shot_inside_the_spring_forward_gap_is_asked_about() -> None:
    now = datetime(2026, 3, 7, 12, tzinfo=ZoneInfo("America/New_York"))
    data = contract("tomorrow at 2:30am run the migration", now, "America/New_York")
    assert data["status"] == "clarify"
    assert "2:30" in (data["question"] or "") or "02:30" in (data["question"] or "")


def test_relative_times_count_elapsed_time_across_dst() -> None:
    now = datetime(2026, 3, 8, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    data = contract("in 2 hours check the batch", now, "America/New_York")
    assert data["run_at"] == "2026-03-08T04:30:00-04:00"


# ---- the task ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "task"),
    [
        ("每天凌晨3点清理7天前的日志", "清理7天前的日志"),
        ("每周五下午5点发送本周的告警报告", "发送本周的告警报告"),
        ("每个工作日早上9点检查服务器健康并发到群里", "检查服务器健康并发到群里"),
        ("提醒我明天下午3点给客户打电话", "给客户打电话"),
        ("请每天9点帮我检查磁盘", "检查磁盘"),
        ("每天9点检查3号机器", "检查3号机器"),
        ("每周一上午10点提醒大家开周会", "提醒大家开周会"),
        ("remind me to rotate the logs every day at 3am", "rotate the logs"),
        ("every Friday at 5pm send the weekly alert report", "send the weekly alert report"),
        ("please check the backups every night at 11pm", "check the backups"),
        ("every day at 3am delete logs older than 7 days", "delete logs older than 7 days"),
        ("every day at 9am restart web-3", "restart web-3"),
        ("每周一上午10点（纽约时间）开会", "开会"),
        ("每天9点", None),
    ],
)
def test_the_task_keeps_its_own_numbers_and_loses_the_filler(text: str, task: str | None) -> None:
    assert contract(text)["task"] == task


# ---- the spec in the result --------------------------------------------------------------------


def test_the_spec_keeps_its_zone_and_round_trips() -> None:
    result = parse("every weekday at 9am New York time", now=NOW, timezone="Asia/Shanghai")
    assert isinstance(result.spec, Calendar)
    assert result.spec.timezone == "America/New_York"
    assert result.spec.kind == "cron"
    assert from_json(json.loads(json.dumps(result.spec.to_json()))) == result.spec
    once = parse("明天下午3点", now=NOW, timezone="Asia/Shanghai").spec
    assert isinstance(once, Once)
    assert once.kind == "once"
    step = parse("every 45 minutes", now=NOW, timezone="Asia/Shanghai").spec
    assert isinstance(step, Every)
    assert step.kind == "interval"


def test_a_naive_now_is_in_the_default_zone() -> None:
    naive = datetime(2026, 3, 2, 10, 0)
    result = parse("30分钟后提醒我", now=naive, timezone="Asia/Shanghai")
    assert result.contract(naive.replace(tzinfo=SHANGHAI))["run_at"] == "2026-03-02T10:30:00+08:00"


def test_an_unknown_default_zone_is_an_error() -> None:
    with pytest.raises(ValueError, match="zone"):
        parse("每天9点", now=NOW, timezone="Mars/Olympus")


# ---- the model fallback ------------------------------------------------------------------------

UNREADABLE = "每逢初一十五上午十点提醒我烧香"
LLM_SPEC = {
    "form": "calendar",
    "timezone": "Asia/Shanghai",
    "times": ["10:00"],
    "days": {"type": "monthly", "days": [1, 15], "last": False},
    "months": [],
}


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[FakeLLM]:
    async with fake_llm() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeLLM) -> FakeLLM:
    server.clear()
    return server


def openai(fake: FakeLLM) -> OpenAIChat:
    return OpenAIChat("sk-test-schedule", "gpt-test", base_url=f"{fake.base_url}/v1")


def answer(spec: object, task: str = "烧香") -> FakeTurn:
    return FakeTurn(text=json.dumps({"status": "scheduled", "task": task, "spec": spec}))


async def test_the_rules_text_goes_to_the_model_only_when_unreadable(fake: FakeLLM) -> None:
    model = openai(fake)
    try:
        for text in ("每天9点检查", "every morning", "提醒我开会", "on 4/5 at 12", "/help"):
            result = await parse_with_model(text, now=NOW, timezone="Asia/Shanghai", model=model)
            assert result.source == "rules"
        assert fake.requests == []
    finally:
        await model.aclose()


async def test_a_model_answer_that_compiles_is_taken(fake: FakeLLM) -> None:
    rules = parse(UNREADABLE, now=NOW, timezone="Asia/Shanghai")
    assert rules.status == "clarify"
    assert rules.may_ask_model
    fake.script(FakeTurn(text="```json\n" + answer(LLM_SPEC).text + "\n```"))
    model = openai(fake)
    try:
        result = await parse_with_model(UNREADABLE, now=NOW, timezone="Asia/Shanghai", model=model)
    finally:
        await model.aclose()
    assert result.source == "llm"
    assert result.status == "scheduled"
    assert result.task == "烧香"
    data = result.contract(NOW)
    assert data["cron"] == "0 10 1,15 * *"
    assert data["next_runs"][:2] == ["2026-03-15T10:00:00+08:00", "2026-04-01T10:00:00+08:00"]
    sent = fake.requests[0].body["messages"]
    assert UNREADABLE in sent[-1]["content"]


@pytest.mark.parametrize(
    "reply",
    [
        FakeTurn(text="not json at all"),
        FakeTurn(text=json.dumps({"status": "clarify", "question": "哪天？"})),
        FakeTurn(text=json.dumps({"status": "scheduled", "task": "x"})),
        answer({**LLM_SPEC, "days": {"type": "weekly", "weekdays": [1, 3]}}),
        answer({**LLM_SPEC, "timezone": "Mars/Base"}),
        answer({"form": "every", "timezone": "UTC", "minutes": 45}),  # no anchor: cannot compile
        answer({"form": "once", "timezone": "UTC", "at": "2020-01-01T10:00:00+00:00"}),  # past
        answer(
            {
                "form": "calendar",
                "timezone": "UTC",
                "times": ["10:00"],
                "days": {"type": "monthly", "days": [31]},
                "months": [2],
            }
        ),  # never fires
        FakeRaw("garbage", status=500),
    ],
)
async def test_a_model_answer_that_does_not_hold_up_leaves_the_question(
    fake: FakeLLM, reply: object
) -> None:
    fake.script(reply)  # type: ignore[arg-type]
    model = openai(fake)
    try:
        result = await parse_with_model(UNREADABLE, now=NOW, timezone="Asia/Shanghai", model=model)
    finally:
        await model.aclose()
    assert result.source == "rules"
    assert result.status == "clarify"
    assert result.question


def test_accept_fills_in_the_zone_and_keeps_the_rules_task_when_none_is_given() -> None:
    rules = parse(UNREADABLE, now=NOW, timezone="Asia/Shanghai")
    spec = {key: value for key, value in LLM_SPEC.items() if key != "timezone"}
    taken = accept(json.dumps({"status": "scheduled", "spec": spec}), rules, NOW)
    assert taken is not None
    assert taken.timezone == "Asia/Shanghai"
    assert taken.task == rules.task


def test_model_from_env() -> None:
    assert model_from_env({}) is None
    assert model_from_env({"LLM_PROVIDER": "rules", "LLM_MODEL": "x"}) is None
    assert model_from_env({"LLM_PROVIDER": "openai"}) is None
    assert model_from_env({"LLM_PROVIDER": "openai", "LLM_MODEL": "gpt"}) is None  # no key
    model = model_from_env(
        {"LLM_PROVIDER": "openai", "LLM_MODEL": "gpt", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    )
    assert model is not None
    assert model.provider == "openai"


# ---- imports -----------------------------------------------------------------------------------


def test_parsing_imports_no_sdk_no_database_no_lark() -> None:
    code = (
        "import sys\n"
        "from datetime import datetime\n"
        "from workflows.schedule import parse\n"
        "from bot.schedule_cli import main\n"
        "now = datetime.fromisoformat('2026-03-02T10:00:00+08:00')\n"
        "for text in ['每天9点', 'every 45 minutes', '提醒我开会', 'why?']:\n"
        "    parse(text, now=now, timezone='Asia/Shanghai').contract(now)\n"
        "heavy = ('lark_oapi', 'sqlalchemy', 'openai', 'anthropic', 'langgraph', 'asyncpg',\n"
        "         'psycopg', 'redis', 'httpx')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


async def test_the_bots_fallback_goes_through_the_model_guard(
    fake: FakeLLM, migrated_db: Database
) -> None:
    """Budgets, rate limit, the `llm_turns` record and the configured redaction, as every other
    model call; the answer is taken only when it compiles."""
    guard = ModelGuard(openai(fake), migrated_db, MemoryCoordination(), LlmConfig(retries=1))
    scrub = Scrubber(patterns=[r"1[3-9]\d{9}"])
    text = UNREADABLE + "，电话13812345678"
    fake.script(answer(LLM_SPEC), FakeTurn(text="not json"))
    result = await parse_guarded(text, now=NOW, timezone="Asia/Shanghai", guard=guard, scrub=scrub)
    assert result.source == "llm"
    assert result.contract(NOW)["next_runs"][0] == "2026-03-15T10:00:00+08:00"
    assert "13812345678" not in str(fake.requests[0].body["messages"])
    refused = await parse_guarded(text, now=NOW, timezone="Asia/Shanghai", guard=guard, scrub=scrub)
    assert refused.source == "rules"
    assert refused.status == "clarify"
    async with migrated_db.engine.connect() as conn:
        purposes = (await conn.execute(sql("SELECT purpose FROM llm_turns"))).all()
    assert [p for (p,) in purposes] == ["schedule", "schedule"]


@pytest.mark.parametrize(
    ("text", "firsts"),
    [
        ("3点开会", ["2026-03-03T03:00:00+08:00", "2026-03-02T15:00:00+08:00"]),
        ("明天下午3点至8点", ["2026-03-03T15:00:00+08:00", "2026-03-02T15:00:00+08:00"]),
        ("3月1日上午10点发通知", ["2027-03-01T10:00:00+08:00", "2027-03-01T10:00:00+08:00"]),
        ("every Wednesday 2-4pm code review", ["2026-03-04T14:00:00+08:00"] * 2),
        ("每年1月1日午夜发祝福", ["2027-01-01T00:00:00+08:00"]),  # its start (00:00), or say
    ],
)
def test_a_question_lists_the_schedules_it_may_mean(text: str, firsts: list[str]) -> None:
    """Each option compiles; the card offers them as buttons (the first run of each shown)."""
    result = parse(text, now=NOW, timezone="Asia/Shanghai")
    assert result.status == "clarify"
    assert result.question
    runs = [next_runs(option, NOW, 1)[0].isoformat() for option in result.options]
    assert runs == firsts


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("明天上午15点重启nginx", "15 点不在早上"),
        ("tomorrow morning at 15:00 restart nginx", "15:00 is not in the morning"),
        ("每个法定节假日上午10点检查值班表", "只在节假日"),
        ("on public holidays at 10am check the rota", "only on holidays"),
        ("every 2nd tuesday at 10am send the report", "the 2nd Tuesday of every month"),
        ("every second tuesday at 10am send the report", "every 2 weeks on Tuesday"),
        ("every day at 09:00 UTC+05:30 check redis", "UTC+05:30"),
        ("每月初上午9点发月报", "哪一天"),
        ("every year on january 1st at midnight send greetings", "00:00 the next day"),
    ],
)
def test_a_question_says_what_it_asks_about(text: str, says: str) -> None:
    """Not the generic "I could not read the time": the question names the doubt."""
    result = parse(text, now=NOW, timezone="Asia/Shanghai")
    assert result.status == "clarify"
    assert says in (result.question or ""), result.question


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("每年2月29号 上午9点 巡检", "只有闰年才有"),
        ("every year on Feb 29 at 9am run the audit", "only in leap years"),
        ("每月29号 上午9点 巡检", "不是每个月都有 29 日"),
    ],
)
def test_a_leap_day_is_asked_about_as_a_leap_day(text: str, words: str) -> None:
    """每年2月29号: the question is about leap years, not about short months."""
    now = datetime(2026, 3, 3, 10, 7, tzinfo=ZoneInfo("Asia/Shanghai"))
    result = parse(text, now=now, timezone="Asia/Shanghai")
    assert result.status == "clarify"
    assert result.question is not None
    assert words in result.question
