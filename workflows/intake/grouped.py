"""Cards that count their alerts in the title, one block per alert (alertmanager-webhook-feishu
and the many templates derived from it)::

    header:  NodeDown [2] Firing [1] Resolved          (group name, then the counts)
    block:   **Instance 10.0.0.1:9100 down** CRITICAL [GeneratorURL](http://prom/graph…)
             10.0.0.1:9100 of job node has been down for more than 1 minute. [操作手册](…)
             2024-05-01 10:00:00 ~ TO BE RESOLVED           (a resolved one ends with its end)
    ---      (the card's divider between blocks)

Blocks are cut at dividers (or blank lines when a card has none); the firing ones come first.
A block's state is read from its time line (`TO BE RESOLVED`, or an end time), else from its
place after the header's counts. Its title is the group's alert name (as the Alertmanager
webhook's alerts are titled), else its bold summary, which is also its summary; its targets
(addresses and host names from the summary, else the description) tell alerts of one group
apart.
"""

from __future__ import annotations

import re
from datetime import tzinfo

from workflows.intake.alert import Status
from workflows.intake.draft import AlertDraft
from workflows.intake.fingerprint import targets
from workflows.intake.text import link_url, plain_line, separator_text
from workflows.intake.timestamps import parse_timestamp

# the counts end the title; searched from a literal "[" (a lazy name before optional counts
# took cubic time on a line of spaces: 30 s for a thousand)
_COUNTS_RE = re.compile(
    r"\[(?P<firing>\d{1,6})\]\s*Firing(?:\s*\[(?P<resolved>\d{1,6})\]\s*Resolved)?$"
    r"|\[(?P<only>\d{1,6})\]\s*Resolved$",
    re.I,
)
_BOLD_RE = re.compile(r"^\*\*(?P<summary>.+?)\*\*\s*(?P<rest>.*)$")
_SEVERITY_RE = re.compile(r"^(?P<severity>[A-Z][A-Z0-9_]{1,15})\b")
# the same line as Lark's degraded render gives it, bold and link gone
_FLAT_RE = re.compile(
    r"^(?P<summary>.+?)(?:\s+(?P<rest>[A-Z][A-Z0-9_]{1,15}))?(?:\s+GeneratorURL)?$"
)
_SPAN_RE = re.compile(r"^(?P<start>.*?)\s*~\s*(?P<end>.*)$")
_UNRESOLVED = "to be resolved"
_LINE_SCAN = 400  # a block's summary and time lines are read in lines up to this length


def group_counts(title: str) -> tuple[str, int, int] | None:
    """`(group name, firing, resolved)` when a card title counts its alerts, else None."""
    line = plain_line(title)
    match = _COUNTS_RE.search(line)
    if not match:
        return None
    resolved = match["resolved"] or match["only"] or 0
    return line[: match.start()].strip(), int(match["firing"] or 0), int(resolved)


def read_grouped(lines: list[str], zone: tzinfo) -> list[AlertDraft]:
    """One draft per block (`lines[0]` must satisfy `group_counts`)."""
    counted = group_counts(lines[0])
    if counted is None:
        return []
    name, firing, _ = counted
    blocks = _blocks(lines[1:])
    return [
        _draft(block, name, "firing" if index < firing else "resolved", zone)
        for index, block in enumerate(blocks)
    ]


def _blocks(lines: list[str]) -> list[list[str]]:
    dividers = any(separator_text(line) is not None for line in lines)
    blocks: list[list[str]] = [[]]
    for raw in lines:
        if (separator_text(raw) is not None) if dividers else not raw.strip():
            blocks.append([])
        elif raw.strip():
            blocks[-1].append(raw)
    blocks = [block for block in blocks if any(plain_line(line) for line in block)]
    timed = [block for block in blocks if any(_span(line) for line in block)]
    return timed or blocks  # a note after the last divider (`@所有人`) is not an alert


def _span(raw: str) -> bool:
    line = plain_line(raw)
    span = _SPAN_RE.match(line) if len(line) <= _LINE_SCAN else None
    return bool(span and parse_timestamp(span["start"]))


def _draft(block: list[str], name: str, placed: Status, zone: tzinfo) -> AlertDraft:
    first = block[0].strip()
    read = _BOLD_RE.match(first) or _FLAT_RE.match(plain_line(first)[:_LINE_SCAN])
    summary = plain_line(read["summary"]) if read else plain_line(first)
    rest = plain_line(read["rest"] or "") if read else ""
    labels: dict[str, str] = {"alertname": name} if name else {}
    severity = _SEVERITY_RE.match(rest)
    if severity:
        labels["severity"] = severity["severity"]
    status, starts, ends = placed, "", ""
    described: list[str] = []
    for raw in block[1:]:
        line = plain_line(raw)
        span = _SPAN_RE.match(line) if len(line) <= _LINE_SCAN else None
        if span and parse_timestamp(span["start"], naive_zone=zone):
            starts, ends = span["start"], span["end"]
            status = "firing" if ends.strip().lower() == _UNRESOLVED else "resolved"
        elif line:
            described.append(line)
    description = "\n".join(described)
    found = targets(summary) or targets(description)
    if found:
        labels["target"] = " ".join(found)
    annotations = {"summary": summary}
    if description:
        annotations["description"] = description
    runbook = next((link_url(raw) for raw in block[1:] if link_url(raw)), None)
    if runbook:
        annotations["runbook_url"] = runbook
    return AlertDraft(
        source="alertmanager",
        status=status,
        title=name or summary,
        labels=labels,
        annotations=annotations,
        starts_at=parse_timestamp(starts, naive_zone=zone),
        ends_at=parse_timestamp(ends, naive_zone=zone),
        generator_url=link_url(first),
        text_identity=True,
    )
