"""`key: value` lines and inline `key=value` tokens from alert texts, routed to alert fields.

Alert bots write the same facts under many names. Chinese keys used by PrometheusAlert and
common Feishu templates map to Prometheus-style names (告警名称 → alertname, 告警级别 → severity,
故障主机/故障主机IP → instance, 开始时间 → start time, 告警详情 → description…). Other keys that
look like label names (ASCII identifiers) become labels, anything else an annotation. Keys are
never evaluated; values stay text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from workflows.intake.fingerprint import IDENTITY_KEYS
from workflows.intake.severity import SEVERITY_KEYS
from workflows.intake.text import link_url, plain_line

Kind = Literal["label", "annotation", "starts", "ends", "status", "url"]

MAX_FIELDS = 64
KEY_PATTERN = r"[A-Za-z_\u3400-\u9fff][\w.\-/\u3400-\u9fff]{0,63}"

_PAIR_RE = re.compile(
    rf"^\s*(?:[-*•·]\s*)?(?P<key>{KEY_PATTERN})\s*(?:[:：]|\s=\s)\s*(?P<value>.*)$"
)
_INLINE_RE = re.compile(
    r'(?<![\w.\-/=])([A-Za-z_][\w.\-]{0,63})=("[^"\n]{0,512}"|[^\s,;，；)）]{1,512})'
)
_URL_RE = re.compile(r"https?://\S+")
_PORT_RE = re.compile(r"^\d{1,5}\s*[:：]")
_LABEL_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_SECTIONS = {
    "labels": "labels",
    "标签": "labels",
    "annotations": "annotations",
    "注释": "annotations",
}
_BULLETS = ("-", "*", "•", "·")


def _table(kind: Kind, name: str, keys: str) -> dict[str, tuple[Kind, str]]:
    return dict.fromkeys(keys.split(), (kind, name))


_CANONICAL: dict[str, tuple[Kind, str]] = {
    **_table(
        "label", "alertname", "告警名称 告警名 告警类型 告警规则 规则名称 规则名 告警项 监控项"
    ),
    **_table("label", "severity", "告警级别 级别 告警等级 等级 严重程度 严重级别 优先级"),
    **_table("label", "instance", "故障主机 故障主机ip 故障目标 告警主机 实例 故障实例 告警实例"),
    **_table("label", "host", "主机 主机名 主机ip 服务器"),
    **_table("label", "service", "服务 服务名 服务名称 告警服务"),
    **_table("label", "app", "应用 应用名 应用名称"),
    **_table("label", "project", "项目 项目名称"),
    **_table("label", "cluster", "集群 集群名称"),
    **_table("label", "env", "环境"),
    **_table("label", "namespace", "命名空间"),
    **_table("label", "container", "容器"),
    **_table(
        "annotation",
        "description",
        "告警详情 告警描述 描述 详情 告警内容 内容 故障描述 description desc details detail",
    ),
    **_table("annotation", "summary", "摘要 告警摘要 告警主题 summary"),
    **_table("annotation", "message", "message"),
    **_table("annotation", "value", "当前值 触发值 value current_value"),
    **_table("annotation", "runbook_url", "runbook_url runbook 处理手册"),
    **_table("annotation", "silence_url", "silence"),
    **_table("annotation", "dashboard_url", "dashboard"),
    **_table("annotation", "panel_url", "panel"),
    **_table(
        "starts", "starts_at", "开始时间 触发时间 告警时间 发生时间 故障时间 startsat starts_at"
    ),
    **_table("ends", "ends_at", "结束时间 恢复时间 endsat ends_at"),
    **_table("status", "status", "状态 告警状态 status state"),
    **_table("url", "generator_url", "source generatorurl generator_url"),
}


def read_pair(line: str) -> tuple[str, str] | None:
    """`(key, value)` when `line` reads as `key: value`, `key：value` or `- key = value`."""
    match = _PAIR_RE.match(line)
    if not match:
        return None
    key, value = match.group("key"), match.group("value").strip()
    if value.startswith("//") or key.lower() in ("http", "https") or _PORT_RE.match(value):
        return None  # a URL, or "db-1:9100: 93.2" (host:port, not a key)
    return key, value


def inline_pairs(text: str) -> list[tuple[str, str]]:
    """Every `key=value` / `key="a value"` token in `text`, URLs skipped."""
    pairs = []
    for key, value in _INLINE_RE.findall(_URL_RE.sub(" ", text)):
        pairs.append((key, value[1:-1] if value.startswith('"') else value))
    return pairs


def route(key: str) -> tuple[Kind, str]:
    """Where a text key goes: its kind and canonical name."""
    known = _CANONICAL.get(key.lower())
    if known:
        return known
    return ("label", key) if _LABEL_NAME_RE.match(key) else ("annotation", key)


def well_known_key(key: str) -> bool:
    """Whether `key` is a name alert texts use for a known field (alertname, 告警级别, host…)."""
    lowered = key.lower()
    return lowered in _CANONICAL or lowered in IDENTITY_KEYS or lowered in SEVERITY_KEYS


@dataclass
class FieldSet:
    """Facts collected from one alert's text; first value for a name wins.

    `free_labels`: unknown label-like keys become labels (plain text) or annotations (formats
    whose fingerprint uses labels, where a `cpu: 91%` line must not split an incident).
    """

    free_labels: bool = True
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    starts_at: str = ""
    ends_at: str = ""
    status: str = ""
    url: str = ""

    def add(self, key: str, value: str, *, url: str | None = None) -> None:
        """Route `key: value`; `url` is the line's link target, for link-valued keys."""
        kind, name = route(key)
        if kind == "label" and not self.free_labels and not well_known_key(key):
            kind = "annotation"
        if kind == "label":
            self.add_label(name, value)
        elif kind == "annotation":
            self.add_annotation(name, url if name.endswith("_url") and url else value)
        elif kind == "starts":
            self.starts_at = self.starts_at or value
        elif kind == "ends":
            self.ends_at = self.ends_at or value
        elif kind == "status":
            self.status = self.status or value
        else:
            self.url = self.url or url or value

    def add_label(self, key: str, value: str) -> None:
        """Set a label verbatim (a `Labels:` section item), unless already set or full."""
        if value and key not in self.labels and len(self.labels) < MAX_FIELDS:
            self.labels[key] = value

    def add_annotation(self, key: str, value: str) -> None:
        """Set an annotation; a repeated description/summary line is appended."""
        if not value:
            return
        if key in self.annotations:
            if key in ("description", "summary") and len(self.annotations[key]) < 4096:
                self.annotations[key] += "\n" + value
        elif len(self.annotations) < MAX_FIELDS:
            self.annotations[key] = value


