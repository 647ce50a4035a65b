"""The number a command names (an incident, a silence, a job), as people type it.

`7`, `#7`, `＃7` (the full-width sign of a Chinese keyboard), `７`, `#7,` or `#7：` (the
punctuation after it). Anything else, or more than 12 digits, is no number: the command then
answers with its usage.

    >>> number_of("＃12，")
    12
"""

from __future__ import annotations

SIGNS = "#＃"
AFTER = ",，.。:：;；!！?？)）]】"
MAX_DIGITS = 12


def number_of(word: str) -> int | None:
    """The number `word` writes, or None."""
    digits = word.strip().lstrip(SIGNS).rstrip(AFTER)
    if not digits.isdecimal() or len(digits) > MAX_DIGITS:  # isdecimal: not ², not ½
        return None
    return int(digits)
