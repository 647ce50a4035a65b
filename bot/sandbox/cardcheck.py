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
- in a schema 2.0 card, the 1.0 components 2.0 removed (`note`, `action`): 200861, "cards of
  schema V2 no longer support this capability", with the `ErrPath` Feishu gives;
- in a schema 2.0 card, `config.update_multi` false (300302, "update_multi is false": 2.0 cards
  are shared cards only);
- in a schema 2.0 card (200621, "parse card json err, please check whether the card json is
  correct"; 2.0 refuses properties it does not have, where 1.0 ignored them): a key at the root
  other than `schema`, `config`, `card_link`, `header`, `body` (so no root `elements` and no
  `i18n_elements`), a body without an `elements` list or with a property 2.0 does not have, a
  header or config property 2.0 does not have, a header `template` that is not one of its
  colours, a button `type` / `size` / `width` that is not one of the button's, a `form`
  anywhere but directly in `body.elements`;
- a card larger than 30 KB: `400 / 230025`, "The length of the message content reaches its
  limit." (no sub-code).

    problem = card_problem(card, people)   # None, or CardProblem(code, sub-code, message)
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

CARD_INVALID = 230099
TOO_LONG = 230025
BAD_MENTION = 100290
OVER_LIMIT = 11310  # element count, tables, duplicate names, an img without key
BAD_IMAGE = 200570
BAD_STRUCTURE = 200621  # the sub-code for a structure 2.0 does not accept
REMOVED_TAG = 200861  # the sub-code for a 1.0 component in a 2.0 card
NOT_SHARED = 300302  # a 2.0 card with update_multi false
PARSE_ERROR = "parse card json err, please check whether the card json is correct"
MAX_BYTES = 30 * 1024
MAX_ELEMENTS = 200
MAX_TABLES = 5
EVERYONE = "all"
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
HEADER_KEYS = frozenset(
    {"title", "subtitle", "text_tag_list", "i18n_text_tag_list", "template", "icon", "padding"}
)
CONFIG_KEYS = frozenset(
    {
        "streaming_mode",
        "streaming_config",
        "summary",
        "locales",
        "enable_forward",
        "update_multi",
        "width_mode",
        "use_custom_translation",
        "enable_forward_interaction",
        "style",
    }
)
TEMPLATES = frozenset(
    {
        "blue",
        "wathet",
        "turquoise",
        "green",
        "yellow",
        "orange",
        "red",
        "carmine",
        "violet",
        "purple",
        "indigo",
        "grey",
        "default",
    }
)
BUTTON_TYPES = frozenset(
    {
        "default",
        "primary",
        "danger",
        "text",
        "primary_text",
        "danger_text",
        "primary_filled",
        "danger_filled",
        "laser",
    }
)
BUTTON_SIZES = frozenset({"tiny", "small", "medium", "large"})
_PIXELS = re.compile(r"[1-9][0-9]*px")
PICKERS = frozenset({"select_person", "multi_select_person"})
_MENTION = re.compile(
    r"""<at\s+(id|ids|user_id|open_id|email)\s*=\s*["']?([^"'\s>]*)""", re.IGNORECASE
)
_PERSON = re.compile(r"ou_[A-Za-z0-9_-]{1,64}")
_TABLE_RULE = re.compile(r"\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)+\|?\s*|\s*\|\s*:?-+:?\s*\|\s*")
_FENCE = re.compile(r"\s*(`{3,}|~{3,})")


@dataclass(frozen=True)
class CardProblem:
    """Why Feishu refuses a card: the response code, the card sub-code (0: none), the text and,
    for some sub-codes, where in the card (`ErrPath`)."""

    code: int
    sub: int
    message: str
    path: str = ""

    def response(self) -> str:
        """The `msg` of Feishu's answer."""
        if self.code != CARD_INVALID:
            return self.message
        where = f"ErrPath: {self.path}; " if self.path else ""
        return (
            f"Failed to create card content, ext=ErrCode: {self.sub}; {where}ErrMsg: {self.message}"
        )


def card_problem(card: dict[str, Any], people: Collection[str] | None = None) -> CardProblem | None:
    """The first rule `card` breaks, or None; `people`: the ids that are persons (see above)."""
    encoded = json.dumps(card, ensure_ascii=False)
    if len(encoded.encode("utf-8")) > MAX_BYTES:
        return CardProblem(TOO_LONG, 0, "The length of the message content reaches its limit.")
    if card.get("schema") == "2.0":
        problem = _v2_problem(card)
        if problem:
            return problem
    return _mention_problem(card, people) or _content_problem(card)


def _invalid(sub: int, message: str, path: str = "") -> CardProblem:
    return CardProblem(CARD_INVALID, sub, message, path)


def _parse_error(value: str) -> CardProblem:
    return _invalid(BAD_STRUCTURE, f"{PARSE_ERROR}; ErrorValue: {value}")


def _v2_problem(card: dict[str, Any]) -> CardProblem | None:
    """The 2.0 structure: known properties only, elements under `body`, shared, no removed tag,
    forms at the root of the body."""
    stray = sorted(set(card) - ROOT_KEYS)
    if stray:
        return _parse_error(stray[0])
    config = card.get("config", {})
    if not isinstance(config, dict) or set(config) - CONFIG_KEYS:
        return _parse_error(f"config.{min(set(config) - CONFIG_KEYS, default='')}")
    if config.get("update_multi") is False:
        return _invalid(NOT_SHARED, "update_multi is false")
    header = card.get("header", {})
    if not isinstance(header, dict) or set(header) - HEADER_KEYS:
        return _parse_error(f"header.{min(set(header) - HEADER_KEYS, default='')}")
    if "template" in header and header["template"] not in TEMPLATES:
        return _parse_error(f"header.template: {header['template']}")
    body = card.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("elements"), list):
        return _parse_error("body.elements")
    extra = sorted(set(body) - BODY_KEYS)
    if extra:
        return _parse_error(f"body.{extra[0]}")
    for path, node in _components(body["elements"], "ROOT -> body -> elements"):
        if node.get("tag") in REMOVED_IN_V2:
            return _invalid(
                REMOVED_TAG,
                "cards of schema V2 no longer support this capability; "
                f"ErrorValue: unsupported tag {node['tag']}",
                path,
            )
        if node.get("tag") == "form" and path.count("[") > 1:
            return _parse_error("tag: form")
        if node.get("tag") == "button" and _bad_button(node):
            return _parse_error(f"{path}: {_bad_button(node)}")
    return None


