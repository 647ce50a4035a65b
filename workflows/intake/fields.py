"""`key: value` lines and inline `key=value` tokens from alert texts, routed to alert fields.

Alert bots write the same facts under many names; `workflows.intake.vocabulary` maps them to
Prometheus-style names (告警名称 → alertname, 报警等级 → severity, 实例地址 → instance…). Keys may
be bold, bulleted, quoted or behind an emoji (`**🖥 报警主机:**`); a known key whose value is empty
takes the next line as its value (cards put name and value on two lines). Go's `<no value>` is an
empty value. Keys are never evaluated; values stay text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from workflows.intake.fingerprint import IDENTITY_KEYS
from workflows.intake.severity import SEVERITY_KEYS, severity_of, state_level
from workflows.intake.text import link_url, plain_line
from workflows.intake.vocabulary import LEVEL_STATUS_KEYS, key_zone, known_key, normalise_key, route
from workflows.intake.wording import state_of

MAX_FIELDS = 64
_JSON_LIMIT = 16 * 1024
_WORD = r"[\w.\-/\u3400-\u9fff]"
# up to three words and a qualifier: "告警级别", "Rule Name", "Trigger time value", "Time (UTC)"
_QUALIFIER = r"(?: ?[(（][^()（）:：\n]{1,24}[)）])?"  # "Time (UTC)", "告警时间（北京）"
KEY_PATTERN = rf"[A-Za-z_\u3400-\u9fff]{_WORD}{{0,31}}(?: {_WORD}{{1,31}}){{0,2}}{_QUALIFIER}"

_PAIR_RE = re.compile(
    rf"^\s*(?:[-*•·]\s*)?(?P<key>{KEY_PATTERN})\s*(?:[:：]|\s=\s)\s*(?P<value>.*)$"
)
_INLINE_RE = re.compile(
    r'(?<![\w.\-/=])([A-Za-z_][\w.\-]{0,63})=("[^"\n]{0,512}"|[^\s,;，；)）\]"\']{1,512})'
)
_URL_RE = re.compile(r"https?://\S+")
_BARE_URL_RE = re.compile(r"^https?://\S+$")
_GO_MAP_ITEM_RE = re.compile(r"(?:^|\s)([A-Za-z_][\w.\-]{0,63}):(\S{1,512})")
_PORT_RE = re.compile(r"^\d{1,5}\s*[:：]")
# a sentence that says when the problem started or ended (Zabbix: "Problem started at 10:00:00
# on 2024.06.03", "Problem has been resolved at …")
_WHEN_SPAN = 100  # looked for in a line's last characters only
_WHEN_RE = re.compile(
    r"(?i)\b(?:(?P<start>started|began|occurred)|(?P<end>resolved|recovered|ended))"
    r"\s+(?:at|on)\s+(?P<when>\S.{6,58})$"
)
_SECTIONS = {
    "labels": "labels",
    "标签": "labels",
    "annotations": "annotations",
    "注释": "annotations",
    "附加信息": "annotations",
}
_BULLETS = ("-", "*", "•", "·")
# keys that are a state, whose value names the alert: "Resolved: X", "已恢复：X"
_STATE_KEYS = frozenset(
    {"resolved", "recovered", "firing", "triggered", "alerting", "problem", "已恢复", "告警恢复"}
)
# names of what is monitored, not of the rule that fired: a rule's name wins over them
_ITEM_KEYS = frozenset({"监控项", "监控项目", "告警项", "报警项", "monitoritem", "item"})
_WORDY_RE = re.compile(r"[A-Za-z\u3400-\u9fff]")  # a name, not a count ("Resolved: 1")
_STATE_WORDS_RE = re.compile(
    r"(?i)\b(?:triggered|recovered|firing|resolved)\b|已恢复|恢复|告警中|报警中|已触发|触发"
)


_GLUED_KEY_RE = re.compile(r"(?<=\S)\*\*(?P<key>[^*\n]{1,32}?)(?:\*\*\s*[:：]|[:：]\s*\*\*)")


def unglue_keys(text: str) -> str:
    """`text` with a bold known key that a template glued to the previous line's end
    (`[View data](…)**alertname**: X`) moved to a line of its own."""

    def cut(match: re.Match[str]) -> str:
        key = plain_line(match["key"])
        return ("\n" if known_key(key) else "") + match.group(0)

    return _GLUED_KEY_RE.sub(cut, text)


_PIPE_RE = re.compile(r"(?<!\s)\s+[|｜]\s+")
_LEAD_RE = re.compile(
    r"^\s*(?:(?P<number>\[\d{1,3}\]|\d{1,3}[.、)）])|(?P<tag>【[^【】]{1,40}】|\[[^\[\]]{1,40}\]))\s*"
)


def unpipe(line: str) -> list[str]:
    """A shell script's one-line alert, `【告警】主机: web-1 | 告警: 磁盘满 | 级别: 严重`, as one
    line per field (a leading tag on a line of its own, a leading number `[1]`/`1.` dropped);
    any other line as it is. Every piece must read as `key: value`, one a known key."""
    pieces = _PIPE_RE.split(line, maxsplit=MAX_FIELDS)
    if len(pieces) < 2:
        return [line]
    lead = _LEAD_RE.match(pieces[0])
    head = [lead["tag"]] if lead and lead["tag"] else []
    if lead:
        pieces[0] = pieces[0][lead.end() :]
    pairs = [read_pair(plain_line(piece)) for piece in pieces]
    if not all(pair and pair[1] for pair in pairs):
        return [line]
    if not any(pair and well_known_key(pair[0]) for pair in pairs):
        return [line]
    return [*head, *(piece.strip() for piece in pieces)]


def read_pair(line: str) -> tuple[str, str] | None:
    """`(key, value)` when `line` reads as `key: value`, `key：value` or `- key = value`."""
    match = _PAIR_RE.match(line)
    if not match:
        return None
    key, value = match.group("key"), match.group("value").strip()
    if value.startswith("//") or key.lower() in ("http", "https") or _PORT_RE.match(value):
        return None  # a URL, or "db-1:9100: 93.2" (host:port, not a key)
    if " " in key and not known_key(key):
        return None  # "CPU on db-1: 93%" is a sentence; "Rule Name: x" is a known key
    return key, value


def inline_pairs(text: str) -> list[tuple[str, str]]:
    """Every `key=value` / `key="a value"` token in `text`, URLs skipped."""
    pairs = []
    for key, value in _INLINE_RE.findall(_URL_RE.sub(" ", text)):
        pairs.append((key, value[1:-1] if value.startswith('"') else value))
    return pairs


def tag_pairs(value: str) -> list[tuple[str, str]]:
    """The pairs of a tag list: `[ident=db-1 cpu=cpu-total]`, `["a=b","c=d"]`, Go's print of
    a map, `map[alertname:HostDown instance:10.0.0.1:9100]`, or a JSON object
    (`{"host": "web-1"}`, SLS; only its text, number and boolean values)."""
    text = value.strip()
    if text.startswith("{") and text.endswith("}"):
        return _json_pairs(text)
    if text.startswith("map[") and text.endswith("]"):
        return [
            (key, item)
            for key, item in _GO_MAP_ITEM_RE.findall(text[4:-1])
            if key not in ("http", "https")
        ]
    return inline_pairs(text)


def _json_pairs(text: str) -> list[tuple[str, str]]:
    try:
        data = json.loads(text[:_JSON_LIMIT])
    except ValueError:
        return inline_pairs(text)
    if not isinstance(data, dict):
        return []
    return [
        (str(key), json.dumps(item) if isinstance(item, bool) else str(item))
        for key, item in list(data.items())[:MAX_FIELDS]
        if isinstance(item, str | int | float)
    ]


def well_known_key(key: str) -> bool:
    """Whether `key` is a name alert texts use for a known field (alertname, 告警级别, host…)."""
    lowered = normalise_key(key)
    return known_key(key) or lowered in IDENTITY_KEYS or lowered in SEVERITY_KEYS


@dataclass
class FieldSet:
    """Facts collected from one alert's text; first value for a name wins.

    `free_labels`: unknown label-like keys become labels (plain text) or annotations (formats
    whose fingerprint uses labels, where a `cpu: 91%` line must not split an incident).
    `seen` holds the canonical names set so far (a block reader starts a new alert when a name
    comes again).
    """

    free_labels: bool = True
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    starts_at: str = ""
    ends_at: str = ""
    status: str = ""
    state_level: str = ""  # the level a monitor's state implies ("State: DOWN"), if any
    weakly_named: bool = False  # the alert name came from a monitored item (监控项), not a rule
    url: str = ""

    def add(self, key: str, value: str, *, url: str | None = None) -> None:
        """Route `key: value`; `url` is the line's link target, for link-valued keys."""
        if normalise_key(key) in _STATE_KEYS and _WORDY_RE.search(value):
            # "Resolved: ValueError: …": the key is the state, the value the alert's name
            self.status = self.status or key
            self.add_label("alertname", value)
            return
        kind, name = route(key)
        if normalise_key(key) in LEVEL_STATUS_KEYS:  # Nightingale: "S2 Triggered"
            self.status = self.status or value
            value = _STATE_WORDS_RE.sub(" ", value).strip()
        if kind == "label" and not self.free_labels and not well_known_key(key):
            kind = "annotation"
        if kind == "label" and name == "alertname":
            self._add_name(normalise_key(key), value)
        elif kind == "label":
            self.add_label(name, value)
        elif kind == "tags":
            for tag, tag_value in tag_pairs(value):
                self.add_label(tag, tag_value)
        elif kind == "annotation" and _BARE_URL_RE.match(value) and not name.endswith("_url"):
            self.add_annotation(f"{name}_url", value)  # "报警详情: http://…" is a link, not text
        elif kind == "annotation":
            self.add_annotation(name, url if name.endswith("_url") and url else value)
        elif kind == "starts":
            self.starts_at = self.starts_at or _zoned(value, key)
        elif kind == "ends":
            self.ends_at = self.ends_at or _zoned(value, key)
        elif kind == "status" and state_of(value) is None and severity_of(value):
            self.add_label("severity", value)  # Nagios' "State: CRITICAL" is a level
        elif kind == "status":
            self.status = self.status or value
            self.state_level = self.state_level or state_level(value)
        elif kind == "url":
            self.url = self.url or url or value

    def _add_name(self, key: str, value: str) -> None:
        """The alert's name: a rule's (报警规则: ecs_cpu_high) over a monitored item's (监控项:
        CPU使用率), whichever comes first; else the first one given."""
        weak = key in _ITEM_KEYS
        if self.weakly_named and not weak and value:
            self.labels["alertname"] = value
            self.weakly_named = False
        elif "alertname" not in self.labels and value:
            self.add_label("alertname", value)
            self.weakly_named = weak

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


