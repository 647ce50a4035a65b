"""What alert text says about its state: firing or recovered, in words and in emoji.

Recovered: 恢复, 已恢复, 恢复正常, 已解决, 告警解除, 已消除, 服务已恢复, resolved, recovered, [OK],
✅ 🟢 💚 ✔.
Firing: firing, alerting, problem, triggered, 告警中, 报警中, 触发, 故障, 异常, 🔥 🚨 ❗ 🔴 💔.
Negations never count as a recovery: 未恢复, 没有恢复, 恢复失败, 恢复中, "not resolved".

Usage::

    reads_resolved("磁盘使用率告警已恢复")   # True
    reads_resolved("磁盘使用率 未恢复")       # False
    reads_firing("S2 Triggered")            # True
"""

from __future__ import annotations

import re

from workflows.intake.alert import Status
from workflows.intake.severity import severity_of

RESOLVED_MARKS = "✅✔☑🟢💚🆗"
FIRING_MARKS = "🔥🚨❗❌🔴💔🆘"

_NEGATED_RE = re.compile(
    r"(?i)未恢复|没有恢复|尚未恢复|未能恢复|无法恢复|不能恢复|未解决|待恢复|"
    r"恢复失败|恢复中|恢复超时|自动恢复|未解除|未消除|"
    r"not\s+(?:yet\s+)?(?:been\s+)?(?:resolved|recovered)|unresolved|unrecovered"
)
_FIRING_RE = re.compile(
    r"(?i)\b(?:firing|alerting|problem|triggered)\b|告警中|报警中|触发|故障|异常|报警|告警"
)
_STRONG_FIRING_RE = re.compile(r"(?i)\b(?:firing|alerting|problem|triggered)\b|告警中|报警中")
_RECOVERED_RE = re.compile(
    r"(?i)已恢复|恢复正常|已解决|恢复|告警解除|报警解除|告警消除|报警消除|已解除|已消除|"
    r"\bresolved\b|\brecovered\b|\[ok\]"
)
# a line that is only a state, the heading of the alerts below it
# a count after the state: "FIRING: 2", "Firing 2/5", "告警中 (3)", "已恢复：1 条"
# (blanks bounded: runs of optional blanks side by side would backtrack over a long blank run)
_COUNT = (
    r"(?: {0,3}[:：]? {0,3}[(（]? {0,3}\d{1,4}(?: {0,3}/ {0,3}\d{1,4})?"
    r" {0,3}[条个]? {0,3}[)）]?)?"
)
_HEADING_RE = re.compile(
    rf"(?i)^\[?(?:alerts?\s+)?(firing|resolved|recovered|triggered|alerting|problem|ok)"
    rf"{_COUNT}\]?$|^【?(告警|报警|告警中|报警中|恢复|已恢复|"
    rf"告警恢复|报警恢复|恢复通知|告警触发|恢复信息|故障恢复)】?{_COUNT}$"
)


def reads_resolved(text: str) -> bool:
    """Whether free text announces a recovery (negations such as 未恢复 excluded)."""
    if any(mark in text for mark in RESOLVED_MARKS):
        return True
    return _RECOVERED_RE.search(_NEGATED_RE.sub(" ", text)) is not None


def reads_firing(text: str, *, strong: bool = False) -> bool:
    """Whether free text announces a problem (firing, 告警中, 🔥…). `strong`: only words that
    state it (firing, triggered, 告警中, 报警中, 🔥), not words that merely name an alert
    (告警, 异常, 故障: "CPU使用率告警" is a rule's name)."""
    if any(mark in text for mark in FIRING_MARKS):
        return True
    found = (_STRONG_FIRING_RE if strong else _FIRING_RE).search(text)
    return found is not None


def marked(text: str) -> Status | None:
    """The state an emoji marker beside a line gives (✅ resolved, 🔥 firing), if any."""
    if any(mark in text for mark in RESOLVED_MARKS):
        return "resolved"
    if any(mark in text for mark in FIRING_MARKS):
        return "firing"
    return None


