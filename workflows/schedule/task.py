"""The task: the text with the time expression (and any zone) removed, and its filler trimmed.

Rules:

- Only the spans of the chosen time expression go (see `lexer`); numbers and time words that
  are not part of it stay: "每天凌晨3点清理7天前的日志" → "清理7天前的日志",
  "每周五下午5点发送本周的告警报告" → "发送本周的告警报告".
- Filler is trimmed at both ends, repeatedly: leading 请/麻烦/帮我/提醒我/记得/并/然后…,
  "please", "remind me to", "can you", "to", "and", "then"…; trailing 一下/吧/哦/提醒,
  "please", "for me", "thanks" (a 提醒 stays when the task sends it: "发送会议提醒"); and
  punctuation and spaces at either end.
- 在/于 before the time and 的时候 after it frame the time and go with it: "请在明天下午3点的时候
  帮我重启nginx" → "重启nginx" (a 在 after a task word stays: "明天9点在群里发日报").
- Words inside the task are never touched ("检查服务器健康并发到群里" keeps its 并).
- Nothing left → None (the time was clear; the caller asks what to do).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_EDGE = r"[\s,，、.。;；:：!！?？~～\-—–]"
_ZH_LEAD = (
    r"请你?|麻烦你?|能不能|能否|可以|帮我们|帮我|帮忙|给我|提醒我们|提醒我|提醒一下|叫我|通知我"
    r"|提醒(?!大家|各位|同事|团队|全员|他|她|客户|老板|领导)"
    r"|记得|别忘了|别忘记|不要忘记|定时|定期|然后|并且|并|再|就|都|的时候|时候"
    r"|(?:从)?(?:即日|现在)(?:起|开始)|从|的(?![士确话])"
)
_ZH_TAIL = r"一下|一次|吧|哦|啊|呀|哈|呢|了|的提醒|提醒我|提醒|好吗|可以吗|行吗|吗|谢谢"
_EN_LEAD = (
    r"(?:can|could|would|will)\s+you|please|pls|remind\s+(?:me|us)(?:\s+to)?|ping\s+me(?:\s+to)?"
    r"|notify\s+me(?:\s+to)?|nudge\s+me(?:\s+to)?|set\s+(?:up\s+)?a\s+reminder(?:\s+to)?"
    r"|schedule(?:\s+a)?|don'?t\s+forget\s+to|i\s+need\s+to|we\s+need\s+to|need\s+to|to|and|for"
    r"|then|also|at|on|in|starting|from"
)
_EN_TAIL = r"please|pls|for\s+me|thanks|thank\s+you|and|at|on|by|in|then"
_SENDS = re.compile(r"(?:发送?|推送|群发|下发|转发|发布)")
"""A task that sends something: a 提醒 it ends with is what it sends (发送会议提醒), kept."""
LEAD = re.compile(rf"^(?:{_EDGE}+|(?:{_ZH_LEAD})|(?:{_EN_LEAD})\b)", re.IGNORECASE)
TAIL = re.compile(rf"(?:{_EDGE}+|(?:{_ZH_TAIL})|\b(?:{_EN_TAIL}))$", re.IGNORECASE)


def _join(left: str, right: str) -> str:
    if not left or not right:
        return left + right
    if left[-1].isascii() and left[-1].isalnum() and right[0].isascii() and right[0].isalnum():
        return f"{left} {right}"
    return left + right


def remove(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """`text` without `spans`, the pieces joined (a space between two ASCII words)."""
    parts: list[str] = []
    cursor = 0
    for start, end in sorted(spans):
        parts.append(text[cursor : max(start, cursor)])
        cursor = max(cursor, end)
    parts.append(text[cursor:])
    joined = parts[0]
    for part in parts[1:]:
        joined = _join(joined, part)
    joined = re.sub(r"[(（\[【]\s*[)）\]】]", "", joined)
    return re.sub(r"[ \t]{2,}", " ", joined)


def trim(text: str) -> str | None:
    """`text` without filler at either end; None when nothing is left."""
    previous = None
    while previous != text:
        previous = text
        text = text.strip()
        text = LEAD.sub("", text, count=1)
        tail = TAIL.search(text)
        if tail and not (tail.group(0).endswith("提醒") and _SENDS.match(text)):
            text = text[: tail.start()]
    text = text.strip()
    return text or None


_AT = re.compile(r"(?:在|于)\s*$")
_WHEN = re.compile(r"^\s*(?:的时候|时候|之时)")


def _widen(text: str, span: tuple[int, int]) -> tuple[int, int]:
    """`span` with the words that only frame the time: 在/于 before it when nothing but filler
    precedes (请在明天3点…), 的时候 right after it (3点的时候重启)."""
    start, end = span
    before = _AT.search(text, 0, start)
    if before is not None and trim(text[: before.start()]) is None:
        start = before.start()
    after = _WHEN.match(text[end:])
    return start, end + (after.end() if after else 0)


def task_of(text: str, spans: Sequence[tuple[int, int]]) -> str | None:
    """The task `text` asks for, once `spans` (the time expression, with the words that frame
    it: see `_widen`) are removed."""
    return trim(remove(text, [_widen(text, span) for span in spans]))
