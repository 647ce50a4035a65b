"""The text catalogue: every key in both languages, and the placeholders agree."""

from __future__ import annotations

import string

from cards.texts import en, missing_keys, texts, zh


def test_every_key_exists_in_both_languages() -> None:
    assert missing_keys() == {}


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_both_languages_fill_in_the_same_values() -> None:
    differ = {
        key: (placeholders(zh.TEXTS[key]), placeholders(en.TEXTS[key]))
        for key in zh.TEXTS
        if key in en.TEXTS and placeholders(zh.TEXTS[key]) != placeholders(en.TEXTS[key])
    }
    assert differ == {}


def test_unknown_language_falls_back_to_chinese() -> None:
    assert texts("fr")("card.gate.approve") == "批准"
    assert texts("en")("card.gate.approve") == "Approve"