def collect(lines: Iterable[str], fields: FieldSet) -> list[str]:
    """Fill `fields` from the `key: value` lines and `Labels:`/`Annotations:` sections of
    `lines` (markdown allowed); return the other, free-text lines as plain text.

    A bold key with an empty value (`**告警级别：**`) takes the next line as its value (cards
    often put a field's name and value on two lines); other empty fields are dropped. Items of
    a section are bulleted `- key = value` lines.
    """
    free: list[str] = []
    section = ""
    pending = ""
    for raw in lines:
        line = plain_line(raw)
        if not line:
            section = pending = ""
            continue
        pair = read_pair(line)
        if pair and not pair[1] and pair[0].lower() in _SECTIONS:
            section, pending = _SECTIONS[pair[0].lower()], ""
            continue
        if section and pair and raw.lstrip().startswith(_BULLETS):
            if section == "labels":
                fields.add_label(*pair)
            else:
                fields.add_annotation(*pair)
            continue
        section = ""
        if pair and pair[1]:
            fields.add(*pair, url=link_url(raw))
            pending = ""
        elif pair:  # an empty field; a bold one ("**告警级别：**") has its value on the next line
            pending = pair[0] if "**" in raw else ""
        elif pending:
            fields.add(pending, line, url=link_url(raw))
            pending = ""
        else:
            free.append(line)
    return free
