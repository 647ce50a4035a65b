"""The `raw` copy kept beside a parsed alert: JSON-safe and at most 16 KiB serialised.

The copy is made by walking the original with budgets (string length, items per container,
nesting depth) that shrink until the serialised form fits. NUL characters and lone surrogates,
which Postgres JSONB and UTF-8 cannot store, are removed; other characters stay as data. A cut
copy carries `"_truncated": true`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

RAW_LIMIT = 16 * 1024
TRUNCATED_KEY = "_truncated"

_UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")
_BUDGETS = ((4096, 200, 12), (1024, 64, 8), (256, 32, 6), (64, 16, 4), (16, 8, 3))
_BIG_INT_BITS = 63


class _TooBig(Exception):
    """This budget already produced far more than fits: try the next one."""


class _Walk:
    def __init__(self, string_limit: int, item_limit: int, depth_limit: int) -> None:
        self.string_limit = string_limit
        self.item_limit = item_limit
        self.depth_limit = depth_limit
        self.cut = False
        self.chars = 0  # characters copied so far (a lower bound of the serialised size)
        self.others = 0  # numbers, booleans, nulls and containers copied so far

    @property
    def most(self) -> int:
        """An upper bound of the copy's serialised size, in bytes: a character takes at most
        six (`\\u001f`), a string's quotes and separator fit in its four counted characters,
        a number, boolean, null or container's brackets and separator in 25, and the outer
        braces and a `"_truncated":true` in 25 more."""
        return 6 * self.chars + 25 * (self.others + 1)

    def copy(self, value: object, depth: int = 0) -> Any:
        if isinstance(value, str):  # most values: first
            return self.string(value)
        self.others += 1
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            if value.bit_length() > _BIG_INT_BITS:
                self.cut = True
                return f"<integer of {value.bit_length()} bits>"
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else repr(value)
        if depth >= self.depth_limit:
            self.cut = True
            return "<nested too deep>"
        if isinstance(value, dict):
            return self.mapping(value, depth)
        if isinstance(value, list | tuple):
            if len(value) > self.item_limit:
                self.cut = True
            return [self.copy(item, depth + 1) for item in value[: self.item_limit]]
        return self.string(repr(value)[: self.string_limit + 1])

    def mapping(self, value: dict[Any, Any], depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= self.item_limit:
                self.cut = True
                break
            name = self.string((key if isinstance(key, str) else repr(key))[:256])
            result[name] = (
                self.string(item) if isinstance(item, str) else self.copy(item, depth + 1)
            )
        return result

    def string(self, value: str) -> str:
        if len(value) > self.string_limit:
            self.cut = True
            value = value[: self.string_limit] + "…"
        self.chars += len(value) + 4
        if self.chars > RAW_LIMIT:
            raise _TooBig
        if value.isprintable():  # NUL and surrogates are not: nothing to remove
            return value
        return _UNSTORABLE_RE.sub("", value)


def cap_raw(item: object) -> dict[str, Any]:
    """A JSON-safe copy of `item` (wrapped as `{"value": …}` if not an object), <= 16 KiB."""
    original = item if isinstance(item, dict) else {"value": item}
    for budget in _BUDGETS:
        walk = _Walk(*budget)
        try:
            copy: dict[str, Any] = walk.mapping(original, 0)
        except _TooBig:
            continue
        if walk.cut:
            copy[TRUNCATED_KEY] = True
        if walk.most <= RAW_LIMIT or len(serialised(copy)) <= RAW_LIMIT:
            return copy
    return {TRUNCATED_KEY: True}


def serialised(value: object) -> bytes:
    """The UTF-8 JSON form used to measure `raw` (compact, as stored)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