def _bad_button(node: dict[str, Any]) -> str:
    """The button property whose value 2.0 does not have (its type, size or width), or ""."""
    width = node.get("width", "default")
    if node.get("type", "default") not in BUTTON_TYPES:
        return f"type {node.get('type')}"
    if node.get("size", "medium") not in BUTTON_SIZES:
        return f"size {node.get('size')}"
    if width not in ("default", "fill") and not (
        isinstance(width, str) and _PIXELS.fullmatch(width)
    ):
        return f"width {width}"
    return ""


def _mention_problem(card: dict[str, Any], people: Collection[str] | None) -> CardProblem | None:
    """A mentioned id that is no person's."""
    for person in _mentioned(card):
        is_person = person in people if people is not None else _PERSON.fullmatch(person)
        if person != EVERYONE and not is_person:
            return _invalid(
                BAD_MENTION,
                f"There is an invalid user resource(at/person) in your card; ErrorValue: {person}",
            )
    return None


def _content_problem(card: dict[str, Any]) -> CardProblem | None:
    """Limits on the card's components: their number, tables, names, images."""
    nodes = [node for _, node in _components(card, "ROOT")]
    if len(nodes) > MAX_ELEMENTS:
        return _invalid(OVER_LIMIT, "element exceeds the limit")
    tables = sum(
        1 if node.get("tag") == "table" else _markdown_tables(node.get("content"))
        for node in nodes
        if node.get("tag") in ("table", "markdown", "lark_md")
    )
    if tables > MAX_TABLES:
        return _invalid(OVER_LIMIT, "card table number over limit; ErrorValue: table")
    named: set[str] = set()
    for node in nodes:
        name = node.get("name")
        if isinstance(name, str):
            if name in named:
                return _invalid(OVER_LIMIT, f"name({name}) duplicate")
            named.add(name)
    for node in nodes:
        if node.get("tag") not in ("img", "custom_icon"):
            continue
        key = node.get("img_key")
        if not isinstance(key, str) or not key:
            shown = json.dumps({k: v for k, v in node.items() if k != "tag"}, ensure_ascii=False)
            return _invalid(OVER_LIMIT, f"img element must contain img_key; ErrorValue: {shown}")
        if not key.startswith("img_"):
            return _invalid(
                BAD_IMAGE, f"card contains invalid image keys; ErrorValue: image key {key}"
            )
    return None


def _components(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every component and element (a dict with a `tag`) under `node`, with Feishu's ErrPath
    (`ROOT -> body -> elements -> [1](tag: action)`)."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            tag = item.get("tag") if isinstance(item, dict) else None
            where = f"{path} -> [{index}](tag: {tag})" if tag else f"{path} -> [{index}]"
            yield from _components(item, where)
    elif isinstance(node, dict):
        if isinstance(node.get("tag"), str):
            yield path, node
        for key, value in node.items():
            if isinstance(value, (dict, list)) and key != "value":  # a callback's own data
                yield from _components(value, f"{path} -> {key}")


def _mentioned(card: dict[str, Any]) -> Iterator[str]:
    """Every id the card mentions: `<at …>` in any text, person elements, person pickers."""
    for text in _strings(card):
        for found in _MENTION.finditer(text):
            kind, value = found.group(1).lower(), found.group(2)
            yield from (value.split(",") if kind == "ids" else [value])
    for _, node in _components(card, "ROOT"):
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
