"""How Feishu answers a card it refuses, and the walk over a card's components that every card
rule shares (`bot.sandbox.cardcheck`, `bot.sandbox.cardschema`).

A refused card is answered `400 / 230099` ("Failed to create card content") with the sub-code in
`ext` (`ext=ErrCode: 11310; ErrMsg: card table number over limit; ErrorValue: table`), some
sub-codes with the `ErrPath` of the component (`ROOT -> body -> elements -> [1](tag: action)`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

CARD_INVALID = 230099
TOO_LONG = 230025
BAD_MENTION = 100290
OVER_LIMIT = 11310  # element count, tables, duplicate names, an img without key, nesting
BAD_IMAGE = 200570
BAD_STRUCTURE = 200621  # the sub-code for a structure 2.0 does not accept
REMOVED_TAG = 200861  # the sub-code for a 1.0 component in a 2.0 card
NOT_SHARED = 300302  # a 2.0 card with update_multi false
PARSE_ERROR = "parse card json err, please check whether the card json is correct"


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


def invalid(sub: int, message: str, path: str = "") -> CardProblem:
    """A 230099 refusal with this sub-code."""
    return CardProblem(CARD_INVALID, sub, message, path)


def parse_error(value: str, path: str = "") -> CardProblem:
    """A 230099 / 200621 refusal: JSON 2.0 has no such property, value or place for it."""
    return invalid(BAD_STRUCTURE, f"{PARSE_ERROR}; ErrorValue: {value}", path)


def components(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every component and element (a dict with a `tag`) under `node`, with Feishu's ErrPath
    (`ROOT -> body -> elements -> [1](tag: action)`)."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            tag = item.get("tag") if isinstance(item, dict) else None
            where = f"{path} -> [{index}](tag: {tag})" if tag else f"{path} -> [{index}]"
            yield from components(item, where)
    elif isinstance(node, dict):
        if isinstance(node.get("tag"), str):
            yield path, node
        for key, value in node.items():
            if isinstance(value, (dict, list)) and key != "value":  # a callback's own data
                yield from components(value, f"{path} -> {key}")


def children(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The components directly inside a container: its `elements`, a column set's columns'
    elements (a column is part of its column set, not a level of its own)."""
    for element in node.get("elements") or ():
        if isinstance(element, dict):
            yield element
    for column in node.get("columns") or ():
        if isinstance(column, dict):
            yield from children(column)
