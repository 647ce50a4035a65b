"""Messages alert bots post that are no alert: CI/CD build, pipeline and release notices,
reports, and chat.

The same group bot often posts Jenkins builds, GitLab pipelines, GitHub Actions runs and release
notices beside the alerts. Such a notice reports on a piece of work, not on a system's health, and
opens no incident. It is recognised by its fields, not its wording: at least two keys of a build
report (构建编号, 分支, 提交, 触发人, Pipeline, Branch, Commit, Workflow, Run…) and nothing an alert
has (an alert name, a level, a host or instance, a state such as firing or 已恢复, a state tag
such as 【告警】). `Jenkins 服务不可用` with `主机: ci-01` is an alert; `构建状态: FAILURE` with
`分支: main` and `提交: 1a2b3c4` is a notice.

Two more kinds of message report on no system's health, whatever fields they carry, as long as
they have no alert name, level or host: a *report*, titled as one (【告警日报】, 巡检报告, Weekly
alert report), and a *work notice* whose title tells of a deploy, release or sync and how it went
(`Deployment succeeded: …`, `发布通知 … 发布成功`, `Application x has been successfully synced`),
and planned work announced ahead (`【变更通知】今晚 23:00 ~ 01:00 订单库扩容`).
And a message in which nothing could be read (no field, no state, no tag) is *chat* when it
reads as people talking: a test (测试一下, "test, please ignore"), a question (是误报吗？), words
to people (大家, 各位, 请问, 我…) or a plan (今晚 22:00 升级…), and tells of no problem (出问题,
挂了, 502, down…). Anything else unreadable still opens an incident (a fallback): "订单服务 502
了" and "线上好像出问题了，大家看一下" may be alerts.
"""

from __future__ import annotations

import re

from workflows.intake.fields import read_pair
from workflows.intake.severity import SEVERITY_KEYS
from workflows.intake.text import plain_line, title_line
from workflows.intake.vocabulary import normalise_key, route
from workflows.intake.wording import state_of, untagged

_BUILD_KEYS = frozenset(
    {
        "构建",
        "构建编号",
        "构建号",
        "构建id",
        "构建状态",
        "构建结果",
        "构建人",
        "构建分支",
        "构建日志",
        "构建任务",
        "构建版本",
        "流水线",
        "流水线名称",
        "分支",
        "代码分支",
        "提交",
        "提交人",
        "提交信息",
        "提交记录",
        "触发人",
        "触发者",
        "发布人",
        "部署人",
        "发布版本",
        "版本号",
        "版本",
        "pipeline",
        "build",
        "buildnumber",
        "buildno",
        "buildid",
        "buildstatus",
        "buildresult",
        "buildurl",
        "branch",
        "commit",
        "commitid",
        "author",
        "committer",
        "workflow",
        "run",
        "runid",
        "actor",
        "triggeredby",
    }
)
# the fields that make a message an alert, whatever else it reports
_ALERT_LABELS = frozenset({"alertname", "severity", "instance", "host", "hostname", "node"})
_MIN_BUILD_KEYS = 2


def is_build_notice(lines: list[str]) -> bool:
    """Whether the message's lines are a CI/CD notice, not an alert (see the module docstring)."""
    plain = [plain_line(line) for line in lines]
    tags = untagged(title_line(plain))[1]
    if tags and state_of(tags):
        return False  # "【告警】Jenkins 服务不可用"
    build: set[str] = set()
    for line in plain:
        pair = read_pair(line)
        if not pair or not pair[1]:
            continue
        key = normalise_key(pair[0])
        kind, name = route(pair[0])
        if key in _BUILD_KEYS:
            build.add(key)
        elif _alert_field(kind, name, key, pair[1]):
            return False
    return len(build) >= _MIN_BUILD_KEYS


def _alert_field(kind: str, name: str, key: str, value: str) -> bool:
    """Whether a field is one only alerts have: a name, a level, a host, a firing/resolved state."""
    if kind == "label" and name in _ALERT_LABELS:
        return True
    return key in SEVERITY_KEYS or (kind == "status" and state_of(value) is not None)


