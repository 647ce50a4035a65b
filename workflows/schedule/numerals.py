"""Numbers as people write them in schedules: Arabic digits, Chinese numerals, English words.

Usage::

    number("十五")    # 15
    number("两")      # 2
    number("二十三")  # 23
    number("12")      # 12
    number("twelve")  # 12
    number("abc")     # None
"""

from __future__ import annotations

ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4}
ZH_DIGITS.update({"五": 5, "六": 6, "七": 7, "八": 8, "九": 9})
ZH_NUMERAL = "[零〇一二两俩三四五六七八九十百]"
NUMBER = rf"(?:\d{{1,4}}|{ZH_NUMERAL}{{1,4}})"
"""A regex fragment: one number, in digits or Chinese numerals."""

EN_WORDS = {
    "zero": 0,
    "one": 1,
    "a": 1,
    "an": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "forty-five": 45,
    "fifty": 50,
    "sixty": 60,
    "ninety": 90,
}
EN_NUMBER = r"(?:\d{1,4}|" + "|".join(sorted(EN_WORDS, key=len, reverse=True)) + ")"
"""A regex fragment: one number, in digits or (a few) English words; use with IGNORECASE."""

EN_ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "last": -1,
}
_ORDINAL_UNITS = [
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
]
_ORDINAL_TEENS = [
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
]
DAY_ORDINALS: dict[str, int] = {word: n for n, word in enumerate(_ORDINAL_UNITS, 1)}
DAY_ORDINALS.update({word: n for n, word in enumerate(_ORDINAL_TEENS, 10)})
DAY_ORDINALS.update({"twentieth": 20, "thirtieth": 30})
DAY_ORDINALS.update({f"twenty-{w}": 20 + n for w, n in list(DAY_ORDINALS.items()) if n < 10})
DAY_ORDINALS.update({f"twenty {w}": 20 + n for w, n in list(DAY_ORDINALS.items()) if n < 10})
DAY_ORDINALS.update({"thirty-first": 31, "thirty first": 31})
DAY_ORDINAL = (
    r"(?:\d{1,2}(?:st|nd|rd|th)|"
    + "|".join(sorted((w.replace(" ", r"\s+") for w in DAY_ORDINALS), key=len, reverse=True))
    + ")"
)
"""A regex fragment: a day of the month as an ordinal, "20th" or "twentieth"."""


def day_ordinal(text: str) -> int | None:
    """ "20th" 20, "twenty-first" 21, "thirteenth" 13; None when it is not one."""
    lowered = " ".join(text.lower().split())
    if lowered in DAY_ORDINALS:
        return DAY_ORDINALS[lowered]
    digits = lowered[:-2]
    return int(digits) if digits.isdigit() and lowered[-2:] in ("st", "nd", "rd", "th") else None


def _chinese(text: str) -> int | None:
    """Chinese numerals up to 9999 written the common ways: 十五, 二十三, 一百二十, 三零 (30)."""
    if all(char in ZH_DIGITS for char in text):
        # digit by digit (二零二六, 零五): a plain positional number; two digits without a zero
        # are a guess between two (两三点, 三五天: "two or three"), not 23 or 35
        if len(text) == 2 and not set(text) & {"零", "〇"}:
            return None
        value = 0
        for char in text:
            value = value * 10 + ZH_DIGITS[char]
        return value
    total = 0
    current = 0
    for char in text:
        if char in ZH_DIGITS:
            current = ZH_DIGITS[char]
        elif char == "十":
            total += (current or 1) * 10
            current = 0
        elif char == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return None
    return total + current


def number(text: str) -> int | None:
    """The value of one number written in digits, Chinese numerals or an English word."""
    text = text.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return int(text)
    lowered = text.lower()
    if lowered in EN_WORDS:
        return EN_WORDS[lowered]
    return _chinese(text)


def ordinal(text: str) -> int | None:
    """`1st`/`first` → 1, `last` → -1, `第二` → 2; None when it is not an ordinal."""
    lowered = text.strip().lower().removeprefix("第")
    if lowered in EN_ORDINALS:
        return EN_ORDINALS[lowered]
    for suffix in ("st", "nd", "rd", "th"):
        if lowered.endswith(suffix) and lowered[: -len(suffix)].isdigit():
            return int(lowered[: -len(suffix)])
    if lowered in ("最后", "最后一", "末"):
        return -1
    return number(lowered)