def heading_status(raw: str, plain: str) -> Status | None:
    """The state a line announces when it is nothing but a state (`🔥 FIRING 🔥`, `RESOLVED`,
    `Alerts Firing:`, `【恢复】`, `恢复通知`); None for any other line. `告警通知` and `告警信息`
    are not states: templates title recoveries with them too."""
    match = _HEADING_RE.match(plain.rstrip(":：").strip())
    if not match:
        return None
    word = (match.group(1) or match.group(2) or "").lower()
    if word in ("resolved", "recovered", "ok") or "恢复" in word:
        return "resolved"
    if any(mark in raw for mark in RESOLVED_MARKS):
        return "resolved"
    return "firing"


# a whole declared value or tag that is a state only on its own: "[Up]", "状态: 正常", "[ALERT]"
_TAG_STATES: dict[str, Status] = {
    **dict.fromkeys(
        (
            "up",
            "ok",
            "normal",
            "closed",
            "inactive",
            "recovery",
            "正常",
            "已恢复",
            "恢复",
            "已关闭",
            "已解决",
        ),
        "resolved",
    ),
    # an acknowledged alert still fires (PagerDuty's [Acknowledged], Nagios' ACKNOWLEDGEMENT)
    **dict.fromkeys(
        (
            "down",
            "unreachable",
            "alert",
            "alarm",
            "active",
            "pending",
            "nodata",
            "ack",
            "acknowledged",
            "acknowledgement",
            "异常",
            "故障",
            "告警",
            "报警",
            "警报",
        ),
        "firing",
    ),
}
# the name of the system before a title's state tag: "UptimeKuma Alert: [Down] 订单API"
_SENDER_RE = re.compile(r"^[^:：\[\]【】\n]{1,40}[:：]\s*(?=[\[【])")
# "Resolved: X", and Zabbix's recovery subject "Resolved in 1h 5m 0s: X"
_STATE_PREFIX_RE = re.compile(
    r"^([A-Za-z\u4e00-\u9fff ]{1,16}?)(?:\s+in\s+(?:\d{1,4}[wdhms]\s*){1,5})?[:：]\s*(?=\S)"
)
_LEADING_TAG_RE = re.compile(r"^\s*(?:【([^【】]{0,40})】|\[([^\[\]]{0,40})\])\s*[-–—:：|]*\s*")
# a state or level after the title: "HTTP on web-07 is CRITICAL!" (Icinga), "DiskFull - `critical`"
_SUFFIX_RE = re.compile(
    r"(?:\s+(?P<verb>is|are)\s+(?:now\s+)?|\s+[-–—|]\s+)"
    r"(?P<word>[A-Za-z][A-Za-z0-9]{1,11})\s*[!！.。]*$"
)
_SUFFIX_SPAN = 40  # the suffix is looked for in a title's last characters only
# the states a monitor prints after a title, besides the levels ("is DOWN", "is OK")
_SUFFIX_STATES = frozenset({"ok", "up", "down", "unreachable", "unknown"})
# dash-written states after a title: "HighCPU on web-1 — RESOLVED"
_DASH_STATES = frozenset({"resolved", "recovered", "firing", "triggered", "problem", "alert"})
# words that say the alert a generic tag ("Alert:", "ALARM") announces is over
_NOW_RESOLVED_RE = re.compile(
    r"(?i)\b(?:is|are|has|have)\s+(?:been\s+|now\s+)?(?:resolved|recovered)\b|已恢复|恢复正常"
)
# a title that only announces a notice ("Nagios 告警通知", "【睿象云】恢复通知"), not what happened
_NOTICE_RE = re.compile(r"(?i)(?:通知|notification|notice)\s*[!！.。]?$")


