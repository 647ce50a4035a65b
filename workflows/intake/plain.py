"""Alert texts in no known template: `key: value` lines, free text, one or many alerts per message.

This reader covers the home-made and forwarder templates that print one field per line in any
of the vocabularies of `workflows.intake.vocabulary` (Nightingale, WatchAlert, alertmanager-bot,
DIY Feishu templates). A message is split into one block per alert:

- at a separator line (`-----`, `--- Alert ---`, `==== 恢复通知 ====`, a card's `hr`), which is
  never a title;
- at a line that is only a state (`🔥 FIRING 🔥`, `RESOLVED`, `【恢复】`), which sets the state of
  the block it opens;
- where a key the block already has comes again (a second `告警名称:` or `级别状态:`; two
  synonyms, 告警名称 and 告警策略, are two facts of one alert);
- at each item of a list of alerts (`- HighCPU web-1`, `2. alertname=X …`, `• [critical] X
  node=a`) under a state heading or a caption that speaks of alerts (`当前告警 3 条：`); each
  item takes the state of the heading above it, and its trailing `k=v` labels leave its title;
- at a free line led by a level tag when the block already has one (`**[warning]** Lag is
  high` opening each alert of a dingtalk-style list).

Each block is one alert. Its title is its alert-name field (or a rule name quoted in its first
lines: `rule 'Error logs spike' is active`), else its first free line, else the message's first
line; a block with none of them, or only a notice title (`Nagios 告警通知`), is titled by what
its fields say is wrong and where (`workflows.intake.titles`). A repeated key does not start a
new alert inside a bulleted list under a key without value (`*Details:*`), nor on the line that
is a description's value (`告警详情:` over `实例: db-1 …`).

Its level: a level field, else a level tag in its title or the message's header, else the level
its monitor state implies (`State: DOWN` critical, a recovery's `OK`/`UP` info).

Its state: a declared state (`状态: 已恢复`, `级别状态: S2 Recovered`) first, then the block's
state heading, then the wording of its title (then the message's first line),
then a recovery time, then the rest of its text (`**告警描述:** 服务已恢复`). Negations such as
未恢复 never count as a recovery.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import tzinfo

from workflows.intake.alert import Status
from workflows.intake.alertmanager import status_of
from workflows.intake.draft import AlertDraft
from workflows.intake.fields import FieldSet, collect, inline_pairs, read_pair, well_known_key
from workflows.intake.fingerprint import IDENTITY_KEYS, targets
from workflows.intake.severity import severity_word, state_level
from workflows.intake.text import is_caption, plain_line, separator_text, title_line
from workflows.intake.timestamps import parse_timestamp
from workflows.intake.titles import quoted_name, subject
from workflows.intake.vocabulary import known_key, normalise_key, route
from workflows.intake.wording import (
    caption_state,
    heading_status,
    is_notice,
    level_word,
    reads_resolved,
    state_of,
    state_suffix,
    stated,
    untagged,
)

_NOT_ALERT = ("annotation", "noise", "url")
_BULLETS = ("-", "*", "•", "·")
# a list item's mark: "- ", "• ", "1. ", "2) ", "3、"
_BULLET_RE = re.compile(r"^(?:[-*•·]|\d{1,3}[.)、])\s+(?=\S)")
_LEVEL_FIRST_RE = re.compile(r"^((?:S|P|SEV)\d)\b", re.I)  # "S1 - Triggered - cpu_busy"
_LISTING_RE = re.compile(r"(?i)\d|告警|报警|\balerts?\b|\bfiring\b|\bresolved\b|恢复")
# "KubeNodeNotReady node=k8s-w-07": the k=v pairs after a listed alert's name are its labels
_PAIR_TOKEN_RE = re.compile(r"[A-Za-z_][\w.\-]{0,63}=\S{1,512}")
# identity labels that say what the alert is or where it belongs, not which target it is on
_SCOPES = frozenset({"alertname", "env", "cluster", "project", "namespace", "region", "zone"})


@dataclass
class Block:
    """The lines of one alert, and the state its heading announced."""

    heading: Status | None = None
    lines: list[str] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    alert_like: bool = False  # a field that describes an alert (name, target, level, state…)
    named: bool = False  # opened by a heading or a separator with words ("--- Alert ---")
    item: bool = False  # one item of a list of alerts ("- HighCPU web-1", "2. alertname=X …")
    tagged: bool = False  # has a free line led by a level or state tag ("**[warning]** …")


def split_blocks(lines: list[str]) -> list[Block]:
    """The message's lines cut into one block per alert (see the module docstring)."""
    blocks = [Block()]
    listing = False  # bulleted items under a key without value ("*Details:*" / "• instance: x")
    described = False  # the line after "告警详情:" is its text, whatever it reads like
    items = _alert_items(lines)
    announced: Status | None = None  # the state of the latest heading, for the items below it
    for index, raw in enumerate(lines):
        current = blocks[-1]
        if index in items:
            if _has_text(current):
                blocks.append(Block(heading=announced, item=True, alert_like=True))
            else:
                current.heading = current.heading or announced
                current.item = current.alert_like = True
            blocks[-1].lines.append(raw)
            continue
        bulleted = raw.lstrip().startswith(_BULLETS)
        listing = listing and bulleted
        value_of, described = described and bool(raw.strip()), described and not raw.strip()
        divider = separator_text(raw)
        plain = plain_line(raw)
        heading = heading_status(raw, plain) if divider is None else None
        if divider is not None or heading is not None:
            announced = heading or (heading_status(divider, divider) if divider else None)
            named = bool(divider) or heading is not None
            if _has_text(current):
                blocks.append(Block(heading=announced, named=named))
            else:
                current.heading = current.heading or announced
                current.named = current.named or named
            continue
        pair = read_pair(plain)
        if pair and pair[1]:
            key = _identity_key(pair[0])
            # a listed item ("*Details:*" / "• *alertname:* `DiskFull`") details the alert above
            if key and key in current.keys and not listing and not value_of:
                blocks.append(Block())
                current = blocks[-1]
            if key and not value_of:
                current.keys.add(key)
            current.alert_like = current.alert_like or (
                well_known_key(pair[0]) and route(pair[0])[0] not in _NOT_ALERT
            )
        elif pair:
            listing = True
            described = known_key(pair[0]) and route(pair[0])[0] == "annotation"
        elif not value_of and _tag_led(plain):
            # "**[warning]** Lag is high" again: each alert of the list opens with its level
            if current.tagged:
                blocks.append(Block(heading=announced))
                current = blocks[-1]
            current.tagged = True
        current.lines.append(raw)
    return _joined([block for block in blocks if _has_text(block)])


