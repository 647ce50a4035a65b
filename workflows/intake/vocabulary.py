"""The names alert texts give to the facts of an alert, in Chinese and English, and where each goes.

Forwarders write the same fact under many keys: PrometheusAlert says 故障主机IP, Nightingale
监控对象, WatchAlert 报警主机, home-made templates 实例地址 or 告警对象. `route(key)` maps every key
to one of the `Kind`s below and a canonical name (Prometheus style where one exists). Keys are
compared lower-cased, without spaces, and with a trailing "ip"/"IP" kept as written (告警主机IP and
告警主机 are both the instance).

Kinds:

- `label` / `annotation`: the alert's labels and annotations;
- `tags`: a list of `k=v` pairs (Nightingale's 监控指标 `[ident=db-1 cpu=cpu-total]`) read into
  labels;
- `starts` / `ends`: times; `status`: a declared state (firing, 已恢复, S2 Recovered…);
- `url`: a link to the alert's source;
- `noise`: facts that change with every send and say nothing about the alert (发送时间, 持续时长,
  值班人员, a silence link); dropped.
"""

from __future__ import annotations

import re
from typing import Literal

Kind = Literal["label", "annotation", "tags", "starts", "ends", "status", "url", "noise"]

_LABEL_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_SPACES_RE = re.compile(r"\s+")
_QUALIFIER_RE = re.compile(r"\s*[(（][^()（）]{1,24}[)）]$")
_ZONE_QUALIFIER_RE = re.compile(r"^[(（](?:UTC|GMT)(?:[+-]\d{1,2}(?::?\d{2})?)?[)）]$", re.I)
_NUMBER_RE = re.compile(
    r"(?:\s+#?|#|(?<=[\u3400-\u9fff]))\d{1,3}$"
)  # "Alert 1", "告警2": the n-th of a list
_RECOVERY_PREFIX = "恢复"
_KEY_LIMIT = 128


def _table(kind: Kind, name: str, keys: str) -> dict[str, tuple[Kind, str]]:
    return dict.fromkeys(keys.split(), (kind, name))


