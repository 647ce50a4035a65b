"""`AlertDraft`: what a parser has read so far, finished into a clean `ParsedAlert`.

Parsers only *collect* (untrusted values, any type); `finish()` applies every rule in one place:
cleaning and capping, severity normalisation, service, summary, URL check, fingerprint, `raw`.

Limits: at most 64 labels (keys <= 128 chars, values <= 1024) and 64 annotations (values <=
4096). The 64 kept are the first by key, so for any real alert (up to 1024 labels) the choice
never depends on input order.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workflows.intake.alert import SUMMARY_LIMIT, TITLE_LIMIT, ParsedAlert, Status
from workflows.intake.fingerprint import (
    label_fingerprint,
    override_fingerprint,
    text_fingerprint,
)
from workflows.intake.raw import cap_raw
from workflows.intake.severity import normalise_severity, severity_word
from workflows.intake.text import clean_block, clean_line

MAX_LABELS = 64
MAX_SCANNED = 1024  # labels beyond the first 1024 of a (hostile) mapping are not looked at
KEY_LIMIT = 128
LABEL_VALUE_LIMIT = 1024
ANNOTATION_VALUE_LIMIT = 4096
URL_LIMIT = 2048
UNTITLED = "untitled alert"

SUMMARY_KEYS = ("summary", "description", "message")
_SERVICE_KEYS = ("service", "service_name", "app", "app_kubernetes_io_name", "application")
_WORKLOAD_KEYS = ("deployment", "statefulset", "daemonset")
_HEX_FINGERPRINT_RE = re.compile(r"^[0-9a-f]{16}$")


def clean_mapping(value: object, *, value_limit: int, block: bool = False) -> dict[str, str]:
    """A str -> str dict from untrusted data: keys sorted and cleaned, empty keys dropped."""
    if not isinstance(value, Mapping):
        return {}
    scanned = list(itertools.islice(value.items(), MAX_SCANNED))  # sized: nsmallest sorts
    items = heapq.nsmallest(MAX_LABELS * 2, scanned, key=lambda item: str(item[0])[:KEY_LIMIT])
    result: dict[str, str] = {}
    for key, item in items:
        name = clean_line(key, KEY_LIMIT)
        if not name or name in result:
            continue
        text = clean_block(item, value_limit) if block else clean_line(item, value_limit)
        result[name] = text
        if len(result) >= MAX_LABELS:
            break
    return result


def service_of(labels: Mapping[str, str]) -> str | None:
    """The service an alert is about: service|app|…, then namespace/deployment, then job."""
    for key in _SERVICE_KEYS:
        if labels.get(key):
            return labels[key]
    namespace = labels.get("namespace", "")
    for key in _WORKLOAD_KEYS:
        if labels.get(key):
            return f"{namespace}/{labels[key]}" if namespace else labels[key]
    return labels.get("job") or namespace or None


def http_url(value: object) -> str | None:
    """`value` as a URL when it is an http(s) URL, else None (no javascript:, file:, …)."""
    url = clean_line(value, URL_LIMIT)
    if url.lower().startswith(("http://", "https://")) and " " not in url:
        return url
    return None


@dataclass
class AlertDraft:
    """The fields of one alert as read from a source, before cleaning.

    `labels`/`annotations` may hold any JSON values (cleaned to strings on finish);
    `text_identity` selects the text fingerprint (plain chat messages);
    `fingerprint` is a caller's override (generic webhook).
    """

    source: str
    status: Status = "firing"
    title: object = ""
    severity: object = ""
    labels: Mapping[Any, Any] = field(default_factory=dict)
    annotations: Mapping[Any, Any] = field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    generator_url: object = None
    fingerprint: object = None
    text_identity: bool = False
    raw: object = None
    understood: bool = True

    def finish(self) -> ParsedAlert:
        """The clean, capped `ParsedAlert` for this draft."""
        labels = clean_mapping(self.labels, value_limit=LABEL_VALUE_LIMIT)
        annotations = clean_mapping(
            self.annotations, value_limit=ANNOTATION_VALUE_LIMIT, block=True
        )
        title = clean_line(self.title, TITLE_LIMIT) or _fallback_title(labels, annotations)
        severity_text = clean_line(self.severity, 64) or severity_word(labels, annotations)
        return ParsedAlert(
            source=self.source,
            status=self.status,
            title=title,
            severity=normalise_severity(severity_text),
            labels=labels,
            annotations=annotations,
            starts_at=self.starts_at,
            ends_at=self.ends_at if self.status == "resolved" else None,
            fingerprint=self._fingerprint(title, labels),
            service=service_of(labels),
            summary=_summary(annotations, title),
            generator_url=http_url(self.generator_url),
            raw=cap_raw(self.raw),
            understood=self.understood,
        )

    def _fingerprint(self, title: str, labels: Mapping[str, str]) -> str:
        override = clean_line(self.fingerprint, 256)
        if override:
            if _HEX_FINGERPRINT_RE.match(override):
                return override
            return override_fingerprint(override)
        if self.text_identity:
            return text_fingerprint(self.source, title, labels)
        return label_fingerprint(labels, title)


def _fallback_title(labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
    for key in ("summary", "title", "description", "message"):
        if annotations.get(key):
            return clean_line(annotations[key], TITLE_LIMIT)
    if labels:
        pairs = " ".join(f"{key}={value}" for key, value in list(labels.items())[:4])
        return clean_line(pairs, TITLE_LIMIT)
    return UNTITLED


def _summary(annotations: Mapping[str, str], title: str) -> str:
    for key in SUMMARY_KEYS:
        if annotations.get(key):
            return clean_block(annotations[key], SUMMARY_LIMIT)
    return title
