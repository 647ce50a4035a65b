"""What an incident is remembered as: a short document for people and the text that is embedded.

Pure functions over rows already read: the document says what happened (title, service,
severity, the labels that identify it, the alert's own words), what the diagnosis found, what
fixed it and how it ended. The embedded text is the same facts without the field names, which
every document shares and which would make unrelated incidents look alike. Secrets are masked
before anything leaves these functions.

Usage::

    story = Story(incident, alert, diagnosis, proposal, execution, events)
    story.document()   # 'DiskFull on db-1\\nservice: db · severity: critical\\n...'
    story.essence()    # 'DiskFull on db-1 db DiskFull db-1:9100 /var is 97% full ...'
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from storage.models import Alert, Diagnosis, Execution, Incident, IncidentEvent, Proposal
from storage.redaction import MASK, Redactor

KEY_LABELS = ("alertname", "service", "instance", "host", "namespace", "job")
ANNOTATIONS = ("summary", "description", "message")
# the events that tell how an incident ended
ENDINGS = (
    "workflow.verified",
    "workflow.escalated",
    "incident.escalated_by_hand",
    "incident.resolved_by_hand",
    "incident.resolved_by_alert",
)
_FIELD = 300  # characters kept of any one free-text field
_FIX = 120  # characters of a fix's short form
# a bearer token on its own (the redactor masks it only after a key such as `Authorization:`)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_redactor = Redactor()


def redact(text: str) -> str:
    """`text` with secrets masked: the shared redactor and bare bearer tokens."""
    return _BEARER.sub(rf"\g<1>{MASK}", _redactor.text(text))


def clip(text: str, size: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1] + "…"


def key_labels(labels: Mapping[str, Any]) -> dict[str, str]:
    """The labels that identify what broke, redacted; not every label."""
    picked = {key: str(labels[key]) for key in KEY_LABELS if labels.get(key) not in (None, "")}
    return {key: clip(redact(value), _FIELD) for key, value in picked.items()}


def alert_texts(alert: Alert | None) -> list[str]:
    if alert is None:
        return []
    found = (alert.annotations.get(key) for key in ANNOTATIONS)
    return [clip(redact(str(text)), _FIELD) for text in found if text]


def short_params(params: Mapping[str, Any]) -> str:
    """`key=value …`, secrets masked, at most `_FIX` characters."""
    safe = _redactor.data(dict(params))
    parts = [
        f"{key}={value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
        for key, value in safe.items()
    ]
    return " ".join(parts)


def fix_of(plugin: str, params: Mapping[str, Any]) -> str:
    return clip(redact(f"{plugin} {short_params(params)}".strip()), _FIX)


# the document's lines that say what was learned, in the order a snippet shows them
LESSONS = (
    "fix:",
    "resolved by hand:",
    "resolved when",
    "proposed, not run:",
    "escalated",
    "likely cause:",
    "diagnosis:",
)


def lesson(document: str, size: int) -> str:
    """What a remembered incident teaches, from its document: the fix, how it ended, the cause."""
    lines = document.splitlines()[1:]  # not the title
    picked = [line for start in LESSONS for line in lines if line.startswith(start)]
    return clip(" · ".join(picked or lines), size)


def describe(incident: Incident, alert: Alert | None) -> list[str]:
    """The facts known from the start, as embedded text: what a new incident is queried by."""
    parts = [incident.title, incident.service or "", *key_labels(incident.labels).values()]
    parts += [incident.summary or "", *alert_texts(alert)]
    return [clip(redact(part), _FIELD) for part in parts if part]


@dataclass(frozen=True)
class Story:
    """An incident and what happened to it, read from the database."""

    incident: Incident
    alert: Alert | None
    diagnosis: Diagnosis | None
    proposal: Proposal | None
    execution: Execution | None
    events: Sequence[IncidentEvent]

    @property
    def title(self) -> str:
        return clip(redact(self.incident.title), _FIELD)

    def _last(self, kind: str) -> IncidentEvent | None:
        return next((e for e in reversed(self.events) if e.kind == kind), None)

    def outcome(self) -> str:
        """`escalated`, `verified` (the fix was checked and held) or `resolved`."""
        if self.incident.status == "escalated":
            return "escalated"
        verified = self._last("workflow.verified")
        return "verified" if verified is not None and verified.data.get("ok") else "resolved"

    def ran(self) -> bool:
        """Whether a remediation really ran (not a dry run) and succeeded."""
        done = self.execution
        return done is not None and done.status == "succeeded" and not done.dry_run

    def fix(self) -> str | None:
        """The remediation that ran and succeeded, short: `<plugin> <params>`."""
        if self.execution is None or not self.ran():
            return None
        return fix_of(self.execution.plugin, self.execution.params)

    def hypothesis(self) -> str | None:
        hypotheses = self.diagnosis.hypotheses if self.diagnosis is not None else []
        top = hypotheses[0] if hypotheses else None
        if isinstance(top, list | tuple) and top:
            cause = clip(redact(str(top[0])), _FIELD)
            if not cause:
                return None
            confidence = top[1] if len(top) > 1 else None
            if isinstance(confidence, int | float) and not isinstance(confidence, bool):
                return f"{cause} ({confidence:.1f})"
            return cause
        return clip(redact(str(top)), _FIELD) if top else None

    def handling(self) -> list[str]:
        """How it was handled, one line each: the fix tried, a hand resolution, escalation."""
        lines: list[str] = []
        done, proposed = self.execution, self.proposal
        if done is not None and not done.dry_run:
            result = "succeeded" if done.status == "succeeded" else done.status
            said = f": {clip(redact(done.summary), _FIELD)}" if done.summary else ""
            lines.append(f"fix: {fix_of(done.plugin, done.params)} ({result}{said})")
        elif proposed is not None:
            refused = f", {proposed.decision}" if proposed.decision else ""
            lines.append(f"proposed, not run: {fix_of(proposed.plugin, proposed.params)}{refused}")
        incident = self.incident
        by_hand = self._last("incident.resolved_by_hand")
        if incident.resolved_by == "alert" and incident.status == "resolved":
            lines.append("resolved when the alert cleared")
        elif incident.resolved_by or by_hand is not None:
            note = incident.resolved_note or (by_hand.message if by_hand is not None else "")
            lines.append(f"resolved by hand: {clip(redact(note), _FIELD)}".rstrip(": "))
        escalated = self._last("workflow.escalated") or self._last("incident.escalated_by_hand")
        if incident.escalation_reason or escalated is not None:
            reason = incident.escalation_reason or (escalated.message if escalated else "")
            first = "escalated first" if incident.status == "resolved" else "escalated"
            lines.append(f"{first}: {clip(redact(reason), _FIELD)}".rstrip(": "))
        verified = self._last("workflow.verified")
        if verified is not None:
            held = "held" if verified.data.get("ok") else "failed"
            lines.append(f"verification {held}: {clip(redact(verified.message), _FIELD)}")
        return lines

    def document(self) -> str:
        """The document people read back (the `knowledge.content`)."""
        incident = self.incident
        lines = [self.title]
        lines.append(
            f"service: {clip(redact(incident.service or '-'), _FIELD)} · "
            f"severity: {incident.severity}"
        )
        labels = key_labels(incident.labels)
        if labels:
            lines.append("labels: " + " ".join(f"{k}={v}" for k, v in labels.items()))
        lines += [f"alert: {text}" for text in alert_texts(self.alert)]
        if incident.summary:
            lines.append(f"summary: {clip(redact(incident.summary), _FIELD)}")
        if self.diagnosis is not None and self.diagnosis.summary:
            lines.append(f"diagnosis: {clip(redact(self.diagnosis.summary), _FIELD)}")
        hypothesis = self.hypothesis()
        if hypothesis:
            lines.append(f"likely cause: {hypothesis}")
        lines += self.handling()
        lines.append(f"outcome: {self.outcome()}")
        return "\n".join(lines)

    def essence(self) -> str:
        """The text that is embedded: the facts without field names."""
        parts = describe(self.incident, self.alert)
        if self.diagnosis is not None and self.diagnosis.summary:
            parts.append(clip(redact(self.diagnosis.summary), _FIELD))
        hypothesis = self.hypothesis()
        if hypothesis:
            parts.append(hypothesis)
        if self.execution is not None:
            parts.append(fix_of(self.execution.plugin, self.execution.params))
        if self.incident.resolved_note:
            parts.append(clip(redact(self.incident.resolved_note), _FIELD))
        return "\n".join(parts)
