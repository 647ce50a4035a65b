"""What a scheduled job does: the one place that maps the task part of a sentence to a job kind.

`job_for(task, sentence, abilities)` returns the job's `action` (stored with the schedule, run by
`bot.scheduling.jobs.JobRunner`), or None when the bot cannot do the task (the chat then gets a
question listing what it can do, and no job is made). In this order:

1. `/run <plugin> key=value …` → `{"type": "plugin"}` (a remediation becomes `"fix"`: every fire
   asks a person);
2. a URL → an HTTP check (`{"type": "checks", "steps": [http_check]}`);
3. a report (周报, 周报告, 日报, 月报, 告警报告, 报表, 汇总, weekly report, report of the week,
   daily digest…) → the advisor's alert-hygiene report `{"type": "hygiene_report", "days": N}`:
   N is 1 for a day's (日报, daily, 今日), 30 for a month's (月报, monthly), 7 for a week's (周报,
   weekly) and, when the words name no period, the job's own period (`period_days`); a person's
   chore about a report (写周报, "write the weekly report") is a reminder, not a report;
4. a runbook named in the task → the runbook's diagnostic steps that need no alert fields
   (`{"type": "checks", "runbook": name, "steps": …}`);
5. a diagnostic plugin named in the task (`pg_connections`) or health / disk / memory / load words
   → those checks;
6. a reminder word (提醒, 叫我, 通知我, 记得, 别忘了, remind, ping me, don't forget…) →
   `{"type": "reminder", "mention": [asker]}`: 提醒我 / remind me (or no one named) @-mentions
   the person who asked when it fires; 提醒大家 / remind the team mentions nobody;
7. with a model, anything else → `{"type": "agent"}` (a read-only investigation);
8. a task that asks the bot to do something (清理, 备份, 重启, 部署, 发, clean, backup, restart,
   deploy, send…) that nothing above maps → None (asked, never turned into a reminder that just
   echoes the sentence);
9. anything else — a person's own activity (开会, 交周报, stand-up) → a reminder of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.operations import Toolkit
from bot.pairs import PairsError, parse_pairs

URL = re.compile(r"https?://[^\s，。,;；'\"<>]+")
HEALTH = ("健康", "巡检", "health", "status", "服务器状态")
CHECKS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("磁盘", "硬盘", "disk"), "host_disk"),
    (("内存", "memory"), "host_memory"),
    (("负载", "cpu", "load"), "host_load"),
)
REPORT = re.compile(
    r"周报|日报|月报|报告|报表|汇总|总结|report|digest|summary|recap", re.IGNORECASE
)
DAY = re.compile(r"日报|每日|今日|今天|当天|一天|24\s*小时|daily|day'?s|today|24\s*h", re.I)
WEEK = re.compile(r"周报|每周|本周|一周|上周|7\s*天|weekly|week'?s|\bweek\b|7\s*d", re.I)
MONTH = re.compile(r"月报|每月|本月|一个月|上月|30\s*天|monthly|month'?s|\bmonth\b|30\s*d", re.I)
CHORE = re.compile(r"写|填|交|提交|整理|准备|\b(?:write|fill|submit|prepare|hand in)\b", re.I)
REMIND = re.compile(
    r"提醒|叫我|叫一下|通知我|记得|别忘|不要忘|"
    r"\bremind|\bping me\b|\bnudge me\b|\bnotify me\b|don'?t forget|\breminder\b",
    re.IGNORECASE,
)
AUDIENCE = re.compile(
    r"提醒(?!我)(?:一下)?(?:大家|各位|同事|团队|全员|值班|他|她|客户|老板|领导|同学|所有人)|"
    r"\bremind\s+(?!me\b)(?:everyone|everybody|the\s+team|all|us|them|on-?call)\b",
    re.IGNORECASE,
)
DO = re.compile(
    r"检查|清理|清除|重启|备份|部署|发布|发版|上线|扩容|缩容|巡检|删除|同步|更新|升级|执行|运行|跑|迁移|"
    r"回滚|导出|统计|发送|发到|推送|采集|扫描|压缩|归档|轮转|查询|监控|测试|^发|"
    r"\b(?:check|clean|clear|restart|reboot|back ?up|deploy|release|scale|delete|sync|update|"
    r"upgrade|run|execute|migrate|roll ?back|export|send|post|push|scan|archive|rotate|purge|"
    r"query|monitor|test|probe)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Abilities:
    """What the bot can do: its plugins (name → `diagnostic` | `remediation`), the runbooks'
    alert-free diagnostic steps (name → steps), and whether a model is configured."""

    plugins: Mapping[str, str] = field(default_factory=dict)
    runbooks: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    has_model: bool = False

    def diagnostics(self) -> list[str]:
        return sorted(name for name, kind in self.plugins.items() if kind == "diagnostic")


def job_for(
    task: str,
    sentence: str,
    abilities: Abilities,
    *,
    asker: str = "",
    period_days: int | None = None,
) -> dict[str, Any] | None:
    """The job's action for `task` (the sentence without its time), or None when the bot cannot
    do it. `sentence` is the whole text (提醒我 is trimmed from the task but decides the kind);
    `period_days` the job's own period, for a report whose words name none."""
    lowered = task.lower()
    command = re.search(r"/run\s+([a-z][a-z0-9_]*)\s*(.*)$", task)
    if command and command.group(1) in abilities.plugins:
        try:
            params = parse_pairs(command.group(2))
        except PairsError:
            params = {}
        kind = "fix" if abilities.plugins[command.group(1)] == "remediation" else "plugin"
        return {"type": kind, "plugin": command.group(1), "params": params}
    url = URL.search(task)
    if url and abilities.plugins.get("http_check") == "diagnostic":
        return {"type": "checks", "steps": [{"plugin": "http_check", "params": {"url": url[0]}}]}
    reminder = REMIND.search(sentence) is not None
    if REPORT.search(task) and not reminder and not CHORE.search(task):
        return {"type": "hygiene_report", "days": report_days(task, period_days)}
    for name, book in abilities.runbooks.items():
        if book and re.search(rf"(?<![\w-]){re.escape(name.lower())}(?![\w-])", lowered):
            return {"type": "checks", "runbook": name, "steps": [dict(step) for step in book]}
    checks = _checks(lowered, abilities)
    if checks and not reminder:
        return {"type": "checks", "steps": [{"plugin": name, "params": {}} for name in checks]}
    if reminder:
        mention = [] if AUDIENCE.search(sentence) or not asker else [asker]
        return {"type": "reminder", "mention": mention}
    if abilities.has_model:
        return {"type": "agent"}  # a read-only investigation by the model
    if DO.search(task):
        return None
    return {"type": "reminder", "mention": [asker] if asker else []}


