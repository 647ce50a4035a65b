"""Finds English the bot wrote into a Chinese chat.

    english(text, values=("HighCPU on db-1", ...))   # -> ["diagnosis rejected by", ...]

What is not the bot's own wording is taken out first: code blocks and code spans, tags
(`<at id=…></at>`, `<font …>`), links, and the user values given (alert titles, labels,
names, commands the scenario typed or sent). What is left is English when it has

- a run of three or more English words (letters only, not an identifier: no digits, `_`,
  `.`, `/`, `=`; not an acronym like `CPU`; not CamelCase like `HighCPU`), punctuation such as
  `,` `;` `:` `(s)` between them allowed — "1 mount(s) below 90%", "Checks pass now; the alert";
- a catalogue-like code outside a code span: `incident.opened`, `gate.approved`;
- a closed-set status word standing alone (`escalated 1, resolved 2`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from cards.incident import finding
from cards.texts import en, texts
from plugins.contract import PluginResult

MIN_RUN = 2  # two English words in a row are already a phrase in a Chinese chat
_FENCE = re.compile(r"```.*?```", re.DOTALL)
_SPAN = re.compile(r"`[^`\n]*`")
_TAG = re.compile(r"<[^<>\n]*>")
_LINK = re.compile(r"https?://\S+")
_OPEN_ID = re.compile(r"\b(?:ou|oc|om|cli)_[A-Za-z0-9_-]+")
_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?(?:\(s\))?")
_EDGE = ".,;:!?()\"'"
_CODE = re.compile(r"(?<![\w./-])[a-z]+(?:_[a-z]+)*\.[a-z]+(?:_[a-z]+)*(?![\w/.-])")
STATUS_WORDS = frozenset(
    {
        "open",
        "acknowledged",
        "diagnosing",
        "awaiting_approval",
        "remediating",
        "verifying",
        "escalated",
        "resolved",
        "firing",
        "approved",
        "rejected",
        "expired",
        "cancelled",
        "succeeded",
        "failed",
        "skipped",
        "paused",
        "active",
        "pending",
    }
)


def _strip(text: str, values: Iterable[str]) -> str:
    text = _FENCE.sub(" \x00 ", text)
    text = _SPAN.sub(" \x00 ", text)
    text = _TAG.sub(" \x00 ", text)
    text = _LINK.sub(" \x00 ", text)
    for value in sorted({v for v in values if v and len(v) > 1}, key=len, reverse=True):
        text = text.replace(value, " \x00 ")
    return _OPEN_ID.sub(" \x00 ", text)


def _is_word(chunk: str) -> bool:
    bare = chunk.strip(_EDGE)
    if bare.endswith("(s"):
        bare += ")"
    if not bare or not _WORD.fullmatch(bare):
        return False
    letters = bare.replace("(s)", "").replace("'", "")
    if len(letters) > 1 and letters.isupper():
        return False  # an acronym: CPU, HTTP, MTTA
    return not any(ch.isupper() for ch in letters[1:])  # CamelCase is a name: HighCPU


def english(text: str, values: Iterable[str] = ()) -> list[str]:
    """The English in `text` outside code, tags, links and the given user values."""
    plain = _strip(text, values)
    found = [m.group() for m in _CODE.finditer(plain)]
    # any character outside ASCII (Chinese, fullwidth punctuation, ·) ends a run
    spaced = "".join(ch if ord(ch) < 128 else " \x00 " for ch in plain)
    run: list[str] = []
    for chunk in [*spaced.split(), "\x00"]:
        if _is_word(chunk):
            run.append(chunk)
            if chunk.strip(_EDGE).endswith("(s"):
                found.append(chunk)  # "mount(s)": English plural wording
            continue
        if len(run) >= MIN_RUN:
            found.append(" ".join(run))
        elif len(run) == 1 and run[0].strip(_EDGE).lower() in STATUS_WORDS:
            found.append(run[0])
        run = []
    return found


def worded(result: PluginResult) -> str:
    """A plugin result's finding as a Chinese card words it, checked on the way: it has a code
    that both catalogues word with its values, and the Chinese words carry no English beyond
    those values (a tool's words, shown as code). The Chinese line is returned."""
    assert result.code, f"no code for {result.summary!r}"
    key = f"card.finding.{result.code}"
    assert key in en.TEXTS, key
    found = {"code": result.code, "values": dict(result.values)}
    assert finding(found, texts("en")), key
    line = finding(found, texts("zh"))
    assert line is not None, key
    values = [str(value) for value in result.values.values()]
    assert english(line, values) == [], (line, english(line, values))
    return line


def bot_texts(emulator: Any, chat: str) -> Iterator[tuple[Any, str]]:
    """Every text the bot showed in `chat`: each message, each version of each card with its
    button labels, as (message, text)."""
    from bot.lark.events import card_text
    from tests.lark.testbot import card_buttons

    for message in emulator.transcript(chat):
        if message.sender_type != "bot":
            continue
        versions = message.card_history or ([message.card] if message.card else [])
        labels = " ".join(label for v in versions for label in card_buttons(v))
        for text in [message.text, *(card_text(v) for v in versions)]:
            yield message, f"{text} {labels}"


def chat_leaks(emulator: Any, chat: str, values: Iterable[str]) -> list[tuple[str, list[str]]]:
    """Every bot message in `chat` (each version of each card, with its button labels) that
    carries English of the bot's own, with the English found."""
    leaked = [(text, english(text, values)) for _, text in bot_texts(emulator, chat)]
    return [(text, found) for text, found in leaked if found]


# words that only make sense to a developer, outside code, tags, links and the given values
_DEVELOPER = (
    re.compile(r"(?<![\w/.-])[a-z]+(?:_[a-z0-9]+)+(?![\w/.-])"),  # snake_case: awaiting_approval
    re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),  # a UUID
    re.compile(r"\b[0-9a-f]{32}\b"),  # a run or trace id
    re.compile(r"Traceback|\b\w*(?:Error|Exception)\b|\bNone\b|\bnull\b"),  # a stack trace
    re.compile(r"\b(?:230\d{3}|9999\d{4})\b"),  # Lark's error codes
)


def developer_words(emulator: Any, chat: str, values: Iterable[str]) -> list[tuple[str, list[str]]]:
    """Every bot message in `chat` (each version of each card, with its buttons) that shows a
    developer's word: snake_case, an id where a #number is due, an exception, Lark's code, a
    card's mention markup in a text message (shown as it is, not as the person)."""
    shown: list[tuple[str, list[str]]] = []
    for message, text in bot_texts(emulator, chat):
        plain = _strip(text, values)
        found = [m.group() for pattern in _DEVELOPER for m in pattern.finditer(plain)]
        if message.msg_type == "text":
            found += re.findall(r"<at id=[^>]*>", text)
        if found:
            shown.append((text, found))
    return shown
