"""Alert fingerprints: the key dedupe folds repeats on, stable across resends and resolution.

Labelled alerts (webhooks, and chat alerts whose text carries labels)::

    fingerprint = sha256(canonical JSON of the sorted [key, value] pairs of the identifying
                         labels)[:16]

Identifying labels are all labels except empty ones and the volatile ones below; when the labels
carry no `alertname`, the alert's title stands in as `alertname`, so two differently titled
alerts on the same host never merge. Order of labels never matters.

Volatile labels (compared case-insensitively) change between notifications of the *same* alert
and are left out — current values, timestamps, HA replica names and per-event ids:

    value, __value__, __value_string__, __values__, values, valuestring, value_string,
    current_value, currentvalue, metric_value, threshold_value, eval_value,
    timestamp, time, date, datetime, __timestamp__, startsat, endsat, starts_at, ends_at,
    active_at, activeat, firing_since, updated_at,
    alertstate, __alertstate__, count, repeat, repeat_count, occurrences,
    prometheus_replica, replica, __replica__, receive_replica,
    request_id, trace_id, span_id, event_id, notification_id

Text alerts (plain chat messages) have no trustworthy labels, so::

    fingerprint = sha256(canonical JSON of [source, normalised title, identity labels])[:16]

where the normalised title is lower-cased with bracketed tags (`[FIRING:2]`, `【恢复】`), status
words (resolved, "is resolved", firing, 恢复, 已恢复, 解除, 告警…), dates, times and all digits
removed, and identity labels are only the well-known location keys found in the text (host,
instance, service…; `IDENTITY_KEYS`). When no identity label was found, the targets named in
the title stand in: IP addresses (with their port) and host-like names that carry a digit
(`db-1`, `node03`, `web-2.example.com`), so "Instance 10.0.0.1:9100 down" and
"Instance 10.0.0.2:9100 down" stay apart while a value such as "93%" never counts. So
"磁盘快满了 93% host=db-1" and "已恢复: 磁盘快满了 host=db-1" share a fingerprint, while
host=db-2 gets its own. An alert name equal to the title is the title, not a second identity
("告警名称: 内存不足" and "【告警已解除】内存不足" share a fingerprint). Empty values (Go's
`<no value>` is read as empty) are never part of a fingerprint.

A caller's own fingerprint (generic webhook `fingerprint` field) wins: 16 lowercase hex
characters are used as they are, anything else is hashed (`override_fingerprint`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping

FINGERPRINT_LENGTH = 16

VOLATILE_LABELS: frozenset[str] = frozenset(
    {
        "value",
        "__value__",
        "__value_string__",
        "__values__",
        "values",
        "valuestring",
        "value_string",
        "current_value",
        "currentvalue",
        "metric_value",
        "threshold_value",
        "eval_value",
        "timestamp",
        "time",
        "date",
        "datetime",
        "__timestamp__",
        "startsat",
        "endsat",
        "starts_at",
        "ends_at",
        "active_at",
        "activeat",
        "firing_since",
        "updated_at",
        "alertstate",
        "__alertstate__",
        "count",
        "repeat",
        "repeat_count",
        "occurrences",
        "prometheus_replica",
        "replica",
        "__replica__",
        "receive_replica",
        "request_id",
        "trace_id",
        "span_id",
        "event_id",
        "notification_id",
    }
)

# for text alerts: only these keys, when found in the text, tell two alerts apart
IDENTITY_KEYS: frozenset[str] = frozenset(
    {
        "alertname",
        "host",
        "hostname",
        "instance",
        "node",
        "ip",
        "service",
        "app",
        "job",
        "namespace",
        "pod",
        "deployment",
        "container",
        "cluster",
        "env",
        "project",
        "device",
        "mountpoint",
        "db",
        "database",
        "ident",
        "target",
        "target_ident",
        "node_name",
        "pod_name",
        "host_ip",
        "hostip",
        "instance_name",
        "region",
        "zone",
        "topic",
        "queue",
        "url",
        "domain",
        # what part of a target: a mount, a disk, a NIC, an endpoint, a consumer group
        "path",
        "mount",
        "disk",
        "interface",
        "endpoint",
        "consumergroup",
        "consumer_group",
    }
)

_BRACKETED_RE = re.compile(r"\[[^\[\]]{0,60}\]|【[^【】]{0,60}】")
_DATETIME_RE = re.compile(
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?"
    r"(?:\s*(?:Z|[+-]\d{2}:?\d{2}))?|\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
)
_STATUS_WORDS_RE = re.compile(
    r"(?i)\b(?:(?:is|are|has|have|was|were|been)\s+)*"  # "HighCPU is resolved!"
    r"(?:resolved|recovered|firing|alerting|triggered|problem|ok|no\s*data)\b"
    r"|已恢复|恢复正常|恢复|已解决|已消除|解除|消除|告警|报警"
)
_NON_WORD_RE = re.compile(r"[\W_]+")
_IP_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?![\w.])")
# a name with a letter first and a digit somewhere: db-1, node03, web-2.example.com (not P1, S2)
_HOST_RE = re.compile(
    r"(?<![\w.\-])[a-z][a-z0-9\-]*\d[a-z0-9\-]*(?:\.[a-z0-9\-]+)*(?::\d{1,5})?(?![\w\-])", re.I
)
_MAX_TARGETS = 4
_TARGET_SCAN = 1000


def identifying_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """`labels` without volatile and empty ones: what makes this alert *this* alert."""
    return {
        key: value for key, value in labels.items() if value and key.lower() not in VOLATILE_LABELS
    }


def label_fingerprint(labels: Mapping[str, str], title: str) -> str:
    """The fingerprint of a labelled alert (see the module docstring)."""
    identity = identifying_labels(labels)
    if not identity.get("alertname"):
        identity["alertname"] = title
    return _digest(sorted(identity.items()))


def normalise_title(title: str) -> str:
    """A title with everything that changes between repeats removed (tags, times, digits)."""
    text = _BRACKETED_RE.sub(" ", title)
    text = _DATETIME_RE.sub(" ", text)
    text = re.sub(r"\d+", " ", text)
    text = _STATUS_WORDS_RE.sub(" ", text.lower())
    return _NON_WORD_RE.sub(" ", text).strip()


def targets(text: str) -> list[str]:
    """The IP addresses and host-like names `text` mentions (sorted, at most four; only its
    first 1000 characters are looked at)."""
    text = text[:_TARGET_SCAN]
    found = {match.lower() for match in _IP_RE.findall(text)}
    without_ips = _IP_RE.sub(" ", _DATETIME_RE.sub(" ", text))
    found |= {match.lower() for match in _HOST_RE.findall(without_ips) if len(match) > 2}
    return sorted(found)[:_MAX_TARGETS]


def text_fingerprint(source: str, title: str, labels: Mapping[str, str]) -> str:
    """The fingerprint of a text alert (see the module docstring)."""
    name = normalise_title(title)
    identity = sorted(
        (key, value)
        for key, value in labels.items()
        if value
        and key.lower() in IDENTITY_KEYS
        # the name the title already is ("告警名称: 内存不足" / "【告警已解除】内存不足")
        and not (key == "alertname" and normalise_title(value) == name)
    )
    if not any(key != "alertname" for key, _ in identity):
        identity.extend(("target", target) for target in targets(title))
    return _digest([source, name, identity])


def override_fingerprint(value: str) -> str:
    """A caller-chosen fingerprint that is not already 16 hex characters, hashed to that form."""
    return _digest(["override", value])


def _digest(data: object) -> str:
    canonical = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]