def _lists_alerts(key: str) -> bool:
    """Whether a caption ending in a colon introduces alerts ("当前告警 3 条：", "Firing
    alerts:"), not a field's items ("可能原因：", "告警详情：")."""
    return not known_key(key) and _LISTING_RE.search(key) is not None


def _tag_led(plain: str) -> bool:
    """Whether a free line opens with a level or state tag: "[warning] Lag is high",
    "【P1】磁盘满" (not "[订单服务] 接口超时", nor "Resolved: X")."""
    return plain.startswith(("[", "【")) and bool(untagged(_BULLET_RE.sub("", plain))[1])


def _alert_items(lines: list[str]) -> set[int]:
    """The indexes of lines that are items of a list of alerts: bulleted or numbered lines
    in a row (blank lines between allowed) that are not `key: value` fields, two or more, or
    one under a state heading (`🔥 告警中 (3)`); under such a heading or a caption that speaks
    of alerts (`【告警汇总】当前 2 条告警`, `当前告警 3 条：`), or each carrying labels or a level
    (`- [critical] X node=a`). Bullets under a field ("告警详情:" / "*Details:*") detail one
    alert; bullets under any other line ("大家注意：") are no alerts by themselves."""
    found: set[int] = set()
    run: list[tuple[int, str]] = []
    before: str | None = ""  # the line before the current run (None: a field)
    for index, raw in enumerate([*lines, ""]):
        plain = plain_line(raw)
        if not plain and index < len(lines):
            continue
        item = _BULLET_RE.match(raw.strip())
        text = plain_line(raw.strip()[item.end() :]) if item else ""
        if item and not read_pair(text):
            run.append((index, text))
            continue
        headed = before is not None and heading_status(before, before) is not None
        if (len(run) >= 2 or headed) and before is not None and _introduces(before, run):
            found.update(index for index, _ in run)
        run = []
        pair = read_pair(plain)
        before = None if pair and (pair[1] or not _lists_alerts(pair[0])) else plain
    return found


