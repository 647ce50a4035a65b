"""What real Feishu refuses in a card, refused the same way by the emulator.

Sending, replying with or updating an interactive message whose card breaks these rules is
answered `400 / 230099` ("Failed to create card content") with the sub-code in `ext` (as
`ext=ErrCode: 11310; ErrMsg: card table number over limit` for too many tables), and nothing
is stored:

- a mention (`<at id=…>`, `<at user_id=…>`, `<at open_id=…>`) of something that is not a
  person's open_id (`ou_…`) or `all`: sub-code 100290, as Feishu answers a card that mentions
  `system` or `alert`;
- in a schema 2.0 card, the 1.0 components 2.0 removed (`note`, `action`): sub-code 200861,
  "cards of schema V2 no longer support this capability; ErrorValue: unsupported tag …";
- in a schema 2.0 card (sub-code 200621, "parse card json err, please check whether the card
  json is correct"): a body without an `elements` list, `elements` (or any other key) at the
  card's root instead of under `body` (the root holds only `schema`, `config`, `card_link`,
  `header`, `body`), a body property 2.0 does not have, a `form` anywhere but directly in
  `body.elements` (forms live at the root, never nested, never inside another form);
- a card larger than 30 KB: `400 / 230025`, "The length of the message content reaches its
  limit." (no sub-code).

The texts are those of the open platform's error tables (im-v1 message create/reply/patch:
"Error code" and "230099 Sub-error code"); the sub-code's `ErrMsg` is followed by
`ErrorValue:` with what was wrong, as Feishu does.

    problem = card_problem(card)   # None, or CardProblem(code, sub-code or 0, message)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

CARD_INVALID = 230099
TOO_LONG = 230025
BAD_MENTION = 100290
BAD_STRUCTURE = 200621  # the sub-code for a structure 2.0 does not accept
REMOVED_TAG = 200861  # the sub-code for a 1.0 component in a 2.0 card
PARSE_ERROR = "parse card json err, please check whether the card json is correct"
MAX_BYTES = 30 * 1024
REMOVED_IN_V2 = frozenset({"note", "action"})
ROOT_KEYS = frozenset({"schema", "config", "card_link", "header", "body"})
BODY_KEYS = frozenset(
    {
        "elements",
        "direction",
        "padding",
        "horizontal_spacing",
        "horizontal_align",
        "vertical_spacing",
        "vertical_align",
    }
)
_MENTION = re.compile(r"""<at\s+(?:id|user_id|open_id)\s*=\s*["']?([^"'\s>]*)""", re.IGNORECASE)
_PERSON = re.compile(r"ou_[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class CardProblem:
    """Why Feishu refuses a card: the response code, the card sub-code (0: none), the text."""

    code: int
    sub: int
    message: str

    def response(self) -> str:
        """The `msg` of Feishu's answer."""
        if self.code == CARD_INVALID:
            return f"Failed to create card content, ext=ErrCode: {self.sub}; ErrMsg: {self.message}"
        return self.message


def card_problem(card: dict[str, Any]) -> CardProblem | None:
    """The first rule `card` breaks, or None."""
    encoded = json.dumps(card, ensure_ascii=False)
    if len(encoded.encode("utf-8")) > MAX_BYTES:
        return CardProblem(TOO_LONG, 0, "The length of the message content reaches its limit.")
    for found in _MENTION.finditer(encoded.replace('\\"', '"')):
        person = found.group(1)
        if person != "all" and not _PERSON.fullmatch(person):
            return _invalid(
                BAD_MENTION,
                f"There is an invalid user resource(at/person) in your card; ErrorValue: {person}",
            )
    if card.get("schema") != "2.0":
        return None
    stray = sorted(set(card) - ROOT_KEYS)
    if stray:
        return _invalid(BAD_STRUCTURE, f"{PARSE_ERROR}; ErrorValue: {stray[0]}")
    body = card.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("elements"), list):
        return _invalid(BAD_STRUCTURE, f"{PARSE_ERROR}; ErrorValue: body.elements")
    extra = sorted(set(body) - BODY_KEYS)
    if extra:
        return _invalid(BAD_STRUCTURE, f"{PARSE_ERROR}; ErrorValue: body.{extra[0]}")
    removed = _removed_tag(body["elements"])
    if removed:
        return _invalid(
            REMOVED_TAG,
            "cards of schema V2 no longer support this capability; "
            f"ErrorValue: unsupported tag {removed}",
        )
    for element in body["elements"]:
        if isinstance(element, dict) and _nested_form(element.get("elements")):
            return _invalid(BAD_STRUCTURE, f"{PARSE_ERROR}; ErrorValue: tag: form")
        if isinstance(element, dict) and element.get("tag") != "form" and _nested_form(element):
            return _invalid(BAD_STRUCTURE, f"{PARSE_ERROR}; ErrorValue: tag: form")
    return None


def _invalid(sub: int, message: str) -> CardProblem:
    return CardProblem(CARD_INVALID, sub, message)


def _nested_form(node: Any) -> bool:
    """Whether a `form` is inside `node` (its own tag not counted)."""
    children: list[Any] = []
    if isinstance(node, dict):
        children = [v for k, v in node.items() if k != "tag"]
    elif isinstance(node, list):
        children = list(node)
    for child in children:
        if isinstance(child, dict) and child.get("tag") == "form":
            return True
        if isinstance(child, (dict, list)) and _nested_form(child):
            return True
    return False


def _removed_tag(node: Any) -> str | None:
    if isinstance(node, dict):
        tag = node.get("tag")
        if isinstance(tag, str) and tag in REMOVED_IN_V2:
            return tag
        for value in node.values():
            found = _removed_tag(value)
            if found:
                return found
    elif isinstance(node, list):
        for item in node:
            found = _removed_tag(item)
            if found:
                return found
    return None
