"""What real Feishu refuses in a card, refused the same way by the emulator.

Sending, replying with or updating an interactive message whose card breaks these rules is
answered `400 / 230099` ("Failed to create card content") with the sub-code in `ext`, and
nothing is stored:

- a mention (`<at id=…>`, `<at user_id=…>`, `<at open_id=…>`) of something that is not a
  person's open_id (`ou_…`) or `all`: sub-code 100290, as Feishu answers a card that mentions
  `system` or `alert`;
- in a schema 2.0 card, the 1.0 components 2.0 removed (`note`, `action`), a body without an
  `elements` list, or `elements` at the card's root instead of under `body`;
- a card larger than 30 KB.

    problem = card_problem(card)   # None, or (sub-code, what is wrong)
"""

from __future__ import annotations

import json
import re
from typing import Any

CARD_INVALID = 230099
BAD_MENTION = 100290
BAD_STRUCTURE = 200621  # the emulator's sub-code for a structure 2.0 does not accept
MAX_BYTES = 30 * 1024
REMOVED_IN_V2 = frozenset({"note", "action"})
_MENTION = re.compile(r"""<at\s+(?:id|user_id|open_id)\s*=\s*["']?([^"'\s>]*)""", re.IGNORECASE)
_PERSON = re.compile(r"ou_[A-Za-z0-9_-]{1,64}")


def card_problem(card: dict[str, Any]) -> tuple[int, str] | None:
    """The first rule `card` breaks, as (sub-code, message), or None."""
    encoded = json.dumps(card, ensure_ascii=False)
    if len(encoded.encode("utf-8")) > MAX_BYTES:
        return BAD_STRUCTURE, f"card content exceeds {MAX_BYTES} bytes"
    for found in _MENTION.finditer(encoded.replace('\\"', '"')):
        person = found.group(1)
        if person != "all" and not _PERSON.fullmatch(person):
            return BAD_MENTION, f"invalid at id: {person!r} is not a user's open_id"
    if card.get("schema") != "2.0":
        return None
    if "elements" in card:
        return BAD_STRUCTURE, "schema 2.0 puts elements under body, not at the root"
    body = card.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("elements"), list):
        return BAD_STRUCTURE, "schema 2.0 needs body.elements"
    removed = _removed_tag(body["elements"])
    if removed:
        return BAD_STRUCTURE, f"cards of schema 2.0 no longer support the tag {removed!r}"
    return None


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