def _introduces(before: str, run: list[tuple[int, str]]) -> bool:
    """Whether the items of `run` after the line `before` are alerts (see `_alert_items`)."""
    if before and (heading_status(before, before) or _LISTING_RE.search(before)):
        return True
    return all(inline_pairs(item) or _tag_led(item) for _, item in run)


def _joined(blocks: list[Block]) -> list[Block]:
    """Blocks that are not alerts joined to their neighbours: a header to the alert after it,
    a card's note or a footer to the alert before it. Where no block has alert fields, text
    alerts are apart only where a heading or a separator with words says so."""
    fielded = any(block.alert_like for block in blocks)
    kept: list[Block] = []
    prefix: list[str] = []
    listed = any(block.item for block in blocks)
    for block in blocks:
        if block.alert_like or block.heading is not None or (not fielded and block.named):
            # a list's caption ("【告警汇总】当前 2 条告警") is no part of its first item
            block.lines[:0] = [] if block.item else prefix
            prefix = []
            kept.append(block)
        elif kept:
            kept[-1].lines.extend(block.lines)
        else:
            prefix.extend(block.lines)
    if prefix and not listed:
        kept.append(Block(lines=prefix))
    return kept


def _has_text(block: Block) -> bool:
    return any(plain_line(line) for line in block.lines)


def read_plain(lines: list[str], zone: tzinfo) -> tuple[list[AlertDraft], bool]:
    """Drafts for a plain alert text, and whether anything in it was understood (a field, a
    `k=v` label or a state heading); a message with nothing understood is a fallback."""
    blocks = split_blocks(lines) or [Block(lines=lines)]
    header = _first_free_line(lines)
    drafts: list[AlertDraft] = []
    understood = False
    for block in blocks:
        draft, read = _read_block(block, header, zone)
        drafts.append(draft)
        understood = understood or read or block.heading is not None or block.item
    return drafts, understood


def _read_block(block: Block, header: str, zone: tzinfo) -> tuple[AlertDraft, bool]:
    fields = FieldSet(free_labels=True)
    first = plain_line(block.lines[0]) if block.lines else header
    opening = read_pair(first)
    # "已恢复：磁盘快满了" and "Alert: disk full" are titles, not fields
    if opening and (not well_known_key(opening[0]) or untagged(first)[1]):
        free = [first, *collect(block.lines[1:], fields)]
    else:
        free = collect(block.lines, fields)
    for line in free:
        for key, value in inline_pairs(line):
            fields.add(key, value)
    understood = bool(fields.labels or fields.annotations or fields.status or fields.starts_at)
    quoted = "" if "alertname" in fields.labels else _quoted(free, header, fields)
    named = fields.labels.get("alertname", "")
    heading = named or title_line(free) or header
    if not named and (not heading or is_notice(heading)):  # "Nagios 告警通知", or nothing
        heading = subject(fields.labels, fields.annotations) or heading
    heading = _BULLET_RE.sub("", heading)  # "- HighCPU on web-1" in a list of alerts
    title, tags = untagged(heading)
    title = _without_pairs(title) if block.item else title  # a listed alert: "X node=a"
    understood = understood or bool(tags)  # "【告警】磁盘满", "[Down] 订单API": a state or a level
    captions = [line for line in free if line != heading and is_caption(line)]
    understood = understood or any(caption_state(line) for line in captions[:1])  # "… Alarm:"
    body = [line for line in free if line != heading]
    if not _located(fields) and not targets(title):  # "NodeDown\n节点 10.0.0.1 宕机"
        described = [
            *(fields.annotations.get(k, "") for k in ("summary", "description")),
            *body[:1],
        ]
        found = next((targets(text) for text in described if targets(text)), [])
        if found:
            fields.add_label("target", " ".join(found))
    if not severity_word(fields.labels):  # "【 P1 报警中】- X", "S1 - Triggered - X" name the level
        leading = _LEVEL_FIRST_RE.match(header)
        words = (tags, untagged(header)[1], leading.group(1) if leading else "")
        level = next((word for word in words if level_word(word)), "")
        # else the level a monitor's state implies: "State: DOWN", "… is OK!" (not "[Down]")
        implied = fields.state_level or state_level(state_suffix(heading)[1])
        fields.add_label("severity", level or implied)
    annotations = dict(fields.annotations)
    if body and "description" not in annotations:
        annotations["description"] = "\n".join(body)
    ends_at = parse_timestamp(fields.ends_at, naive_zone=zone)
    lines = [header] if named else [heading, header]  # an alert's name says nothing of its state
    lines[:0] = [quoted] if quoted else []  # "alert 'CPU high' is recovered for group 'web-1':"
    marks = [raw for raw in block.lines if plain_line(raw) in (heading, header)]
    status = _status(block, lines, marks, body, fields, ended=ends_at is not None)
    draft = AlertDraft(
        source="text",
        status=status,
        title=title,
        labels=fields.labels,
        annotations=annotations,
        starts_at=parse_timestamp(fields.starts_at, naive_zone=zone),
        ends_at=ends_at,
        generator_url=fields.url,
        text_identity=True,
    )
    return draft, understood


