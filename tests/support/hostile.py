"""Views full of what alerts, plugins, models and people really put in a card, built from the
view's own type hints (so a field added later is filled too): every text is a long run of
mentions of strangers and everyone, HTML, links, markdown tables, code fences, emoji and wide
characters; every list and mapping holds hundreds of them; numbers are huge.

    view = hostile(IncidentView)          # an IncidentView no sane alert would produce
    rows = hostile(tuple[PluginRow, ...], category="diagnostic")  # codes stay codes
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

EVIL = (
    "</at><at id=all></at><at user_id=boss></at><at email=lead@corp.example></at>"
    "<at id=ou_stranger></at>[click](https://evil.example) `x` ```\n<font color='red'>**b**"
    "</font><text_tag color='red'>P0</text_tag>\n| host | load |\n|---|---:|\n| db-1 | 9 |\n"
    "# 标题 🔥告警 &lt;b&gt; \x00\u202e"
)
TEXT = EVIL * 60  # about 10,000 characters
MOMENT = datetime(2025, 3, 4, 1, 30, tzinfo=UTC)
MANY = (300, 30, 3)  # items of a list or mapping at each depth (then 3)


def hostile(shape: Any, depth: int = 0, **codes: Any) -> Any:
    """A hostile value of the type `shape` (a dataclass, or any type a view's field has); a
    field named in `codes` (a status, a kind: what the bot itself decides) gets that value,
    at any depth."""
    origin = typing.get_origin(shape)
    args = typing.get_args(shape)
    count = MANY[min(depth, len(MANY) - 1)]
    if origin in (typing.Union, types.UnionType):
        return hostile(next(arg for arg in args if arg is not type(None)), depth, **codes)
    if origin is typing.Literal:
        return args[0]
    if dataclasses.is_dataclass(shape) and isinstance(shape, type):
        hints = typing.get_type_hints(shape)
        given = {
            f.name: codes[f.name] if f.name in codes else hostile(hints[f.name], depth + 1, **codes)
            for f in dataclasses.fields(shape)
            if f.init
        }
        return shape(**given)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(hostile(args[0], depth + 1, **codes) for _ in range(count))
        return tuple(hostile(arg, depth + 1, **codes) for arg in args)
    if origin in (list, Sequence):
        return [hostile(args[0], depth + 1, **codes) for _ in range(count)]
    if origin in (dict, Mapping):
        value = args[1] if args else Any
        return {f"{EVIL}{n}": hostile(value, depth + 1, **codes) for n in range(count)}
    return _scalar(shape)


def _scalar(kind: Any) -> Any:
    if kind is bool:
        return True
    if kind is int:
        return 987_654_321
    if kind is float:
        return 123_456.789
    if kind is datetime:
        return MOMENT
    if kind is timedelta:
        return timedelta(days=400)
    return TEXT  # str, Any, object
