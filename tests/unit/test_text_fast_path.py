"""The alert text cleaners skip their regular expression for printable text (most labels and
values in a storm): exact only while every character they remove is not printable."""

from __future__ import annotations

import sys

from workflows.intake.raw import _UNSTORABLE_RE, cap_raw
from workflows.intake.text import _INVISIBLE_RE, clean_line, strip_invisible


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
