"""Views full of what alerts, plugins, models and people really put in a card, built from the
view's own type hints (so a field added later is filled too). Three fillings:

- `HOSTILE`: every text a long run of mentions of strangers and everyone, `</font>` and
  `</at>` closers, HTML, links, markdown tables, code fences, emoji (joined sequences too),
  right-to-left text and bidi overrides; every list and mapping holds hundreds of them;
  numbers are huge;
- `EMPTY`: no items anywhere, every text empty, every number zero (an idle tenant: no
  incidents, no schedules, a plugin that said nothing);
- `HUGE`: a thousand items at the top (a storm's incidents), a 10,000-character title each.

    view = HOSTILE(IncidentView)          # an IncidentView no sane alert would produce
    rows = EMPTY(tuple[PluginRow, ...], category="diagnostic")  # codes stay codes
    HOSTILE.text, HOSTILE.many, HOSTILE.key(3)   # a text, a count, a mapping key of the filling
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

EVIL = (
    "</at><at id=all></at><at user_id=boss></at><at email=lead@corp.example></at>"
    '<at user_id="all">all</at><at id=oc_ops></at>'
    "<at id=ou_stranger></at>[click](https://evil.example) `x` ```\n<font color='red'>**b**"
    "</font></font><text_tag color='red'>P0</text_tag>\n| host | load |\n|---|---:|\n| db-1 | 9 |\n"
    "# 标题 🔥告警 👩‍💻🏳️‍🌈 &lt;b&gt; مرحبا بالعالم שלום \x00\u202e\u2067"
)
TEXT = EVIL * 50  # about 10,000 characters
MOMENT = datetime(2025, 3, 4, 1, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Filling:
    """How to fill a view: the text of every string, the items of a list or mapping at each
    depth (the last repeats below), and the numbers."""

    name: str
    text: str
    counts: tuple[int, ...]
    number: int
    span: timedelta

    @property
    def many(self) -> int:
        """Items of a top-level list."""
        return self.counts[0]

    def key(self, n: int) -> str:
        """The `n`th key of a mapping (every key its own, as hostile as the texts)."""
        return f"{self.text[:200]}{n}"

    def __call__(self, shape: Any, depth: int = 0, **codes: Any) -> Any:
        """A value of the type `shape` (a dataclass, or any type a view's field has); a field
        named in `codes` (a status, a kind: what the bot itself decides) gets that value, at
        any depth."""
        origin = typing.get_origin(shape)
        args = typing.get_args(shape)
        count = self.counts[min(depth, len(self.counts) - 1)]
        if origin in (typing.Union, types.UnionType):
            return self(next(arg for arg in args if arg is not type(None)), depth, **codes)
        if origin is typing.Literal:
            return args[0]
        if dataclasses.is_dataclass(shape) and isinstance(shape, type):
            hints = typing.get_type_hints(shape)
            given = {
                f.name: codes[f.name]
                if f.name in codes
                else self(hints[f.name], depth + 1, **codes)
                for f in dataclasses.fields(shape)
                if f.init
            }
            return shape(**given)
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(self(args[0], depth + 1, **codes) for _ in range(count))
            return tuple(self(arg, depth + 1, **codes) for arg in args)
        if origin in (list, Sequence):
            return [self(args[0], depth + 1, **codes) for _ in range(count)]
        if origin in (dict, Mapping):
            value = args[1] if args else Any
            return {self.key(n): self(value, depth + 1, **codes) for n in range(count)}
        return self._scalar(shape)

    def _scalar(self, kind: Any) -> Any:
        if kind is bool:
            return bool(self.number)
        if kind is int:
            return self.number
        if kind is float:
            return self.number + 0.789 if self.number else 0.0
        if kind is datetime:
            return MOMENT
        if kind is timedelta:
            return self.span
        return self.text  # str, Any, object


HOSTILE = Filling("hostile", TEXT, (300, 30, 3), 987_654_321, timedelta(days=400))
EMPTY = Filling("empty", "", (0,), 0, timedelta(0))
HUGE = Filling("huge", TEXT, (1000, 1000, 1), 987_654_321, timedelta(days=400))


def hostile(shape: Any, **codes: Any) -> Any:
    """`HOSTILE(shape, **codes)`."""
    return HOSTILE(shape, **codes)
