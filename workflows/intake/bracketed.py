"""Alert texts that start with a bracketed state: Alertmanager and Grafana notification texts.

    [FIRING:2] HighCPU (instance=a job=b)          Alertmanager-style subject (k=v labels)
    [FIRING:1, RESOLVED:1] HighCPU infra (db-1)    Grafana's default title (values only)
    [RESOLVED] HighCPU (instance=a job=b)
    [ALERT] / [PROBLEM] / [Down] … and [RECOVERED] / [Up] …   home-made English subjects
    [Alerting] CPU alert / [OK] CPU alert / [No Data] …   legacy Grafana

Bodies may list alerts in the default templates' form; each `Labels:` section starts one alert,
and `**Firing**` / `**Resolved**` headings set the status of the alerts below them. Such a body
is read the same under any first line (a custom title such as "Alerts firing: 2" or
"告警通知"), whose wording then gives the state of alerts before any heading::

    Labels:
     - alertname = HighCPU
     - instance = db-1
    Annotations:
     - summary = CPU above 90%
    Source: http://prometheus:9090/graph?g0.expr=…
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import tzinfo

from workflows.intake.alert import Status
from workflows.intake.draft import AlertDraft
from workflows.intake.fields import FieldSet, collect, inline_pairs, read_pair, section_of
from workflows.intake.text import plain_line
from workflows.intake.timestamps import parse_timestamp
from workflows.intake.wording import state_of

# English state tags (their words: `wording.state_of`); Chinese tags (【告警】, [恢复]) are read
# by the plain reader, so a firing and its recovery always meet the same reader
_STATE_RE = re.compile(
    r"^\[(?P<state>FIRING|RESOLVED|RECOVERED|TRIGGERED|PROBLEM|ALERT|ALARM|DOWN|UP)"
    r"(?:\s*:\s*\d+)?(?:\s*,\s*RESOLVED\s*:\s*\d+)?\]\s*(?P<rest>.*)$",
    re.I,
)
_LEGACY_RE = re.compile(r"^\[(?P<state>Alerting|OK|No\s*Data)\]\s*(?P<rest>.*)$", re.I)
_PARENS_RE = re.compile(r"^(?P<head>.*?)\s*\((?P<inner>[^()]*)\)\s*$")
_GRAFANA_HINT_RE = re.compile(r"(?i)grafana|/alerting/(?:silence|grafana|list)")
_HEADING_STATUS: dict[str, Status] = {
    "firing": "firing",
    "alerts firing": "firing",
    "resolved": "resolved",
    "alerts resolved": "resolved",
}
_BARE_URL_RE = re.compile(r"^https?://\S+$")
_VALUE_LINE_RE = re.compile(r"^values?\s*[:：]", re.I)


@dataclass
class _Block:
    status: Status
    lines: list[str] = field(default_factory=list)
    has_labels: bool = False


def bracketed_state(first_line: str) -> tuple[Status, str, bool] | None:
    """`(status, rest of the line, is legacy Grafana)` when the line opens with a state tag."""
    line = plain_line(first_line)
    match = _STATE_RE.match(line)
    if match:
        return state_of(match["state"]) or "firing", match["rest"], False
    match = _LEGACY_RE.match(line)
    if match:
        return ("resolved" if match["state"].lower() == "ok" else "firing"), match["rest"], True
    return None


def has_label_sections(lines: list[str]) -> bool:
    """Whether the text lists alerts as `Labels:` sections of bulleted `- key = value` items."""
    for index, raw in enumerate(lines[:-1]):
        if section_of(plain_line(raw)) == "labels":
            item = lines[index + 1].lstrip()
            if item.startswith(("-", "*", "•")) and read_pair(plain_line(item)):
                return True
    return False


def read_bracketed(lines: list[str], zone: tzinfo) -> list[AlertDraft]:
    """Drafts for a bracketed alert text, or for any text with `Labels:` sections (then the
    first line's wording gives the state: "Alerts resolved: 2" is resolved)."""
    opened = bracketed_state(lines[0])
    if opened is None:
        first = plain_line(lines[0])
        opened = (state_of(first) or "firing", first, False)
    status, rest, legacy = opened
    source = "grafana" if legacy or _GRAFANA_HINT_RE.search("\n".join(lines)) else "alertmanager"
    title, title_labels = _split_title(rest)
    prefix, blocks = _blocks(lines[1:], status)
    common = FieldSet(free_labels=False)
    for key, value in title_labels:
        common.add_label(key, value)
    if title_labels and title and " " not in title:
        common.add_label("alertname", title)  # "[FIRING:2] HighCPU (instance=a)": group name
    prefix_free = collect(prefix, common)
    if not blocks:
        return [_draft(source, status, title, common, prefix_free, zone)]
    drafts = []
    for block in blocks:
        fields = FieldSet(free_labels=False)
        free = collect(block.lines, fields)
        for key, value in common.labels.items():
            fields.add_label(key, value)
        for key, value in common.annotations.items():
            fields.add_annotation(key, value)
        block_title = fields.labels.get("alertname") or title
        drafts.append(_draft(source, block.status, block_title, fields, free, zone))
    return drafts


def _split_title(rest: str) -> tuple[str, list[tuple[str, str]]]:
    parens = _PARENS_RE.match(rest)
    if parens:
        pairs = inline_pairs(parens["inner"])
        if pairs:
            return parens["head"], pairs
        if not parens["head"]:  # "[FIRING:2]  (HighCPU prod)": no group labels, common values
            return parens["inner"], []
    return rest, []


def _blocks(lines: list[str], status: Status) -> tuple[list[str], list[_Block]]:
    """Split a body into alerts: a `Labels:` line starts one, unless it follows the `Value:`
    line that Grafana's default template prints first for each alert."""
    prefix: list[str] = []
    blocks: list[_Block] = []
    current_status = status
    for raw in lines:
        line = plain_line(raw)
        heading = _HEADING_STATUS.get(line.rstrip(":：").strip().lower())
        if heading:
            current_status = heading
            continue
        if _VALUE_LINE_RE.match(line):
            blocks.append(_Block(current_status))
        elif line.rstrip(":：").strip().lower() in ("labels", "标签"):
            if not blocks or blocks[-1].has_labels:
                blocks.append(_Block(current_status))
            blocks[-1].has_labels = True
        if blocks:
            blocks[-1].lines.append(raw)
        else:
            prefix.append(raw)
    return prefix, [block for block in blocks if block.has_labels] or blocks


def _draft(
    source: str, status: Status, title: str, fields: FieldSet, free: list[str], zone: tzinfo
) -> AlertDraft:
    annotations = dict(fields.annotations)
    url = fields.url or next((line for line in free if _BARE_URL_RE.match(line)), "")
    free = [line for line in free if line != url]
    if free and "description" not in annotations and "summary" not in annotations:
        annotations["description"] = "\n".join(free)
    return AlertDraft(
        source=source,
        status=status,
        title=title,
        labels=fields.labels,
        annotations=annotations,
        starts_at=parse_timestamp(fields.starts_at, naive_zone=zone),
        ends_at=parse_timestamp(fields.ends_at, naive_zone=zone),
        generator_url=url,
    )
