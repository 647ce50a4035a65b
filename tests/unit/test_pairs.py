"""`key=value` arguments that cannot be read say why as a reason code, worded by the catalogue
with the same words as before."""

from __future__ import annotations

import pytest

from bot.commands.plugins import bad_pairs
from bot.pairs import PairsError, parse_pairs
from cards.texts import texts


@pytest.mark.parametrize(
    ("given", "reason", "english"),
    [
        ('mode="cancel', "unbalanced_quotes", "unbalanced quotes"),
        ("table", "not_a_pair", "'table' is not key=value"),
        ("9x=1", "bad_name", "'9x' is not a parameter name"),
        ("a=1 a=2", "twice", "a is given twice"),
        ("a=1 a.b=2", "conflict", "a.b conflicts with a"),
        (" ".join(f"k{i}=1" for i in range(33)), "too_many", "at most 32 parameters"),
        ("a=" + "x" * 4001, "too_long", "the value of a is longer than 4000 characters"),
    ],
)
def test_a_problem_has_a_reason_and_the_same_english_words(
    given: str, reason: str, english: str
) -> None:
    with pytest.raises(PairsError) as caught:
        parse_pairs(given)
    assert caught.value.reason == reason
    assert str(caught.value) == english  # the log line is as before
    assert bad_pairs(caught.value, texts("en")) == texts("en")("run.bad_pairs", reason=english)
    assert bad_pairs(caught.value, texts("zh")) == texts("zh")("run.bad_pairs", reason=english)


def test_pairs_still_parse() -> None:
    assert parse_pairs('table=orders mode="a b" args.service=web') == {
        "table": "orders",
        "mode": "a b",
        "args": {"service": "web"},
    }
