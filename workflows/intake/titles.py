"""What titles an alert whose text gives no alert name: a quoted rule name in its first lines, or
the fields that say what is wrong and where.

Kibana's and similar default messages name the rule in quotes inside a sentence, with the group
it fired for::

    Elasticsearch query rule 'Error logs spike' is active:
    alert 'CPU high' is active for group 'web-1':
    Watch [es-disk-watermark] has triggered

Monitors such as Nagios print no alert name at all, only the checked service and its host
(`Service: HTTP` / `Host: web-01`), and notice forwarders title every message the same
(`【睿象云】告警通知`) above the alert's content (`告警内容: web-01 CPU使用率过高`). Such an alert
is titled, in this order, by its summary or description, the service it checks, or its target:
never by the check's output, which changes with every state (`HTTP CRITICAL - …`, `HTTP OK: …`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_QUOTES = r"'\"‘’“”「」『』"
_QUOTED_RE = re.compile(
    rf"(?i)\b(?:rule|alert|monitor|check|规则|告警|监控)\s*[{_QUOTES}]"
    rf"(?P<name>[^{_QUOTES}\n]{{1,120}})[{_QUOTES}]"
)
# Elastic Watcher and others name it in brackets: "Watch [es-disk-watermark] has triggered"
_BRACKETED_RE = re.compile(
    r"(?i)\b(?:watch|monitor|rule|alert|check|trigger)\s{0,3}\[(?P<name>[^\[\]\n]{1,120})\]"
)
_GROUP_RE = re.compile(
    rf"(?i)\bfor\s+group\s+[{_QUOTES}](?P<group>[^{_QUOTES}\n]{{1,120}})[{_QUOTES}]"
)
_DESCRIBING = ("summary", "description")
_SUBJECTS = ("service", "app", "component")
_TARGETS = ("host", "hostname", "instance", "node", "target", "pod", "container")


def quoted_name(line: str) -> tuple[str, str]:
    """The rule name quoted in a sentence, and the group it fired for (each "" when absent):
    `alert 'CPU high' is active for group 'web-1':` → ("CPU high", "web-1")."""
    found = _QUOTED_RE.search(line) or _BRACKETED_RE.search(line)
    if not found:
        return "", ""
    group = _GROUP_RE.search(line)
    return found["name"].strip(), group["group"].strip() if group else ""


def subject(labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
    """The title of an alert that names itself nowhere (see the module docstring), or ""."""
    for key in _DESCRIBING:
        text = annotations.get(key, "").strip()
        if text:
            return text.splitlines()[0]
    for key in (*_SUBJECTS, *_TARGETS):
        if labels.get(key):
            return labels[key]
    return ""
