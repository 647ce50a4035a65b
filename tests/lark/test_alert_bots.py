"""Alert bots posting into a group, as Lark really delivers their messages.

Another bot's card reaches us only as a degraded render (a JSON 2.0 card as nothing but the
upgrade notice); the bot fetches the card itself and falls back to the render when it cannot.
A message no template reads still opens an incident, and is counted; chat, reports and CI notices
the same bot posts open none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import httpx
from prometheus_client import REGISTRY
from starlette.applications import Starlette

from bot.incidents.webhooks import WebhookSink
from bot.sandbox.degraded import UPGRADE_NOTICE, degraded_card
from tests.lark.testbot import TestBot, wait_until

SENDER = "ou_carol"  # a configured alert sender (an app in the chat)

WATCHALERT_V2 = {
    "schema": "2.0",
    "config": {"width_mode": "fill"},
    "header": {
        "template": "red",
        "title": {"tag": "plain_text", "content": "【报警中】- WatchAlert 业务系统 🔥"},
    },
    "body": {
        "elements": [
            {
                "tag": "markdown",
                "content": "**🤖 报警类型:** 订单库连接数过高\n**📌 报警等级:** P1\n"
                "**🖥 报警主机:** 10.9.0.3:3306\n**🕘 开始时间:** 2024-06-04 09:00:00\n"
                "**📝 报警事件:** 连接数 4980/5000",
            },
            {"tag": "hr"},
            {"tag": "markdown", "content": "🧑‍💻 WatchAlert - 运维团队"},
        ]
    },
}
PROMETHEUSALERT_V1 = {
    "config": {"wide_screen_mode": True},
    "header": {"template": "red", "title": {"tag": "plain_text", "content": "PrometheusAlert"}},
    "elements": [
        {
            "tag": "div",
            "text": {
                "tag": "lark_md",
                "content": "**[Prometheus告警信息](http://prom:9090/graph)**\n*[HostDown](http://am:9093)*\n"
                "告警级别：critical\n故障主机IP：10.9.1.1:9100\n**节点离线**"
                "**[Prometheus告警信息](http://prom:9090/graph)**\n*[HostDown](http://am:9093)*\n"
                "告警级别：critical\n故障主机IP：10.9.1.2:9100\n**节点离线**",
            },
        },
        {"tag": "hr"},
        {"tag": "note", "elements": [{"tag": "lark_md", "content": "PrometheusAlert"}]},
    ],
}


async def _alert_bot(make_testbot: Any) -> TestBot:
    bot: TestBot = await make_testbot(settings={"alert_senders": [SENDER]}, incidents=True)
    return bot


async def _incidents(bot: TestBot, count: int) -> list[Any]:
    sql = "SELECT title, labels, summary, chat_id, source FROM incidents ORDER BY id"
    return list(
        await wait_until(
            lambda: _at_least(bot, sql, count), timeout=15, what=f"{count} incident(s)"
        )
    )


async def _at_least(bot: TestBot, sql: str, count: int) -> list[Any] | None:
    rows = await bot.rows(sql)
    return rows if len(rows) >= count else None


def _fallbacks() -> float:
    value = REGISTRY.get_sample_value("larkops_alert_parse_fallback_total", {"source": SENDER})
    return value or 0.0


def test_a_card_json_2_arrives_as_the_upgrade_notice_only() -> None:
    assert degraded_card(WATCHALERT_V2) == {
        "title": "",
        "elements": [[{"tag": "text", "text": UPGRADE_NOTICE}]],
    }
    rendered = degraded_card(PROMETHEUSALERT_V1)
    assert rendered["title"] == "PrometheusAlert"
    assert [{"tag": "a", "text": "HostDown", "href": "http://am:9093"}] in [
        [run for run in paragraph if run["tag"] == "a"] for paragraph in rendered["elements"]
    ]


async def test_a_card_json_2_is_read_from_the_card_fetched(make_testbot: Any) -> None:
    bot = await _alert_bot(make_testbot)
    before = _fallbacks()
    await bot.emulator.send_card(bot.chat, SENDER, WATCHALERT_V2)
    [incident] = await _incidents(bot, 1)
    assert incident.title == "订单库连接数过高"
    assert incident.labels["instance"] == "10.9.0.3:3306"
    assert _fallbacks() == before


async def test_the_delivered_render_is_read_when_the_card_cannot_be_fetched(
    make_testbot: Any,
) -> None:
    bot = await _alert_bot(make_testbot)
    bot.emulator.fail_next("/open-apis/im/v1/messages/", status=400, code=230002)
    await bot.emulator.send_card(bot.chat, SENDER, PROMETHEUSALERT_V1)
    incidents = await _incidents(bot, 2)
    assert [row.labels["instance"] for row in incidents] == ["10.9.1.1:9100", "10.9.1.2:9100"]
    assert {row.title for row in incidents} == {"HostDown"}


async def test_an_unreadable_message_still_opens_an_incident_and_is_counted(
    make_testbot: Any,
) -> None:
    bot = await _alert_bot(make_testbot)
    before = _fallbacks()
    text = "------\n线上好像出问题了，请值班同学看一下 $(reboot)\n（来自自建脚本）"
    await bot.send(text, user=SENDER, sender_type="app", mention_bot=False)
    [incident] = await _incidents(bot, 1)
    assert incident.title == "线上好像出问题了，请值班同学看一下 $(reboot)"
    assert "（来自自建脚本）" in incident.summary  # the raw text kept, inert
    assert _fallbacks() == before + 1


async def test_a_card_json_2_that_cannot_be_fetched_opens_an_untitled_incident(
    make_testbot: Any,
) -> None:
    bot = await _alert_bot(make_testbot)
    before = _fallbacks()
    bot.emulator.fail_next("/open-apis/im/v1/messages/", status=400, code=230002)
    await bot.emulator.send_card(bot.chat, SENDER, WATCHALERT_V2)
    [incident] = await _incidents(bot, 1)
    assert incident.title == "无法读取的告警消息（interactive）"
    assert _fallbacks() == before + 1


async def test_a_bot_without_the_apps_checkpointer_opens_incidents_all_the_same(
    make_testbot: Any,
) -> None:
    """A bot built as tests and tools build it (no Postgres checkpointer: runs checkpointed in
    memory) has the app's desks: an alert bot's message opens an incident and posts its card."""
    bot: TestBot = await make_testbot(settings={"alert_senders": [SENDER]})
    text = "------\n订单库连接数过高，请值班同学看一下\n（来自自建脚本）"
    await bot.send(text, user=SENDER, sender_type="app", mention_bot=False)
    [incident] = await _incidents(bot, 1)
    assert incident.title == "订单库连接数过高，请值班同学看一下"
    card = await bot.expect_reply(incident.title, timeout=15)
    assert card.card is not None


NAGIOS = (
    "***** Nagios *****\n\nNotification Type: {kind}\n\nService: HTTP\nHost: web-31\n"
    "Address: 10.0.3.31\nState: {state}\n\nAdditional Info:\n\n{output}"
)
JENKINS = (
    "Jenkins 构建通知\n项目名称: order-api\n构建编号: #128\n构建状态: FAILURE\n分支: main\n"
    "触发人: 张三\n构建日志: http://jenkins.infra/job/order-api/128/console"
)


async def test_a_monitors_recovery_closes_its_incident_and_a_build_notice_opens_none(
    make_testbot: Any,
) -> None:
    """A Nagios problem opens one incident titled by its check, the recovery (another state,
    another output) resolves that incident; a CI build notice from the same bot opens none."""
    bot = await _alert_bot(make_testbot)
    problem = NAGIOS.format(kind="PROBLEM", state="CRITICAL", output="HTTP CRITICAL - timeout")
    await bot.send(problem, user=SENDER, sender_type="app", mention_bot=False)
    [incident] = await _incidents(bot, 1)
    assert (incident.title, incident.labels["host"]) == ("HTTP", "web-31")
    recovery = NAGIOS.format(kind="RECOVERY", state="OK", output="HTTP OK: HTTP/1.1 200 OK")
    await bot.send(recovery, user=SENDER, sender_type="app", mention_bot=False)
    await wait_until(
        lambda: _at_least(bot, "SELECT id FROM incidents WHERE status = 'resolved'", 1),
        timeout=15,
        what="the recovery resolving the incident",
    )
    notice = await bot.send(JENKINS, user=SENDER, sender_type="app", mention_bot=False)
    handled = "SELECT id FROM inbound_events WHERE message_id = '{}' AND status = 'done'"
    await wait_until(
        lambda: _at_least(bot, handled.format(notice.message_id), 1),
        timeout=15,
        what="the build notice handled",
    )
    assert await bot.rows("SELECT title, status FROM incidents") == [("HTTP", "resolved")]


HOOK_SECRET = "hook-secret-for-tests"


def _signed(body: dict[str, Any], secret: str = HOOK_SECRET) -> dict[str, Any]:
    """`body` signed as a Feishu custom bot with a secret signs it (Feishu's own algorithm)."""
    stamp = str(int(time.time()))
    key = f"{stamp}\n{secret}".encode()
    sign = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    return {"timestamp": stamp, "sign": sign, **body}


def _card(title: str, state: str) -> dict[str, Any]:
    markdown = f"**告警名称:** 订单库连接数过高\n**告警实例:** 10.9.0.8:3306\n**告警状态:** {state}"
    return {
        "msg_type": "interactive",
        "card": {
            "header": {"title": {"tag": "plain_text", "content": title}},
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": markdown}}],
        },
    }


async def test_a_forwarders_feishu_hook_body_posted_to_the_webhook_opens_and_resolves(
    make_testbot: Any,
) -> None:
    """A forwarder configured with a Feishu group hook (its URL pointed at larkops, its secret
    the webhook token) posts as it would to Feishu, signed and without a header: its firing
    card opens an incident, its recovery resolves it, a CI notice is ignored, and a body
    signed with another secret is refused."""
    bot = await _alert_bot(make_testbot)
    assert bot.runtime.gateway is not None
    sink = WebhookSink(bot.runtime.settings, HOOK_SECRET, bot.db, bot.runtime.gateway.wake)
    transport = httpx.ASGITransport(app=Starlette(routes=sink.routes()))
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:

        async def post(body: dict[str, Any]) -> httpx.Response:
            return await client.post(f"/webhooks/feishu?chat={bot.chat}", json=body)

        forged = await post(_signed(_card("🔥 告警触发", "firing"), secret="not-the-token"))
        assert forged.status_code == 401
        fired = await post(_signed(_card("🔥 告警触发", "firing")))
        assert (fired.status_code, fired.json()["code"], fired.json()["alerts"]) == (200, 0, 1)
        [incident] = await _incidents(bot, 1)
        assert (incident.title, incident.labels["instance"]) == (
            "订单库连接数过高",
            "10.9.0.8:3306",
        )
        notice = {"msg_type": "text", "content": {"text": JENKINS}}
        ignored = await post(_signed(notice))
        assert (ignored.status_code, ignored.json()["status"]) == (200, "ignored")
        resolved = await post(_signed(_card("✅ 告警恢复", "resolved")))
        assert resolved.json()["status"] == "accepted"
    await wait_until(
        lambda: _at_least(bot, "SELECT id FROM incidents WHERE status = 'resolved'", 1),
        timeout=15,
        what="the recovery resolving the incident",
    )
    assert await bot.rows("SELECT title FROM incidents") == [("订单库连接数过高",)]


BATCH = "🔥 告警中 (2)\n- HighCPU web-1 CPU 95%\n- DiskFull db-1 /data 91%"


async def test_chat_and_reports_open_nothing_a_repeat_dedupes_and_a_listed_recovery_resolves(
    make_testbot: Any,
) -> None:
    """What an alert bot posts beside its alerts (a test message, a question to the group, a
    daily report) opens no incident; a list of two alerts under one state heading opens two,
    the same list posted again opens no more, and a recovery list naming one of them resolves
    that one only."""
    bot = await _alert_bot(make_testbot)
    handled = "SELECT id FROM inbound_events WHERE message_id = '{}' AND status = 'done'"
    for text in (
        "测试一下",
        "@张三 这个告警你看一下是不是误报？",
        "【告警日报】2024-06-03\n告警总数：32\n已恢复：30\n未恢复：2\n最多告警：HighCPU（12 次）",
    ):
        sent = await bot.send(text, user=SENDER, sender_type="app", mention_bot=False)
        await wait_until(
            lambda sent=sent: _at_least(bot, handled.format(sent.message_id), 1),
            timeout=15,
            what=f"{text[:8]!r} handled",
        )
    assert await bot.rows("SELECT id FROM incidents") == []
    await bot.send(BATCH, user=SENDER, sender_type="app", mention_bot=False)
    await _incidents(bot, 2)
    again = await bot.send(BATCH, user=SENDER, sender_type="app", mention_bot=False)
    await wait_until(
        lambda: _at_least(bot, handled.format(again.message_id), 1),
        timeout=15,
        what="the repeated list handled",
    )
    recovery = "✅ 已恢复 (1)\n- DiskFull db-1 /data 70%"
    await bot.send(recovery, user=SENDER, sender_type="app", mention_bot=False)
    resolved = "SELECT title FROM incidents WHERE status = 'resolved'"
    await wait_until(lambda: _at_least(bot, resolved, 1), timeout=15, what="one resolved")
    rows = await bot.rows("SELECT title, status = 'resolved' FROM incidents ORDER BY title")
    assert [tuple(row) for row in rows] == [
        ("DiskFull db-1 /data 91%", True),
        ("HighCPU web-1 CPU 95%", False),  # still open (or being diagnosed)
    ]
