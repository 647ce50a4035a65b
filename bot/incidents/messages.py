"""An alert bot's message in a group, read as alerts.

A card arrives in `im.message.receive_v1` only as Lark's degraded render of it (a JSON 2.0 card
as nothing but "请升级至最新版本客户端，以查看内容"), so the real card is fetched
(`LarkApi.message_card`, `user_card_content`); when that fails the degraded render is read.
Both go through the one card reader (`workflows.intake.card`). A message nothing could be read
from still becomes one alert (titled with its first meaningful line, its text kept) and is
counted in `larkops_alert_parse_fallback_total{source}`, `source` being the sender's open_id
(only configured alert senders get here), so a team sees which forwarder needs a template. A
CI/CD notice the same bot posts (a build, a pipeline, a release), a report (日报) or chat
(测试一下, a question to the group) is no alert: it opens nothing and is logged as
`alert.not_an_alert`.
"""

from __future__ import annotations

from datetime import tzinfo

from prometheus_client import Counter

from bot.lark.api import LarkApi, LarkApiError
from bot.lark.events import MessageEvent
from bot.logs import get_logger
from workflows.intake import AlertParseError, ParsedAlert, fallback_alert, parse_chat_message

log = get_logger(__name__)
PARSE_FALLBACK = Counter(
    "larkops_alert_parse_fallback_total",
    "Alert bots' messages no template could read (opened as an incident of their first line)",
    ["source"],
)


async def read_alert_message(
    api: LarkApi, event: MessageEvent, *, untitled: str, zone: tzinfo
) -> list[ParsedAlert]:
    """The alerts of `event`; `untitled` titles the alert of a message without any text; times
    printed without an offset are read in `zone` (the configured time zone)."""
    card = event.card
    if event.message_type == "interactive":
        try:
            card = await api.message_card(event.message_id)
        except LarkApiError as exc:
            log.info("alert.card_fetch_failed", message_id=event.message_id, error=str(exc))
    try:
        text = event.whole_text or event.text
        alerts = parse_chat_message(event.message_type, text, card, zone=zone)
    except AlertParseError:
        alerts = [fallback_alert(event.message_type, "", untitled)]
    if not alerts:  # a CI/CD notice, a report or chat: no incident, and the log says so
        log.info("alert.not_an_alert", message_id=event.message_id, reason="notice_or_chat")
    unread = sum(not alert.understood for alert in alerts)
    if unread:
        PARSE_FALLBACK.labels(event.sender_open_id or "unknown").inc(unread)
        log.info("alert.unreadable", sender=event.sender_open_id, message_id=event.message_id)
    return alerts