def report_days(task: str, period_days: int | None) -> int:
    """The report's window in days: named by its words, else the job's period (7 at most 30)."""
    if MONTH.search(task):
        return 30
    if WEEK.search(task):
        return 7
    if DAY.search(task):
        return 1
    if period_days is None:
        return 7
    return 1 if period_days <= 1 else 7 if period_days <= 7 else 30


def _checks(lowered: str, abilities: Abilities) -> list[str]:
    named = [
        name
        for name in abilities.diagnostics()
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", lowered)
    ]
    if named:
        return named
    if any(word in lowered for word in HEALTH):
        wanted = ["host_disk", "host_memory", "host_load"]
    else:
        wanted = [plugin for words, plugin in CHECKS if any(w in lowered for w in words)]
    return [name for name in wanted if abilities.plugins.get(name) == "diagnostic"]


def abilities_of(toolkit: Toolkit, *, has_model: bool = False) -> Abilities:
    """The abilities of a running bot: its enabled plugins, and each configured runbook's
    diagnostic steps whose parameters need no alert field (a job has no alert)."""
    plugins = {spec.name: spec.category for spec in toolkit.registry.specs()}
    runbooks: dict[str, list[dict[str, Any]]] = {}
    for book in toolkit.book.runbooks:
        steps = [
            {"plugin": step.plugin, "params": dict(step.params)}
            for step in book.diagnose
            if plugins.get(step.plugin) == "diagnostic" and "{" not in json.dumps(step.params)
        ]
        if steps and not book.name.startswith("default:"):
            runbooks[book.name] = steps
    return Abilities(plugins, runbooks, has_model)
