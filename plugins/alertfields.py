"""Reading alert fields for runbooks: matcher keys and `{…}` placeholders in step parameters.

Field names: `labels.<name>`, `annotations.<name>`, `service`, `severity`, `title`. A runbook
matcher key without a prefix names a label. Placeholders are filled in one pass — a value that
itself looks like `{labels.x}` stays literal text — and a missing or empty field is an error,
never an empty string. Filling checks nothing else: the plugin's parameter model validates
every filled value afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from plugins.contract import AlertContext

FIELD = r"(?:(?:labels|annotations)\.[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}|service|severity|title)"
PLACEHOLDER = re.compile(r"\{(" + FIELD + r")\}")
# anything that looks like a placeholder but is not one (a typo must not stay literal text)
SUSPICIOUS = re.compile(r"\{[A-Za-z_][A-Za-z0-9_.]*\}")


class MissingField(ValueError):
    """The alert lacks a field a step needs (`field`: its name)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"the alert has no {field}")
        self.field = field


def field_value(alert: AlertContext, name: str) -> str | None:
    """The alert's value for a field name (None when absent)."""
    if name.startswith("labels."):
        return alert.labels.get(name.removeprefix("labels."))
    if name.startswith("annotations."):
        return alert.annotations.get(name.removeprefix("annotations."))
    if name == "service":
        return alert.service
    if name == "severity":
        return alert.severity
    if name == "title":
        return alert.title
    return alert.labels.get(name)


def template_problem(value: Any) -> str | None:
    """Why parameter templates in `value` cannot work (checked at load), or None."""
    if isinstance(value, str):
        known = {m.group(0) for m in PLACEHOLDER.finditer(value)}
        for match in SUSPICIOUS.finditer(value):
            if match.group(0) not in known:
                return f"unknown placeholder {match.group(0)}"
        return None
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list | tuple):
        for item in value:
            problem = template_problem(item)
            if problem:
                return problem
    return None


def fill(value: Any, alert: AlertContext) -> Any:
    """Copy of `value` with every placeholder replaced by the alert's field (MissingField)."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda match: _required(alert, match.group(1)), value)
    if isinstance(value, Mapping):
        return {key: fill(item, alert) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [fill(item, alert) for item in value]
    return value


def _required(alert: AlertContext, name: str) -> str:
    value = field_value(alert, name)
    if not value:
        raise MissingField(name)
    return value
