"""`key=value` arguments that cannot be read say why as a reason code, worded by the catalogue
in the chat's language (the log line keeps the English words)."""

from __future__ import annotations

import pytest

from bot.commands.plugins import bad_pairs
from bot.pairs import PairsError, parse_pairs
from cards.texts import texts


@pytest.mark.parametrize(
    ("given", "reason", "english", "chinese"),
    [
        ('mode="cancel', "unbalanced_quotes", "unbalanced quotes", "引号不成对"),
        ("table", "not_a_pair", "'table' is not key=value", "'table' 不是 key=value 形式"),
        ("9x=1", "bad_name", "'9x' is not a parameter name", "'9x' 不是合法的参数名"),
        ("a=1 a=2", "twice", "a is given twice", "a 重复给出"),
        ("a=1 a.b=2", "conflict", "a.b conflicts with a", "a.b 与 a 冲突"),
        (
            " ".join(f"k{i}=1" for i in range(33)),
            "too_many",
            "at most 32 parameters",
            "最多 32 个参数",
        ),
        (
            "a=" + "x" * 4001,
            "too_long",
            "the value of a is longer than 4000 characters",
            "a 的值超过 4000 个字符",
        ),
    ],
)
def test_a_problem_has_a_reason_worded_in_the_chats_language(
    given: str, reason: str, english: str, chinese: str
) -> None:
    with pytest.raises(PairsError) as caught:
        parse_pairs(given)
    assert caught.value.reason == reason
    assert str(caught.value) == english  # the log line is as before
    assert bad_pairs(caught.value, texts("en")) == texts("en")("run.bad_pairs", reason=english)
    assert bad_pairs(caught.value, texts("zh")) == texts("zh")("run.bad_pairs", reason=chinese)


def test_pairs_still_parse() -> None:
    assert parse_pairs('table=orders mode="a b" args.service=web') == {
        "table": "orders",
        "mode": "a b",
        "args": {"service": "web"},
    }
