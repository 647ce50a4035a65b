"""Alert-hygiene rules: the report's facts in, concrete suggestions out. Pure and deterministic.

Each fingerprint gets at most one suggestion; the first rule that fits wins, in this order:

1. `threshold` — it flaps: at least `flap_min` incidents opened after the previous one had
   resolved (see `storage.reports`). Suggest a `for:` at least as long as its median time open
   (rounded up to 1m, 2m, 5m, 10m, 15m, 30m, 1h, 2h), or a higher threshold, in the alert rule.
   The bot cannot edit Prometheus: applying it posts the rule snippet to paste.
2. `silence` — it is noisy (at least `noisy_alerts` firing notifications) and either nobody
   acted on it (no acknowledgement, hand resolution or gate decision) or its incidents resolve
   by themselves within `quick_resolve_minutes` (median). Suggest a silence of `silence_hours`
   on its alertname and identity labels (service, instance, host, job, namespace).
3. `dedupe` — at least `repeat_incidents` incidents opened while the previous one was still
   open (the dedupe window had passed). Suggest a window of its longest such gap rounded up to
   the hour, plus an hour (at most 7 days), when that is longer than the window it has now.
4. `runbook` — at least `recurring_incidents` incidents opened and no runbook matches it.
   Suggest a runbook skeleton matching its alertname (or title). Applying posts the YAML.

Suggestions are ordered by rule, then by the number behind them (largest first), then
fingerprint, and capped at `max_suggestions`. A model may word the report; it never chooses or
changes a suggestion.

Usage::

    found = suggest(facts, HygieneRules(), dedupe_window_minutes=240, covered=has_runbook)
    found[0].kind, found[0].params
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflows.silences import SilenceError, parse_matcher

if TYPE_CHECKING:  # the configuration imports this module: keep it free of the database
    from storage.reports import FingerprintFacts, HygieneFacts

Kind = Literal["threshold", "silence", "dedupe", "runbook"]
KINDS: tuple[Kind, ...] = ("threshold", "silence", "dedupe", "runbook")
IDENTITY = ("service", "instance", "host", "job", "namespace")
FOR_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200)  # seconds: 1m … 2h
MAX_WINDOW_MINUTES = 7 * 24 * 60


Covered = Callable[["FingerprintFacts"], bool]


class HygieneRules(BaseModel):
    """The rules' thresholds (YAML `advisor.rules`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flap_min: int = Field(default=3, ge=2, le=1000)
    noisy_alerts: int = Field(default=20, ge=2, le=1_000_000)
    quick_resolve_minutes: int = Field(default=10, ge=1, le=24 * 60)
    silence_hours: int = Field(default=24, ge=1, le=7 * 24)
    repeat_incidents: int = Field(default=3, ge=2, le=1000)
    recurring_incidents: int = Field(default=3, ge=2, le=1000)
    max_suggestions: int = Field(default=6, ge=1, le=20)


@dataclass(frozen=True)
class Suggestion:
    """One concrete change: `params` is exactly what applying it does."""

    kind: Kind
    fingerprint: str
    alertname: str
    reason: str  # flapping | unhandled | resolves_itself | stale_repeats | no_runbook
    weight: int  # the number behind it (flaps, alerts, repeats, incidents)
    params: Mapping[str, str | int] = field(default_factory=dict)


Rule = Callable[["FingerprintFacts", HygieneRules, int, Covered | None], Suggestion | None]


def flapping(facts: HygieneFacts, rules: HygieneRules) -> tuple[FingerprintFacts, ...]:
    """Fingerprints whose flaps reach `flap_min`, most flaps first."""
    found = [f for f in facts.fingerprints if f.flaps >= rules.flap_min]
    return tuple(sorted(found, key=lambda f: (-f.flaps, f.fingerprint)))


def suggest(
    facts: HygieneFacts,
    rules: HygieneRules,
    *,
    dedupe_window_minutes: int,
    covered: Covered | None = None,
) -> list[Suggestion]:
    """The suggestions for `facts` (module docstring). `covered` says whether a runbook
    matches a fingerprint; without it no runbook is suggested."""
    found: list[Suggestion] = []
    rules_in_order: tuple[Rule, ...] = (_threshold, _silence, _dedupe, _runbook)
    for facts_of in facts.fingerprints:
        for rule in rules_in_order:
            made = rule(facts_of, rules, dedupe_window_minutes, covered)
            if made is not None:
                found.append(made)
                break
    found.sort(key=lambda s: (KINDS.index(s.kind), -s.weight, s.fingerprint))
    return found[: rules.max_suggestions]