_CANONICAL: dict[str, tuple[Kind, str]] = {
    **_table(
        "label",
        "alertname",
        "告警名称 报警名称 告警名 报警名 告警类型 报警类型 告警规则 报警规则 规则名称 规则名 "
        "规则标题 告警标题 报警标题 告警项 报警项 监控项 策略名称 告警规则名称 事件名称 "
        "告警 报警 告警策略 策略 策略名 监控项目 规则 problemname eventname triggername trigger "
        "alertrule alarmrule policy policyname monitor monitorname 标题 title "
        "newissue regression newalert newerror 新问题 新异常 "
        "reason eventreason alertname alert_name alert alarmname rule_name rulename ruletitle rule",
    ),
    **_table(
        "label",
        "severity",
        "告警级别 报警级别 级别 告警等级 报警等级 等级 严重程度 严重级别 严重性 优先级 "
        "告警优先级 事件级别 级别状态 告警级别状态 levelstatus severity 严重度 告警严重度 "
        "alertlevel alarmlevel 事件等级",
    ),
    **_table(
        "label",
        "instance",
        "故障主机 故障主机ip 故障目标 故障实例 告警主机 告警主机ip 报警主机 报警主机ip 实例 "
        "实例地址 实例ip 告警实例 报警实例 告警对象 报警对象 监控对象 告警目标 报警目标 "
        "监控目标 目标 目标地址 告警地址 报警地址 故障节点 告警节点 报警节点 "
        "告警ip 报警ip 告警资源 报警资源 资源 对象 告警设备 报警设备 instance target monitortarget "
        "实例名称 实例名 实例id 资源名称 资源id 告警资源名称 监控实例 instancename resource object "
        "involvedobject",
    ),
    **_table(
        "label",
        "host",
        "主机 主机名 主机名称 主机信息 主机ip 主机地址 服务器 服务器ip 机器 设备名称 ip ip地址 "
        "ipaddress server host address hostaddress 地址 ipv4 ipv6",
    ),
    **_table("label", "hostname", "hostname"),
    **_table("label", "node", "节点 节点名称 节点ip node nodename"),
    **_table(
        "label",
        "service",
        "服务 服务名 服务名称 服务信息 所属服务 告警服务 报警服务 故障服务 业务 业务名称 系统 "
        "service servicename",
    ),
    **_table(
        "label",
        "app",
        "应用 应用名 应用名称 应用信息 所属应用 告警应用 报警应用 故障应用 app application",
    ),
    **_table("label", "job", "job"),
    **_table("label", "project", "项目 项目名称 所属项目 平台 平台信息 project"),
    **_table("label", "cluster", "集群 集群名称 告警集群 报警集群 所属集群 alarmcluster cluster"),
    **_table("label", "env", "环境 业务环境 所属环境 环境名称 env environment"),
    **_table("label", "namespace", "命名空间 名称空间 namespace"),
    **_table("label", "pod", "容器组 pod名称 pod"),
    **_table("label", "container", "容器 容器名称 container"),
    **_table("label", "component", "组件 组件名称 component"),
    **_table("label", "team", "团队 责任团队 所属团队 负责团队 team"),
    **_table(
        "tags",
        "tags",
        "监控指标 事件标签 标签列表 告警标签 报警标签 指标标签 标签 tags metrics labels",
    ),
    **_table(
        "annotation",
        "description",
        "告警详情 报警详情 告警描述 报警描述 描述 详情 告警内容 报警内容 内容 故障描述 问题描述 "
        "规则备注 策略备注 告警备注 备注 告警事件 报警事件 告警信息 报警信息 事件描述 详细描述 "
        "告警说明 报警说明 详细信息 "
        "告警原因 报警原因 故障原因 "
        "alarmdescription rulenote description desc details detail",
    ),
    **_table("annotation", "summary", "摘要 告警摘要 报警摘要 告警主题 报警主题 主题 summary"),
    **_table("annotation", "message", "message msg"),
    # a check's own output (Nagios, Icinga): it changes with every state, never names the alert
    **_table(
        "annotation",
        "output",
        "info additionalinfo output serviceoutput hostoutput pluginoutput 信息 输出 检查输出",
    ),
    **_table(
        "annotation",
        "value",
        "当前值 触发值 触发时值 当前数值 监控值 告警值 报警值 triggervalue triggertimevalue value "
        "current_value operationaldata",
    ),
    **_table(
        "annotation",
        "threshold",
        "阈值 告警阈值 触发阈值 阀值 告警阀值 触发阀值 触发条件 threshold",
    ),
    **_table("annotation", "runbook_url", "runbook_url runbook 处理手册 操作手册"),
    **_table("annotation", "silence_url", "silence"),
    **_table("annotation", "dashboard_url", "dashboard 仪表盘 监控仪表盘 监控面板 dashboard_url"),
    **_table("annotation", "panel_url", "panel"),
    **_table("annotation", "source_fingerprint", "报警指纹 告警指纹 fingerprint"),
    **_table(
        "starts",
        "starts_at",
        "开始时间 触发时间 告警时间 报警时间 发生时间 故障时间 首次触发 首次触发时间 "
        "首次告警时间 告警开始时间 报警开始时间 triggertime firsttriggertime starttime startsat "
        "starts_at started srarttime time firedat firetime triggeredat problemstarted when "
        "date/time timestamp periodstart 时间 date firsttimestamp firstseen first_seen "
        "eventtime 事件时间",
    ),
    **_table(
        "ends",
        "ends_at",
        "结束时间 恢复时间 告警恢复时间 报警恢复时间 故障恢复时间 recoverytime endtime endsat "
        "ends_at ended resolvedat recoveredat resolvedtime",
    ),
    **_table(
        "status",
        "status",
        "状态 告警状态 报警状态 事件状态 当前状态 通知类型 status state alertstatus alarmstatus "
        "notificationtype",
    ),
    **_table(
        "url", "generator_url", "source generatorurl generator_url link 链接 告警链接 详情链接"
    ),
    **_table(
        "noise",
        "noise",
        "发送时间 通知时间 推送时间 持续时长 持续时间 距离首次告警 告警持续 值班人员 值班人 "
        "通知人 处理人 负责人 屏蔽 屏蔽1小时 静默 事件详情 查看详情 duration "
        "故障中心 告警次数 报警次数 通知次数 认领报警 认领告警 "
        "sendingtime sendtime timesincefirstalert ping problemduration periodend 通知策略",
    ),
}
# a Nightingale "级别状态" value carries both the level and the state: "S2 Triggered"
LEVEL_STATUS_KEYS = frozenset({"级别状态", "告警级别状态", "levelstatus"})


def normalise_key(key: str) -> str:
    """A key as the table spells it: lower-cased, spaces, a trailing qualifier and a list
    number out ("Time (UTC)" → "time", "告警时间（北京）" → "告警时间", "Alert 2" → "alert")."""
    return _SPACES_RE.sub("", _NUMBER_RE.sub("", _QUALIFIER_RE.sub("", key))).lower()


def route(key: str) -> tuple[Kind, str]:
    """Where a text key goes: its kind and canonical name.

    A recovery message's key names the same fact as its alert's (恢复主机 is 告警主机, 恢复级别
    告警级别), except its times. Unknown keys that look like label names (ASCII identifiers) are
    labels, lower-cased ("Region" → region), others annotations.
    """
    known = _lookup(key)
    if known:
        return known
    # "Region: eu-west-1" is the label region, as Prometheus would name it
    return ("label", key.lower()) if _LABEL_NAME_RE.match(key) else ("annotation", key)


def known_key(key: str) -> bool:
    """Whether the table knows `key` (告警级别, 报警主机, summary…)."""
    return _lookup(key) is not None


def key_zone(key: str) -> str:
    """The time zone a key's qualifier names, as the text after a time would say it ("Time
    (UTC)" → "(UTC)", "告警时间(UTC+8)" → "(UTC+8)"), or ""."""
    found = _QUALIFIER_RE.search(key)
    text = found.group(0).strip() if found else ""
    return text if _ZONE_QUALIFIER_RE.match(text) else ""


def _lookup(key: str) -> tuple[Kind, str] | None:
    if len(key) > _KEY_LIMIT:  # a whole line of text is no key (and is not scanned)
        return None
    name = normalise_key(key)
    known = _CANONICAL.get(name)
    if known is None and name.startswith(_RECOVERY_PREFIX):
        known = _CANONICAL.get("告警" + name[len(_RECOVERY_PREFIX) :])
    return known
