"""`key=value` arguments of chat commands (`/run pg_vacuum table=orders`) into a parameter dict.

Values are shell-style quoted when they hold spaces (`contains="disk full"`); a dotted key
nests (`args.service=web` gives `{"args": {"service": "web"}}`); a value is always a string —
the plugin's parameter model converts and checks it. Nothing here is ever run: the result only
goes to a pydantic model.

Usage::

    parse_pairs('table=orders mode="cancel" args.service=web')
    # {"table": "orders", "mode": "cancel", "args": {"service": "web"}}
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Literal

KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,3}")
MAX_PAIRS = 32
MAX_VALUE = 4000


# why arguments are not `key=value` pairs; the chat words it from `pairs.<problem>`
PairsProblem = Literal[
    "unbalanced_quotes", "too_many", "not_a_pair", "bad_name", "too_long", "conflict", "twice"
]


class PairsError(ValueError):
    """The arguments are not `key=value` pairs: `reason` says why, `values` which part (the
    chat words them from `pairs.<reason>`); the message is for logs."""

    def __init__(self, reason: PairsProblem, message: str, **values: str) -> None:
        super().__init__(message)
        self.reason: PairsProblem = reason
        self.values = values


def parse_pairs(text: str) -> dict[str, Any]:
    """Parse `key=value …`; PairsError (a short reason, no echo of long input) on a problem."""
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError:
        raise PairsError("unbalanced_quotes", "unbalanced quotes") from None
    if len(tokens) > MAX_PAIRS:
        raise PairsError("too_many", f"at most {MAX_PAIRS} parameters", limit=str(MAX_PAIRS))
    params: dict[str, Any] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep:
            shown = repr(token[:40])
            raise PairsError("not_a_pair", f"{shown} is not key=value", token=shown)
        if not KEY.fullmatch(key):
            shown = repr(key[:40])
            raise PairsError("bad_name", f"{shown} is not a parameter name", name=shown)
        if len(value) > MAX_VALUE:
            raise PairsError(
                "too_long",
                f"the value of {key} is longer than {MAX_VALUE} characters",
                name=key,
                limit=str(MAX_VALUE),
            )
        _put(params, key.split("."), value)
    return params


def _put(params: dict[str, Any], path: list[str], value: str) -> None:
    node = params
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            key = ".".join(path)
            raise PairsError("conflict", f"{key} conflicts with {part}", name=key, part=part)
        node = child
    if path[-1] in node:
        key = ".".join(path)
        raise PairsError("twice", f"{key} is given twice", name=key)
    node[path[-1]] = value
