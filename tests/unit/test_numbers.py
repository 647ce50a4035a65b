"""The number a command names, as typed on Chinese and English keyboards."""

from __future__ import annotations

import pytest

from bot.commands.numbers import number_of


@pytest.mark.parametrize(
    ("word", "number"),
    [("7", 7), ("#7", 7), ("＃7", 7), ("７", 7), ("#12，", 12), ("3:", 3), ("#5）", 5)],
)
def test_numbers_as_typed(word: str, number: int) -> None:
    assert number_of(word) == number


@pytest.mark.parametrize("word", ["", "#", "x7", "7x", "²", "½", "-1", "1.5", "1" * 13, "七"])
def test_what_is_no_number(word: str) -> None:
    assert number_of(word) is None
