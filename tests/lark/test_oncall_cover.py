"""/oncall override as a team says it, through the emulator: the person by a real @mention
(the emulator's client turns `@钱七` into one) or by 我来, the end as a length or a time of day
in Chinese, the schedule by name anywhere in the sentence; what it cannot read gets a Chinese
answer and changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api.test_oncall_day import ZONE, team
from tests.lark.test_oncall_day import day
from tests.lark.testbot import TestBot

COVER = "SELECT user_id, extract(epoch FROM ends_at - created_at) FROM oncall_overrides"


async def test_overrides_said_in_chinese_sentences(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(emulator=team(), settings=day(), incidents=True)
    await bot.send("/oncall override @钱七 两个半小时", user="ou_dave")
    done = await bot.expect_reply(contains="值班，至")
    text = json.loads(done.content)["text"]
    assert '已安排 <at user_id="ou_erin"></at> 在 primary 值班' in text
    [(who, seconds)] = await bot.rows(COVER)
    assert who == "ou_erin"
    assert abs(float(seconds) - 9000) < 60

    await bot.send("/oncall 我来替班3个小时 primary", user="ou_alice")
    await bot.expect_reply(contains="值班，至")
    await bot.send("/oncall 让@赵六 替我值班到明天早上9点", user="ou_erin")
    await bot.expect_reply(contains="值班，至")
    rows = await bot.rows("SELECT user_id, ends_at FROM oncall_overrides ORDER BY id")
    assert [r[0] for r in rows] == ["ou_erin", "ou_alice", "ou_dave"]
    ends = rows[2][1].astimezone(ZONE)
    tomorrow = datetime.now(UTC).astimezone(ZONE).date() + timedelta(days=1)
    assert (ends.date(), ends.hour, ends.minute) == (tomorrow, 9, 0)
    await bot.send("/oncall", user="ou_alice")
    await bot.expect_reply(contains="（临时替班）")

    await bot.send("/oncall @钱七 替我值班到下周", user="ou_dave")
    unread = await bot.expect_reply(contains="看不懂替班到什么时候")
    assert "明天早上9点" in unread.text  # how to say it instead
    await bot.send("/oncall 替我值班2小时", user="ou_dave")  # who is not said
    await bot.expect_reply(contains="用法")
    assert len(await bot.rows(COVER)) == 3
