"""Cleaning untrusted alert text: invisible characters out, lengths capped, markup flattened.

Alert text comes from other systems and from chat; it is hostile until cleaned. Cleaning removes
control characters (C0/C1), format characters that change how text *looks* without being visible
(bidi overrides, zero-width spaces, BOM) and lone surrogates, then caps the length. Text is never
unescaped, evaluated or interpreted: `$(rm -rf /)` stays those eleven characters.
"""

from __future__ import annotations

import json
import re

ELLIPSIS = "…"

# C0/C1 controls except \t \n \r, Unicode format characters (Cf) and lone surrogates (Cs).
_INVISIBLE = (
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\ud800-\udfff"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
_INVISIBLE_RE = re.compile(f"[{_INVISIBLE}]")
_SPACES_RE = re.compile(r"\s+")
# each run of blanks is tried from its start only ("(?<!…)"): tried from every blank, a
# hostile line of spaces took quadratic time
_TRAILING_RE = re.compile(r"(?<![ \t])[ \t]+\n")
_BLANK_RUN_RE = re.compile(r"\n{3,}")
_BREAKS = str.maketrans({"\r": "\n", "\u2028": "\n", "\u2029": "\n", "\t": " "})

# Lark markdown and the HTML-ish tags alert bots put into cards
_TAG_RE = re.compile(r"</?(?:font|at|a|b|i|u|s|br|text_tag|strong|em|span)\b[^>]{0,200}>", re.I)
_LINK_RE = re.compile(r"\[([^\[\]\n]{0,300})\]\((\S{0,2048}?)\)")  # "[x]()": no URL given
_LINK_URL_RE = re.compile(r"\[[^\[\]\n]{0,300}\]\((\S{1,2048}?)\)")
_EMPHASIS_RE = re.compile(r"\*\*|~~|`")
_HEADING_RE = re.compile(r"^\s*(?:#{1,6}\s+|>\s*)+")
_ITALIC_LINE_RE = re.compile(r"^\*(?!\s)(.+?)(?<!\s)\*$")
# a key in italics, Slack-style templates' "*Alert:* HighCPU", "• *instance:* `web-1`"
_ITALIC_KEY_RE = re.compile(r"^(\s*(?:[-•·]\s*)?)\*(?![\s*])([^*\n]{1,40}?[:：])\*(?!\*)")
# pictographs, dingbats, arrows, geometric shapes and their joiners/variation selectors: the
# decoration templates put before a key ("🖥 报警主机") or around a title ("🔥 FIRING 🔥")
_DECORATION = (
    "\u2190-\u21ff\u2300-\u23ff\u2460-\u24ff\u25a0-\u27bf\u2900-\u297f\u2b00-\u2bff"
    "\u3030\u303d\u3297\u3299\ufe0f\u200d\U0001f000-\U0001faff"
)
_EDGE = f"[{_DECORATION}\\s]"
_DECORATION_EDGES_RE = re.compile(f"^{_EDGE}+|(?<!{_EDGE}){_EDGE}+$")
# Go's text/template prints a missing map key as "<no value>", and a placeholder a forwarder
# could not fill stays as written ("${labels.instance}", "{{ .Labels.pod }}"): the value is empty
NO_VALUE_RE = re.compile(r"<no value>|\$\{[\w.\-]{1,64}\}|\{\{[^{}\n]{1,64}\}\}", re.I)
# the edges of a line that only separates two alerts: "-----", "--- Alert ---", "—— 告警 2 ——"
_SEPARATOR_EDGE = r"(?:[-=*_~]{3,}|[—–]{2,}|[·•]{3,}|[\u2500-\u257f]{2,})"  # ━━━ ═══ ───
_SEPARATOR_START_RE = re.compile(f"^{_SEPARATOR_EDGE}")
_SEPARATOR_EDGES_RE = re.compile(f"^{_SEPARATOR_EDGE}|{_SEPARATOR_EDGE}$")
_SEPARATOR_END_RE = re.compile(f"\\S\\s*{_SEPARATOR_EDGE}$")

# a line that only introduces the text below it: "Apache SkyWalking Alarm:", "告警内容："
_SEPARATOR_LIMIT = 400
_CAPTION_RE = re.compile(r"^[^:：\n]{1,60}[:：]$")

_BIG_INT_BITS = 200


def cap(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start and an ellipsis (total `limit`)."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS


def as_text(value: object, limit: int) -> str:
    """Any JSON-ish value as a string, never longer than about `limit` before cleaning.

    Strings pass through; numbers and booleans print as JSON would; objects and lists become
    compact JSON text (kept as data, not interpreted).
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value[: limit * 2 + 64]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() > _BIG_INT_BITS:
            return f"<integer of {value.bit_length()} bits>"
        return str(value)
    if isinstance(value, float):
        return repr(value)
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)
    except (TypeError, ValueError, RecursionError):
        return f"<unreadable {type(value).__name__}>"
    return text[: limit * 2 + 64]


def strip_invisible(text: str) -> str:
    """Remove control/format characters and lone surrogates; keep \\t, \\n and \\r."""
    if text.isprintable():  # none of them is printable: nothing to remove (most labels)
        return text
    return _INVISIBLE_RE.sub("", text)


def clean_line(value: object, limit: int) -> str:
    """One line of text: invisible characters removed, whitespace collapsed, trimmed, capped."""
    if isinstance(value, str) and len(value) <= limit and _is_clean_line(value):
        return value  # most labels: nothing to remove, collapse, trim or cap
    return cleaned_line(value, limit)


def cleaned_line(value: object, limit: int) -> str:
    """`clean_line` the long way, for any value."""
    text = strip_invisible(as_text(value, limit))
    return cap(_SPACES_RE.sub(" ", text).strip(), limit)


def _is_clean_line(text: str) -> bool:
    """`clean_line` would return `text` unchanged: printable (so no control, format, or
    whitespace character but the ASCII space), no double space, nothing to trim."""
    return text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " "


def clean_block(value: object, limit: int) -> str:
    """Multi-line text: line breaks kept (normalised to \\n), tabs to spaces, capped."""
    if isinstance(value, str) and len(value) <= limit and _is_clean_block(value):
        return value  # one line with nothing to remove, trim or cap (most annotations)
    return cleaned_block(value, limit)


def cleaned_block(value: object, limit: int) -> str:
    """`clean_block` the long way, for any value."""
    text = strip_invisible(as_text(value, limit))
    text = text.replace("\r\n", "\n").translate(_BREAKS)
    text = _BLANK_RUN_RE.sub("\n\n", _TRAILING_RE.sub("\n", text))
    return cap(text.strip(), limit)


def _is_clean_block(text: str) -> bool:
    """`clean_block` would return `text` unchanged: printable (so one line, no control or
    format character, no whitespace but the ASCII space) and nothing to trim."""
    return text.isprintable() and text[:1] != " " and text[-1:] != " "


def link_url(line: str) -> str | None:
    """The target of the first markdown link `[text](url)` in `line`, if any."""
    found = _LINK_URL_RE.search(line)
    return found.group(1) if found else None


def plain_line(line: str) -> str:
    """A markdown/Lark-markdown line as plain text: links to their text, emphasis and tags off,
    Go's `<no value>` (and unfilled `${…}` / `{{…}}` placeholders) and the emoji around the text
    gone."""
    text = _TAG_RE.sub("", NO_VALUE_RE.sub("", line))
    text = _LINK_RE.sub(r"\1", text)
    text = _HEADING_RE.sub("", text)
    text = _ITALIC_KEY_RE.sub(r"\1\2", _EMPHASIS_RE.sub("", text)).strip()
    italic = _ITALIC_LINE_RE.match(text)
    if italic:
        text = italic.group(1)
    return _DECORATION_EDGES_RE.sub("", text).strip()


def separator_text(line: str) -> str | None:
    """The words of a line that only separates alerts (`-----` → "", `--- Alert ---` → "Alert",
    `==== 恢复通知 ====` → "恢复通知"), or None for any other line."""
    if len(line) > _SEPARATOR_LIMIT:  # a separator is a short line
        return None
    text = _HEADING_RE.sub("", _TAG_RE.sub("", line)).strip()  # "> <font>=====</font>"
    if not _SEPARATOR_START_RE.match(text):
        return None
    inner = plain_line(_SEPARATOR_EDGES_RE.sub("", text))
    # a long caption needs both edges: "***** Service Monitoring on icinga-master *****"
    limit = 60 if _SEPARATOR_END_RE.search(text) else 24
    if len(inner) > limit or re.search(r"[:：=\[\]()]", inner):
        return None
    return inner


def title_line(lines: list[str]) -> str:
    """The first of `lines` (plain text) that can title an alert: not empty, and not a caption
    that only introduces the next line (`Apache SkyWalking Alarm:` over the alarm's message),
    unless nothing else is left."""
    found = [line for line in lines if line]
    return next((line for line in found if not is_caption(line)), found[0] if found else "")


def is_caption(line: str) -> bool:
    """Whether a (plain) line only introduces the lines after it: "Apache SkyWalking Alarm:"."""
    return _CAPTION_RE.match(line) is not None