def _zoned(value: str, key: str) -> str:
    """A time with the zone its key names ("Time (UTC): 02:00" is 02:00 UTC) written after it."""
    zone = key_zone(key)
    return f"{value} {zone.upper()}" if zone and value else value


def section_of(line: str) -> str:
    """`labels` / `annotations` when a (plain) line opens such a section (`Labels:`), else ""."""
    pair = read_pair(line)
    if pair and not pair[1]:
        return _SECTIONS.get(normalise_key(pair[0]), "")
    return ""


def collect(lines: Iterable[str], fields: FieldSet) -> list[str]:
    """Fill `fields` from the `key: value` lines and `Labels:`/`Annotations:` sections of
    `lines` (markdown allowed); return the other, free-text lines as plain text.

    A key with an empty value takes the next line as its value when it is bold
    (`**告警级别：**`) or a known key (`报警主机：`): cards often put a field's name and value on
    two lines. Other empty fields are dropped. Items of a section are bulleted `- key = value`
    lines (or, after 附加信息, any `key: value` line).
    """
    free: list[str] = []
    section = ""
    pending = ""
    for raw in lines:
        line = plain_line(raw)
        if not line:  # a key's value may follow a blank line ("Additional Info:", "", output)
            section = ""
            continue
        pair = read_pair(line)
        opened = section_of(line)
        if opened:
            section, pending = opened, ""
            continue
        if section and pair and pair[1] and not well_known_key(pair[0]):
            if section == "labels":
                fields.add_label(*pair)
            else:
                fields.add_annotation(*pair)
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
        elif pair:  # an empty field: its value may be on the next line
            pending = pair[0] if "**" in raw or known_key(pair[0]) else ""
        elif "**" in raw and known_key(line):  # "**报警主机**" over its value
            pending = line
        elif pending:
            fields.add(pending, line, url=link_url(raw))
            pending = ""
        else:
            _dated(line, fields)
            free.append(line)
    return free


def _dated(line: str, fields: FieldSet) -> None:
    """The start or end time a free sentence states, into `fields`."""
    found = _WHEN_RE.search(line[-_WHEN_SPAN:])
    if found and found["start"]:
        fields.starts_at = fields.starts_at or found["when"]
    elif found:
        fields.ends_at = fields.ends_at or found["when"]