_REPORT_RE = re.compile(
    r"(?i)日报|周报|月报|报表|巡检报告|统计报告|\b(?:daily|weekly|monthly)\s+(?:\w+\s+)?"
    r"(?:report|summary|digest)\b"
)
# a piece of work (deploy, release, sync, merge) and how it went, in a title
_WORK_RE = re.compile(
    r"(?i)\b(?:deploy(?:ment|ed)?|release[ds]?|rollout|rolled\s+out|synced|sync|merged?)\b|"
    r"发布|部署|上线|回滚|同步"
)
_OUTCOME_RE = re.compile(
    r"(?i)\b(?:succeeded|successful(?:ly)?|success|failed|failure|completed?|finished|done)\b|"
    r"成功|失败|完成|结果"
)
# people talking: a test, a question, words to or from people, a plan
_CHATTER_RE = re.compile(
    r"(?i)^(?:测试|test(?:ing)?\b|ping\b|hello\b|hi\b)|please\s+ignore|请忽略|忽略即可|"
    r"[?？]\s*$|[吗呢么嘛]\s*[?？!！。~]?\s*$|"
    r"大家|各位|请问|麻烦|谢谢|辛苦|我们|(?<![自本])我(?!方)|你们?|知悉|交接|值班表|排班|"
    r"今晚|明天|明早|后天|下周|计划|预计"
)
# ...unless they tell of a problem: "线上好像出问题了，大家看一下" is someone raising an alert
_PROBLEM_RE = re.compile(
    r"(?i)出问题|出故障|挂了|宕机|故障|不可用|打不开|报错|超时|\b5\d\d\b|"
    r"\b(?:down|outage|broken|error|failing|timeout)\b"
)
# planned work announced ahead: "【变更通知】今晚 23:00 ~ 01:00 订单库扩容"
_PLANNED_RE = re.compile(r"(?i)变更|维护|割接|演练|扩容|升级|\bmaintenance\b|\bscheduled\b")
_AHEAD_RE = re.compile(
    r"(?i)今晚|今天|明天|明早|后天|下周|本周|计划|预计|将于|期间|\bwill\b|\bplanned\b|window"
)
_CHATTER_LINES = 3
_CHATTER_CHARS = 200


def not_an_alert(lines: list[str]) -> str:
    """Why the message is no alert whatever it says ("build_notice", "report",
    "work_notice", "planned_work"), or "" when it may be one (see the module docstring)."""
    if is_build_notice(lines):
        return "build_notice"
    plain = [plain_line(line) for line in lines]
    title = title_line(plain)
    tagged = untagged(title)[1]
    if _has_alert_field(plain):
        return ""
    if _REPORT_RE.search(title):  # "【告警日报】…": a report on alerts is no alert
        return "report"
    if tagged and state_of(tagged):
        return ""
    if _WORK_RE.search(title) and (_OUTCOME_RE.search(title) or _outcome_field(plain)):
        return "work_notice"
    if _PLANNED_RE.search(tagged or title) and _AHEAD_RE.search(" ".join(plain[:3])):
        return "planned_work"
    return ""


def is_chatter(lines: list[str]) -> bool:
    """Whether a message nothing could be read from is people talking, not an alert."""
    plain = [line for line in (plain_line(line) for line in lines) if line]
    if not plain or len(plain) > _CHATTER_LINES or sum(map(len, plain)) > _CHATTER_CHARS:
        return False
    if any(_PROBLEM_RE.search(line) for line in plain):
        return False
    return any(_CHATTER_RE.search(line) for line in plain)


def _has_alert_field(plain: list[str]) -> bool:
    for line in plain:
        pair = read_pair(line)
        if pair and pair[1]:
            kind, name = route(pair[0])
            if _alert_field(kind, name, normalise_key(pair[0]), pair[1]):
                return True
    return False


def _outcome_field(plain: list[str]) -> bool:
    """A field that tells how a piece of work went: "发布结果: 成功", "Status: succeeded"."""
    for line in plain:
        pair = read_pair(line)
        if pair and _WORK_RE.search(pair[0]) and _OUTCOME_RE.search(pair[1]):
            return True
    return False