def _threshold(
    f: FingerprintFacts, rules: HygieneRules, _window: int, _covered: Covered | None
) -> Suggestion | None:
    if f.flaps < rules.flap_min:
        return None
    return Suggestion(
        "threshold", f.fingerprint, f.alertname, "flapping", f.flaps, {"for": for_of(f)}
    )


def _silence(
    f: FingerprintFacts, rules: HygieneRules, _window: int, _covered: Covered | None
) -> Suggestion | None:
    if f.firing < rules.noisy_alerts:
        return None
    quick = rules.quick_resolve_minutes * 60
    if f.handled == 0:
        reason = "unhandled"
    elif f.median_auto_resolve is not None and f.median_auto_resolve <= quick:
        reason = "resolves_itself"
    else:
        return None
    matcher = silence_matcher(f)
    if matcher is None:
        return None
    params: dict[str, str | int] = {"matcher": matcher, "duration": f"{rules.silence_hours}h"}
    return Suggestion("silence", f.fingerprint, f.alertname, reason, f.firing, params)


def _dedupe(
    f: FingerprintFacts, rules: HygieneRules, window: int, _covered: Covered | None
) -> Suggestion | None:
    if f.stale_repeats < rules.repeat_incidents or f.longest_stale_gap is None:
        return None
    hours = math.ceil(max(f.longest_stale_gap, 0.0) / 3600) + 1
    minutes = min(hours * 60, MAX_WINDOW_MINUTES)
    if minutes <= (f.dedupe_minutes or window):
        return None
    params: dict[str, str | int] = {"minutes": minutes}
    return Suggestion(
        "dedupe", f.fingerprint, f.alertname, "stale_repeats", f.stale_repeats, params
    )


def _runbook(
    f: FingerprintFacts,
    rules: HygieneRules,
    _window: int,
    covered: Covered | None,
) -> Suggestion | None:
    if covered is None or f.incidents < rules.recurring_incidents or covered(f):
        return None
    key = "alertname" if f.labels.get("alertname") else "title"
    params: dict[str, str | int] = {"key": key, "value": f.alertname}
    return Suggestion("runbook", f.fingerprint, f.alertname, "no_runbook", f.incidents, params)


def for_of(f: FingerprintFacts) -> str:
    """The `for:` that would have kept its typical flap from firing."""
    typical = f.median_open if f.median_open is not None else 0.0
    seconds = next((step for step in FOR_STEPS if step >= typical), FOR_STEPS[-1])
    return f"{seconds // 3600}h" if seconds >= 3600 else f"{seconds // 60}m"


def silence_matcher(f: FingerprintFacts) -> str | None:
    """`alertname=…,service=…` for the fingerprint, in `/silence` syntax; only terms that read
    back exactly as written are kept (None when not even the alertname does)."""
    pairs = [("alertname", f.alertname)]
    pairs += [(key, f.labels[key]) for key in IDENTITY if f.labels.get(key)]
    terms: list[str] = []
    for label, value in pairs:
        term = f"{label}={value}"
        if len(value) > 120 or _reads_back(term) != [[label, "=", value]]:
            if label == "alertname":
                return None
            continue
        terms.append(term)
    return ",".join(terms)


def _reads_back(term: str) -> list[list[str]] | None:
    if "," in term or '"' in term or "\n" in term:
        return None
    try:
        return parse_matcher(term)
    except SilenceError:
        return None


def runbook_yaml(key: str, value: str) -> str:
    """A runbook skeleton matching exactly `key == value` (paste under `runbooks:`)."""
    import yaml  # here: `bot.config` imports this module, and the light CLI paths need no YAML

    slug = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:60] or "recurring-alert"
    book = {
        "name": slug,
        "match": {key: re.escape(value)},
        "diagnose": [{"plugin": "http_check", "params": {"url": "{annotations.url}"}}],
    }
    body = yaml.safe_dump([book], allow_unicode=True, sort_keys=False, width=200)
    return (
        "# larkops configuration, under `runbooks:`; replace the diagnose step with your checks\n"
        + body
    )


def threshold_yaml(alertname: str, for_: str) -> str:
    """The change to the alert rule (paste into the Prometheus rule that defines it)."""
    import yaml

    rule = {"alert": alertname, "for": for_}
    body = yaml.safe_dump([rule], allow_unicode=True, sort_keys=False, width=200)
    return (
        "# Prometheus rule file: keep your `expr`, add (or lengthen) `for:`,\n"
        "# or raise the threshold in `expr` so the alert stops flapping\n" + body
    )
