"""Every sentence the bot says in chat, one module per language (`zh` default, `en`).

Usage::

    say = texts("zh")
    say("error.unexpected", trace_id="abc")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from cards.texts import en, zh

Language = Literal["zh", "en"]
_CATALOGUES: dict[str, Mapping[str, str]] = {"zh": zh.TEXTS, "en": en.TEXTS}


class Texts:
    """Looks a key up in one language (falling back to Chinese) and fills it in."""

    def __init__(self, language: str) -> None:
        self.language = language if language in _CATALOGUES else "zh"
        self._table = _CATALOGUES[self.language]

    def __call__(self, key: str, **values: object) -> str:
        template = self._table.get(key) or zh.TEXTS[key]
        return template.format(**values) if values else template

    def block(self, *prefixes: str) -> dict[str, str]:
        """Every key starting with one of `prefixes`, in this language (the console's script
        gets its words this way)."""
        keys = [key for key in zh.TEXTS if key.startswith(prefixes)]
        return {key: self(key) for key in keys}

    def has(self, key: str) -> bool:
        """Whether the catalogue words `key` (for codes that may be new, such as audit kinds)."""
        return key in self._table or key in zh.TEXTS


def texts(language: str) -> Texts:
    return Texts(language)


def missing_keys() -> dict[str, set[str]]:
    """Keys some language lacks (a test keeps this empty)."""
    every = set().union(*(set(t) for t in _CATALOGUES.values()))
    return {lang: every - set(t) for lang, t in _CATALOGUES.items() if every - set(t)}
