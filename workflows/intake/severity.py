"""Severity words from every alert source, normalised to critical / warning / info.

Rules: P0/P1, critical, emergency, fatal, disaster, high, error, 紧急, 严重, 致命, 灾难, 一级 →
critical; P2, warning, average, medium, minor, 警告, 一般, 重要, 次要, 二级 → warning; P3/P4, info,
low, notice, 提示, 信息, 通知, 提醒, 三级 → info (高危/中危/低危 likewise). Anything unknown or
missing → warning (a human looks, nothing pages); where no level is named, a monitor's state
implies one (`state_level`: DOWN/UNREACHABLE → critical, OK/UP → info).

Usage::

    normalise_severity("P1")    # 'critical'
    normalise_severity("提示")  # 'info'
    normalise_severity("4")     # 'warning' (unknown)
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from workflows.intake.alert import Severity

DEFAULT_SEVERITY: Severity = "warning"

# label/annotation keys that carry a severity, most specific first
SEVERITY_KEYS = ("severity", "level", "priority", "urgency", "alert_level", "alertlevel")


def _words(severity: Severity, words: str) -> dict[str, Severity]:
    return dict.fromkeys(words.split(), severity)


_WORDS: dict[str, Severity] = {
    **_words(
        "critical",
        "critical crit emergency emerg fatal disaster page high error major p0 p1 sev0 sev1 s0 s1",
    ),
    **_words("warning", "warning warn average medium moderate minor p2 sev2 s2"),
    **_words(
        "info",
        "info information informational notice low debug none ok p3 p4 p5 sev3 sev4 sev5 s3 s4",
    ),
}
# CJK words are matched as substrings ("严重告警", "P1级-紧急"), most severe first
_CJK: tuple[tuple[str, Severity], ...] = (
    ("紧急", "critical"),
    ("严重", "critical"),
    ("致命", "critical"),
    ("灾难", "critical"),
    ("重大", "critical"),
    ("高危", "critical"),
    ("中危", "warning"),
    ("低危", "info"),
    ("提醒", "info"),
    ("一级", "critical"),  # Nightingale's 一级告警 / 二级告警 / 三级告警 (S1 / S2 / S3)
    ("1级", "critical"),
    ("二级", "warning"),
    ("2级", "warning"),
    ("三级", "info"),
    ("3级", "info"),
    ("四级", "info"),
    ("警告", "warning"),
    ("一般", "warning"),
    ("重要", "warning"),
    ("次要", "warning"),
    ("提示", "info"),
    ("信息", "info"),
    ("通知", "info"),
)
_CJK_SINGLE: dict[str, Severity] = {"高": "critical", "中": "warning", "低": "info"}
_TOKEN_RE = re.compile(r"[a-z]+\d*|\d+")
_SEPARATORS_RE = re.compile(r"[\s_\-.]+")


def normalise_severity(value: object) -> Severity:
    """Map a severity word from any source to `critical`, `warning` or `info`."""
    return severity_of(value) or DEFAULT_SEVERITY


def severity_of(value: object) -> Severity | None:
    """The severity a word names, or None when it names none (see `normalise_severity`)."""
    if not isinstance(value, str):
        return None
    word = value.strip().lower()[:64]
    if not word:
        return None
    compact = _SEPARATORS_RE.sub("", word)
    if compact in _WORDS:
        return _WORDS[compact]
    if word in _CJK_SINGLE:
        return _CJK_SINGLE[word]
    for cjk, severity in _CJK:
        if cjk in word:
            return severity
    for token in _TOKEN_RE.findall(word):
        if token in _WORDS:
            return _WORDS[token]
    return None


# the level a monitor's state implies where nothing else names one: a host DOWN or UNREACHABLE
# is the gravest a host can be; a state back to OK or UP (a recovery) is news, nothing to page
_STATE_LEVELS: dict[str, Severity] = {
    "down": "critical",
    "unreachable": "critical",
    "ok": "info",
    "up": "info",
}


def state_level(*words: str) -> str:
    """The level (critical/info) the first monitor state among `words` implies ("State: DOWN",
    the "is OK" of an Icinga subject), or ""."""
    for text in words:
        for word in text.lower().split():
            if word in _STATE_LEVELS:
                return _STATE_LEVELS[word]
    return ""


def severity_word(*sources: Mapping[str, str]) -> str:
    """The first non-empty severity-ish value found in `sources` (labels, then annotations)."""
    for source in sources:
        lowered = {key.lower(): value for key, value in source.items()}
        for key in SEVERITY_KEYS:
            if lowered.get(key):
                return lowered[key]
    return ""
