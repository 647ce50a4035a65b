"""What real Feishu refuses in a card, refused the same way by the emulator.

Sending, replying with or updating an interactive message whose card breaks these rules is
answered `400 / 230099` ("Failed to create card content") with the sub-code in `ext`, as
`ext=ErrCode: 11310; ErrMsg: card table number over limit; ErrorValue: table`, and nothing is
stored. The sub-codes and texts are those of the open platform's im-v1 message create/reply
pages ("230099 Sub-error code" table) or of real answers quoted in public code:

- a mention of something that is not a person (100290, "There is an invalid user resource
  (at/person) in your card"): `<at id=…>` (also `user_id=`, `open_id=`, `email=`, each of
  `ids=a,b`), a `person` element's `user_id`, a `person_list`'s `persons[].id`, a person
  picker's option; `all` is the everyone-mention. With the tenant's people given (the emulator
  passes its users' open_ids and user_ids and the bot's), only those are people; without them,
  only an open_id-shaped `ou_…` is;
- more than 200 components and elements in the card, counted through every nesting (11310,
  "element exceeds the limit"; card JSON 2.0 structure: "一张卡片最多支持 200 个元素");
- more than 5 tables, `table` components and markdown tables together (11310, "card table
  number over limit"; table component: "单张卡片最多支持放置五个表格组件");
- two interactive components with the same `name` (11310, "name(x) duplicate");
- an `img` without `img_key` (11310, "img element must contain img_key") or with a key that is
  no uploaded image's (`img_…`) (200570, "card contains invalid image keys");
- in a schema 2.0 card, the JSON 2.0 structure (`bot.sandbox.cardschema`: known properties and
  values only, elements under `body`, shared, no removed tag, forms at the root of the body and
  complete, containers at most five deep);
- a card larger than 30 KB: `400 / 230025`, "The length of the message content reaches its
  limit." (no sub-code).

    problem = card_problem(card, people)   # None, or CardProblem(code, sub-code, message)
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from typing import Any

from bot.sandbox.cardschema import v2_problem
from bot.sandbox.cardtree import (
    BAD_IMAGE,
    BAD_MENTION,
    CARD_INVALID,
    OVER_LIMIT,
    TOO_LONG,
    CardProblem,
    components,
    invalid,
)

__all__ = ["CARD_INVALID", "TOO_LONG", "CardProblem", "card_problem"]

MAX_BYTES = 30 * 1024
MAX_ELEMENTS = 200
MAX_TABLES = 5
EVERYONE = "all"
PICKERS = frozenset({"select_person", "multi_select_person"})
_MENTION = re.compile(
    r"""<at\s+(id|ids|user_id|open_id|email)\s*=\s*["']?([^"'\s>]*)""", re.IGNORECASE
)
_PERSON = re.compile(r"ou_[A-Za-z0-9_-]{1,64}")
_TABLE_RULE = re.compile(r"\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)+\|?\s*|\s*\|\s*:?-+:?\s*\|\s*")
_FENCE = re.compile(r"\s*(`{3,}|~{3,})")


def card_problem(card: dict[str, Any], people: Collection[str] | None = None) -> CardProblem | None:
    """The first rule `card` breaks, or None; `people`: the ids that are persons (see above)."""
    encoded = json.dumps(card, ensure_ascii=False)
    if len(encoded.encode("utf-8")) > MAX_BYTES:
        return CardProblem(TOO_LONG, 0, "The length of the message content reaches its limit.")
    if card.get("schema") == "2.0":
        problem = v2_problem(card)
        if problem:
            return problem
    return _mention_problem(card, people) or _content_problem(card)


def _mention_problem(card: dict[str, Any], people: Collection[str] | None) -> CardProblem | None:
    """A mentioned id that is no person's."""
    for person in _mentioned(card):
        is_person = person in people if people is not None else _PERSON.fullmatch(person)
        if person != EVERYONE and not is_person:
            return invalid(
                BAD_MENTION,
                f"There is an invalid user resource(at/person) in your card; ErrorValue: {person}",
            )
    return None


def _content_problem(card: dict[str, Any]) -> CardProblem | None:
    """Limits on the card's components: their number, tables, names, images."""
    nodes = [node for _, node in components(card, "ROOT")]
    if len(nodes) > MAX_ELEMENTS:
        return invalid(OVER_LIMIT, "element exceeds the limit")
    tables = sum(
        1 if node.get("tag") == "table" else _markdown_tables(node.get("content"))
        for node in nodes
        if node.get("tag") in ("table", "markdown", "lark_md")
    )
    if tables > MAX_TABLES:
        return invalid(OVER_LIMIT, "card table number over limit; ErrorValue: table")
    named: set[str] = set()
    for node in nodes:
        name = node.get("name")
        if isinstance(name, str):
            if name in named:
                return invalid(OVER_LIMIT, f"name({name}) duplicate")
            named.add(name)
    for node in nodes:
        if node.get("tag") not in ("img", "custom_icon"):
            continue
        key = node.get("img_key")
        if not isinstance(key, str) or not key:
            shown = json.dumps({k: v for k, v in node.items() if k != "tag"}, ensure_ascii=False)
            return invalid(OVER_LIMIT, f"img element must contain img_key; ErrorValue: {shown}")
        if not key.startswith("img_"):
            return invalid(
                BAD_IMAGE, f"card contains invalid image keys; ErrorValue: image key {key}"
            )
    return None


def _mentioned(card: dict[str, Any]) -> Iterator[str]:
    """Every id the card mentions: `<at …>` in any text, person elements, person pickers."""
    for text in _strings(card):
        for found in _MENTION.finditer(text):
            kind, value = found.group(1).lower(), found.group(2)
            yield from (value.split(",") if kind == "ids" else [value])
    for _, node in components(card, "ROOT"):
        tag = node.get("tag")
        if tag == "person":
            yield str(node.get("user_id", ""))
        elif tag == "person_list":
            yield from (
                str(p.get("id", "")) for p in node.get("persons", []) if isinstance(p, dict)
            )
        elif tag in PICKERS:
            yield from (
                str(o.get("value", "")) for o in node.get("options", []) if isinstance(o, dict)
            )


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _markdown_tables(content: Any) -> int:
    """How many tables card markdown draws: a delimiter row (`|---|---|`) under a row with a
    `|`, outside code fences."""
    if not isinstance(content, str):
        return 0
    count, fenced, previous = 0, False, ""
    for line in content.split("\n"):
        if _FENCE.match(line):
            fenced, previous = not fenced, ""
            continue
        if not fenced and "|" in previous and _TABLE_RULE.fullmatch(line):
            count += 1
        previous = "" if fenced else line
    return count