def _status(
    block: Block,
    lines: list[str],
    marks: list[str],
    body: list[str],
    fields: FieldSet,
    *,
    ended: bool,
) -> Status:
    """A declared state, the block's heading, what its title and the message's header state
    (`wording.stated`: emoji, state tags, words), an end time, then the rest of the text
    (`告警描述: 服务已恢复`)."""
    declared = status_of(fields.status) or (state_of(fields.status) if fields.status else None)
    if declared:
        return declared
    if block.heading:
        return block.heading
    for line in [*marks, *lines]:
        found = stated(line)
        if found:
            return found
    if ended:
        return "resolved"
    text = "\n".join([*body, *fields.annotations.values()])
    return "resolved" if reads_resolved(text) else "firing"


def _without_pairs(title: str) -> str:
    """A title without the `k=v` labels written after its name ("KubeNodeNotReady
    node=k8s-w-07" → "KubeNodeNotReady"); a title of nothing but pairs stays as it is."""
    words = title.split(" ")
    while len(words) > 1 and _PAIR_TOKEN_RE.fullmatch(words[-1]):
        words.pop()
    return " ".join(words) if len(words) < len(title.split(" ")) else title


def _quoted(free: list[str], header: str, fields: FieldSet) -> str:
    """The line (of the first free ones, or the header) that quotes the alert's rule name, whose
    name and group it adds to `fields`; "" when none does."""
    for line in [*free[:2], header]:
        name, group = quoted_name(line)
        if name:
            fields.add_label("alertname", name)
            fields.add_label("target", group)
            return line
    return ""


def _located(fields: FieldSet) -> bool:
    """Whether the fields already say where the alert is (a host, instance, service…)."""
    return any(key in IDENTITY_KEYS and key not in _SCOPES for key in fields.labels)


def _identity_key(key: str) -> str:
    """The name under which a repeated key starts a new alert: the key as written (normalised).
    Two synonyms of a name in one block (告警名称 and 告警策略, a cloud monitor's rule and its
    policy) are two facts of one alert, not two alerts."""
    kind, name = route(key)
    if kind in ("annotation", "noise") and name not in ("source_fingerprint",):
        return ""  # descriptions may repeat, and noise says nothing
    return normalise_key(key)


def _first_free_line(lines: list[str]) -> str:
    """The message's first meaningful line (not a separator, a bare state, a field or a
    caption over the line after it)."""
    free = []
    pending = False  # a known key with no value: the next free line is its value
    for raw in lines:
        plain = plain_line(raw)
        if not plain or separator_text(raw) is not None or heading_status(raw, plain):
            continue
        pair = read_pair(plain)
        if pair and well_known_key(pair[0]):
            pending = not pair[1] and known_key(pair[0])
            continue
        if not pending:
            free.append(plain)
        pending = False
    return title_line(free)
