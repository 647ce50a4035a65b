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
from typing import NamedTuple

from workflows.intake.alert import Status
from workflows.intake.draft import AlertDraft
from workflows.intake.fields import FieldSet, collect, inline_pairs, read_pair, section_of
from workflows.intake.fingerprint import targets
from workflows.intake.plain import split_blocks
from workflows.intake.severity import severity_of, severity_word, state_level
from workflows.intake.text import plain_line
from workflows.intake.timestamps import parse_timestamp
from workflows.intake.wording import level_word, state_of, state_suffix

# English state tags (their words: `wording.state_of`); Chinese tags (【告警】, [恢复]) are read
# by the plain reader, so a firing and its recovery always meet the same reader
# Datadog writes the scope after the state ("[Triggered on {host:web-01,env:prod}]") and may put
# the monitor's priority first ("[P1] [Recovered on {service:checkout}] …")
_STATE_RE = re.compile(
    r"^(?:\[(?P<level>P\d|SEV\d|S\d)\]\s*)?"
    r"\[(?P<state>FIRING|RESOLVED|RECOVERED|RECOVERY|TRIGGERED|RE-?TRIGGERED|PROBLEM|ALERT|ALARM"
    r"|DOWN|UP|WARN|WARNING|ACK|ACKNOWLEDGED|ACKNOWLEDGEMENT)"
    r"(?:\s*:\s*\d+)?(?:\s*,\s*RESOLVED\s*:\s*\d+)?(?:\s+on\s+\{(?P<scope>[^{}]{0,400})\})?\]"
    r"\s*(?P<rest>.*)$",
    re.I,
)
_LEGACY_RE = re.compile(r"^\[(?P<state>Alerting|OK|No\s*Data)\]\s*(?P<rest>.*)$", re.I)
_MAX_VALUES = 12
_PARENS_RE = re.compile(r"^(?P<head>.*?)\s*\((?P<inner>[^()]*)\)\s*$")
_GRAFANA_HINT_RE = re.compile(r"(?i)grafana|/alerting/(?:silence|grafana|list)")
_HEADING_STATUS: dict[str, Status] = {
    "firing": "firing",
    "alerts firing": "firing",
    "resolved": "resolved",
    "alerts resolved": "resolved",
}
_BARE_URL_RE = re.compile(r"^https?://\S+$")
_TITLE_SCAN = 1000  # a title's label list is read in titles of up to this length
_VALUE_LINE_RE = re.compile(r"^values?\s*[:：]", re.I)


class Opening(NamedTuple):
    """What a bracketed first line says: the state, the rest of the line, whether it is legacy
    Grafana's, and the labels its tags carry (a scope, a level)."""

    status: Status
    rest: str
    legacy: bool
    labels: list[tuple[str, str]]


@dataclass
class _Block:
    status: Status
    lines: list[str] = field(default_factory=list)
    has_labels: bool = False


def bracketed_state(first_line: str) -> Opening | None:
    """What the line says when it opens with a state tag (else None)."""
    line = plain_line(first_line)
    match = _STATE_RE.match(line)
    if match:
        labels = [
            (key.strip(), value.strip())
            for key, _, value in (item.partition(":") for item in (match["scope"] or "").split(","))
            if key.strip() and value.strip()
        ]
        for word in (match["level"], match["state"]):  # "[P1]", "[Warn on …]": levels too
            if word and severity_of(word):
                labels.append(("severity", word))
                break
        return Opening(state_of(match["state"]) or "firing", match["rest"], False, labels)
    match = _LEGACY_RE.match(line)
    if match:
        legacy: Status = "resolved" if match["state"].lower() == "ok" else "firing"
        return Opening(legacy, match["rest"], True, [])
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
        opened = Opening(state_of(first) or "firing", first, False, [])
    status, rest, legacy, tag_labels = opened
    source = "grafana" if legacy or _GRAFANA_HINT_RE.search("\n".join(lines)) else "alertmanager"
    title, title_labels = _split_title(rest)
    title, level = state_suffix(title)  # Icinga's "[PROBLEM] HTTP on web-07 is CRITICAL!"
    prefix, blocks = _blocks(lines[1:], status)
    if not blocks:  # no Labels sections: alerts written one block each (Slack-style templates)
        split = split_blocks(prefix)
        if len(split) > 1:
            blocks = [_Block(block.heading or status, block.lines) for block in split]
            prefix = []
    common = FieldSet(free_labels=False)
    # "is CRITICAL!" names a level; "is OK!" / "is DOWN!" imply one (`state_level`)
    level = level if level_word(level) else state_level(level)
    for key, value in [*title_labels, *tag_labels]:
        if key == "severity":  # a level in a tag changes with the state: not an identity
            level = level or value
        elif key == "target" and blocks:  # the subject's values: each alert's labels say more
            continue
        else:
            common.add_label(key, value)
    if title_labels and title and " " not in title:
        common.add_label("alertname", title)  # "[FIRING:2] HighCPU (instance=a)": group name
    prefix_free = collect(prefix, common)
    if not blocks:
        return [_draft(source, status, title, common, prefix_free, zone, level)]
    drafts = []
    for block in blocks:
        fields = FieldSet(free_labels=False)
        free = collect(block.lines, fields)
        for key, value in common.labels.items():
            fields.add_label(key, value)
        for key, value in common.annotations.items():
            fields.add_annotation(key, value)
        block_title = state_suffix(fields.labels.get("alertname", ""))[0] or title
        drafts.append(_draft(source, block.status, block_title, fields, free, zone, level))
    return drafts


def _split_title(rest: str) -> tuple[str, list[tuple[str, str]]]:
    parens = _PARENS_RE.match(rest) if len(rest) <= _TITLE_SCAN else None
    if parens:
        pairs = inline_pairs(parens["inner"])
        if pairs:
            return parens["head"], pairs
        if not parens["head"]:  # "[FIRING:2]  (HighCPU prod)": no group labels, common values
            return parens["inner"], []
        values = _common_values(parens["inner"])
        if values:
            return parens["head"], values
    return rest, []


def _common_values(inner: str) -> list[tuple[str, str]]:
    """The labels of Alertmanager's default subject, which prints the common labels' values
    only: `HighCPU (web-1:9100 node critical)` → a level and the values as the target; [] when
    the parenthesis reads as part of the title (`(for 3m)`, `(85%)`)."""
    words = inner.split()
    if "=" in inner or not 1 <= len(words) <= _MAX_VALUES:
        return []
    levels = [word for word in words if level_word(word)]
    others = [word for word in words if word not in levels]
    if not levels and not targets(inner):
        return []
    found = [("severity", levels[0])] if levels else []
    return found + ([("target", " ".join(others))] if others else [])


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
    source: str,
    status: Status,
    title: str,
    fields: FieldSet,
    free: list[str],
    zone: tzinfo,
    level: str,
) -> AlertDraft:
    """The alert of one block; `level` is the tags' level, for an alert whose fields have none."""
    annotations = dict(fields.annotations)
    url = fields.url or next((line for line in free if _BARE_URL_RE.match(line)), "")
    free = [line for line in free if line != url]
    if free and "description" not in annotations and "summary" not in annotations:
        annotations["description"] = "\n".join(free)
    return AlertDraft(
        source=source,
        status=status,
        title=title,
        severity="" if severity_word(fields.labels, annotations) else level,
        labels=fields.labels,
        annotations=annotations,
        starts_at=parse_timestamp(fields.starts_at, naive_zone=zone),
        ends_at=parse_timestamp(fields.ends_at, naive_zone=zone),
        generator_url=url,
    )
