"""Messages alert bots post that are no alert: CI/CD build, pipeline and release notices.

The same group bot often posts Jenkins builds, GitLab pipelines, GitHub Actions runs and release
notices beside the alerts. Such a notice reports on a piece of work, not on a system's health, and
opens no incident. It is recognised by its fields, not its wording: at least two keys of a build
report (构建编号, 分支, 提交, 触发人, Pipeline, Branch, Commit, Workflow, Run…) and nothing an alert
has (an alert name, a level, a host or instance, a state such as firing or 已恢复, a state tag
such as 【告警】). `Jenkins 服务不可用` with `主机: ci-01` is an alert; `构建状态: FAILURE` with
`分支: main` and `提交: 1a2b3c4` is a notice.
"""

from __future__ import annotations

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
