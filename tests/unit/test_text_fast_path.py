"""The alert text cleaners skip their regular expression for printable text (most labels and
values in a storm): exact only while every character they remove is not printable. Clean text
is returned as it is, and a raw copy whose size is bounded by its characters is not measured."""

from __future__ import annotations

import random
import sys

from workflows.intake.raw import (
    _BUDGETS,
    _UNSTORABLE_RE,
    TRUNCATED_KEY,
    _Walk,
    cap_raw,
    serialised,
)
from workflows.intake.text import (
    _INVISIBLE_RE,
    clean_block,
    clean_line,
    cleaned_block,
    cleaned_line,
    strip_invisible,
)


def test_no_character_the_cleaners_remove_is_printable() -> None:
    removed = [
        hex(code)
        for code in range(sys.maxunicode + 1)
        if (_INVISIBLE_RE.match(chr(code)) or _UNSTORABLE_RE.match(chr(code)))
        and chr(code).isprintable()
    ]
    assert removed == []


def test_printable_text_is_kept_and_invisible_characters_still_go() -> None:
    assert strip_invisible("磁盘 /var 已用 91%") == "磁盘 /var 已用 91%"
    assert strip_invisible("a\u202eb\u200bc\x00d\te") == "abcd\te"
    assert clean_line("web\u00ad-3 ", 64) == "web-3"
    assert cap_raw({"k": "v\x00\ud800w", "ok": "plain"}) == {"k": "vw", "ok": "plain"}


def _texts() -> list[str]:
    """Short texts with every kind of whitespace, invisible and edge a cleaner looks at."""
    pieces = ["a", "磁盘", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2028", "\u200b"]
    pieces += ["\x00", "\x01", "\x1f", "\ud800", "\u202e", "…", "🔥", "x" * 7]
    rng = random.Random(22)
    texts = ["", " ", "a", "a b", " a", "a ", "a  b", "x" * 8, "x" * 9]
    for _ in range(4000):
        texts.append("".join(rng.choice(pieces) for _ in range(rng.randint(1, 6))))
    return texts


def test_clean_text_kept_as_is_is_what_the_long_way_gives() -> None:
    """The fast paths (text returned as it is) agree with the long way on every text, at,
    under and over the length limit."""
    for text in _texts():
        for limit in (8, 9, 64):
            assert clean_line(text, limit) == cleaned_line(text, limit), repr(text)
            assert clean_block(text, limit) == cleaned_block(text, limit), repr(text)


def test_the_raw_copys_size_bound_is_never_below_its_serialised_size() -> None:
    """`cap_raw` skips serialising a copy whose counted characters bound its size: the bound
    holds for escapes (six bytes a character), four-byte characters, numbers and nesting."""
    rng = random.Random(7)
    texts = _texts()

    def value(depth: int) -> object:
        kind = rng.randrange(8 if depth < 4 else 5)
        if kind == 0:
            return rng.choice([None, True, False, -(2**63) + 1, 1.5e-300, -0.0])
        if kind < 5:
            return rng.choice(texts) * rng.choice([1, 1, 30])
        if kind < 7:
            return {rng.choice(texts): value(depth + 1) for _ in range(rng.randint(0, 6))}
        return [value(depth + 1) for _ in range(rng.randint(0, 6))]

    for _ in range(2000):
        walk = _Walk(*_BUDGETS[0])
        copy = walk.mapping({"v": value(0), "w": value(0)}, 0)
        copy[TRUNCATED_KEY] = True
        assert len(serialised(copy)) <= walk.most
