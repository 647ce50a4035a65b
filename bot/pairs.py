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
from typing import Any

KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,3}")
MAX_PAIRS = 32
MAX_VALUE = 4000


class PairsError(ValueError):
    """The arguments are not `key=value` pairs; the message says which part and why."""


def parse_pairs(text: str) -> dict[str, Any]:
    """Parse `key=value …`; PairsError (a short reason, no echo of long input) on a problem."""
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError:
        raise PairsError("unbalanced quotes") from None
    if len(tokens) > MAX_PAIRS:
        raise PairsError(f"at most {MAX_PAIRS} parameters")
    params: dict[str, Any] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep:
            raise PairsError(f"{token[:40]!r} is not key=value")
        if not KEY.fullmatch(key):
            raise PairsError(f"{key[:40]!r} is not a parameter name")
        if len(value) > MAX_VALUE:
            raise PairsError(f"the value of {key} is longer than {MAX_VALUE} characters")
        _put(params, key.split("."), value)
    return params


def _put(params: dict[str, Any], path: list[str], value: str) -> None:
    node = params
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise PairsError(f"{'.'.join(path)} conflicts with {part}")
        node = child
    if path[-1] in node:
        raise PairsError(f"{'.'.join(path)} is given twice")
    node[path[-1]] = value
