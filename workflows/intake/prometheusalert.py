"""Messages from the PrometheusAlert project's default Feishu templates (`prometheus-fs`,
`grafana-fs` and their variants), as text or inside its interactive card::

    **[Prometheus告警信息](http://prometheus:9090/graph?g0.expr=…)**     or [PROMETHEUS-告警信息]
    *[NodeDiskFull](http://alertmanager:9093)*
    告警级别：critical
    开始时间：2024-05-01 10:00:00
    结束时间：0001-01-01T00:00:00Z
    故障主机IP：10.0.0.12:9100
    **磁盘 / 使用率超过 90%**

One message may hold several alerts (the template ranges over them, `split=false`): each
`…告警信息` / `…恢复信息` marker starts one, also where the template runs them together on one
line (`**…filling up fast.****[Prometheus告警信息](…)**`); 恢复 means resolved. The first free
line after the marker is the alert name unless a 告警名称 line gives it; other free lines form the
description. A level the alert lacks prints as Go's `<no value>`: an empty level.
"""

from __future__ import annotations

import re
from datetime import tzinfo

from workflows.intake.alert import Status
from workflows.intake.draft import AlertDraft
from workflows.intake.fields import FieldSet, collect
from workflows.intake.text import link_url, plain_line, separator_text
from workflows.intake.timestamps import parse_timestamp

# a bracketed marker may name its environment: "[PROMETHEUS-告警信息-测试线](…)" (part of it)
MARKER_RE = re.compile(
    r"(?i)(?:prometheus|grafana)\s*[-_ ]?\s*(告警|恢复)(?:信息|通知)"
    r"(?:[-_][^\[\]【】()\s]{1,16}(?=[\]】]))?"
)
# a marker that a template glued to the end of the previous alert: "…fast.****[Prometheus告警…",
# "…</font>[PROMETHEUS-告警信息]", or as Lark's degraded render gives it, markup gone:
# "…节点离线Prometheus告警信息"
_MARK = r"(?:prometheus|grafana)\s*[-_ ]?\s*(?:告警|恢复)(?:信息|通知)"
_GLUED_RE = re.compile(
    rf"(?i)(?<=\S)(?=\*\*[\[【]{_MARK})|(?<=[^\s*])(?=[\[【]{_MARK})"
    rf"|(?<=[^\s*\[【#>A-Za-z\]()])(?={_MARK})"
)
_NOISE_RE = re.compile(r"屏蔽|静默|/silences?\b|^prometheusalert$", re.I)
_LEFTOVER = r"[\s\[\]【】()（）:：\-]"
_LEFTOVER_RE = re.compile(rf"^{_LEFTOVER}+|(?<!{_LEFTOVER}){_LEFTOVER}+$")


def has_marker(text: str) -> bool:
    """Whether `text` looks like a PrometheusAlert template message."""
    return MARKER_RE.search(text) is not None


def unglue(text: str) -> str:
    """`text` with every PrometheusAlert marker that follows other text moved to a new line."""
    return _GLUED_RE.sub("\n", text)


def read_prometheusalert(lines: list[str], zone: tzinfo) -> list[AlertDraft]:
    """One draft per marker in `lines`; lines before the first marker add shared fields."""
    shared = FieldSet(free_labels=False)
    blocks: list[list[str]] = []
    prefix: list[str] = []
    for raw in lines:
        if MARKER_RE.search(raw):
            blocks.append([raw])
        elif blocks:
            blocks[-1].append(raw)
        else:
            prefix.append(raw)
    collect(prefix, shared)  # free lines before the marker (a card title) are not alert text
    return [_draft(block, shared, zone) for block in blocks]


def _draft(block: list[str], shared: FieldSet, zone: tzinfo) -> AlertDraft:
    marker_line = block[0]
    found = MARKER_RE.search(marker_line)
    status: Status = "resolved" if found and found.group(1) == "恢复" else "firing"
    fields = FieldSet(free_labels=False)
    after_marker = _LEFTOVER_RE.sub("", plain_line(MARKER_RE.sub(" ", marker_line)))
    free = collect(([after_marker] if after_marker else []) + block[1:], fields)
    free = [line for line in free if not _NOISE_RE.search(line) and separator_text(line) is None]
    for key, value in shared.labels.items():
        fields.add_label(key, value)
    for key, value in shared.annotations.items():
        fields.add_annotation(key, value)
    if "alertname" not in fields.labels and free:
        fields.add_label("alertname", free.pop(0))
    annotations = dict(fields.annotations)
    if free:
        text = "\n".join(free)
        key = "description" if "description" not in annotations else "details"
        annotations[key] = text
    return AlertDraft(
        source="prometheusalert",
        status=status,
        title=fields.labels.get("alertname", "") or plain_line(marker_line),
        labels=fields.labels,
        annotations=annotations,
        starts_at=parse_timestamp(fields.starts_at, naive_zone=zone),
        ends_at=parse_timestamp(fields.ends_at, naive_zone=zone),
        generator_url=link_url(marker_line) or fields.url,
    )