def untagged(title: str) -> tuple[str, str]:
    """A title without the state/level tags before it, and those tags' words:
    `【 P1 报警中】- 主机CPU过高` → ("主机CPU过高", "P1 报警中"). A tag that is neither a state
    nor a level (`[订单服务] 接口超时`) stays. A sender's name before the tags goes with them
    (`UptimeKuma Alert: [Down] 订单API` → ("订单API", "Down")), and so does a state written as
    a key (`Resolved: KafkaLag`, `ALERT: disk full on db-3`, `告警恢复：磁盘快满了`)."""
    sender = _SENDER_RE.match(title)
    rest, words = (title[sender.end() :] if sender else title), []
    prefix = _STATE_PREFIX_RE.match(rest)
    # "RECOVERED: disk usage on db-3", and a level written the same way: "CRITICAL: disk …"
    if prefix and (_pure_state(prefix.group(1)) or level_word(prefix.group(1).strip())):
        words.append(prefix.group(1).strip())
        rest = rest[prefix.end() :]
    for _ in range(3):
        match = _LEADING_TAG_RE.match(rest)
        if not match:
            break
        tag = match.group(1) or match.group(2) or ""
        if not (state_of(tag) or any(severity_of(word) for word in tag.split())):
            break
        words.append(tag.strip())
        rest = rest[match.end() :]
    rest, suffix = state_suffix(rest)
    if suffix:
        words.append(suffix)
    if not words:  # "Kibana告警: [生产] 错误日志激增": no state tag, the title stays whole
        return title, ""
    return (rest.strip() or title), " ".join(words)


def state_suffix(title: str) -> tuple[str, str]:
    """A title without the state or level a monitor wrote after it, and that word:
    `HTTP on web-07 is CRITICAL!` → ("HTTP on web-07", "CRITICAL"), `DiskFull - critical` →
    ("DiskFull", "critical"); any other title as it is, and ""."""
    match = _SUFFIX_RE.search(title, max(len(title) - _SUFFIX_SPAN, 0))
    head = title[: match.start()] if match else ""
    if not match or not head.strip():
        return title, ""
    word = match["word"]
    # "is CRITICAL!" is a monitor's level, "Disk usage is high" a sentence
    level = severity_of(word) is not None and (word.isupper() or not match["verb"])
    dashed = not match["verb"] and word.lower() in _DASH_STATES
    if word.lower() not in _SUFFIX_STATES and not level and not dashed:
        return title, ""
    return head.rstrip(), word


def is_notice(title: str) -> bool:
    """Whether a title only announces a notice (`Nagios 告警通知`, `Jenkins 构建通知`)."""
    return _NOTICE_RE.search(title) is not None


def level_word(word: str) -> bool:
    """Whether a tag's word names a level rather than a state (`P1`, `严重`, not `OK`)."""
    return severity_of(word) is not None and _pure_state(word) is None


def caption_state(caption: str) -> Status | None:
    """The state a caption's last word states ("Apache SkyWalking Alarm:" firing, "… Alarm
    Recovered:" resolved, "Prometheus 告警：" firing), or None."""
    words = caption.rstrip(":：").split()
    return _pure_state(words[-1]) if words else None


def _pure_state(word: str) -> Status | None:
    """The state a word means when it is nothing but a state (`Resolved`, `ALERT`, `告警恢复`)."""
    return _TAG_STATES.get(word.strip().lower()) or heading_status(word, word)


def state_of(text: str) -> Status | None:
    """The state a short declared value or tag means (`S2 Recovered`, `已恢复`, `firing`, a
    monitor's `Up`/`Down`, `ALERT`, `正常`), or None."""
    word = _TAG_STATES.get(text.strip().lower())
    if word:
        return word
    if reads_resolved(text):
        return "resolved"
    if reads_firing(text):
        return "firing"
    return None


def stated(line: str) -> Status | None:
    """The state a title or header line states: its emoji (✅ 🔥), its state tags (【告警】,
    [恢复]), its recovery words, or words that state a problem (firing, 告警中 — not 告警 or
    异常, which name alerts: "CPU使用率告警"). None when it states none."""
    found = marked(line) or state_of(untagged(line)[1])
    if found == "firing" and _NOW_RESOLVED_RE.search(line):  # "Alert: HighLatency is resolved"
        return "resolved"
    if found:
        return found
    if reads_resolved(line):
        return "resolved"
    return "firing" if reads_firing(line, strong=True) else None
