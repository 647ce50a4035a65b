"""Fences: which parameter values and which targets the policy lets a plugin touch at all.

Two kinds, both in the `policy:` section:

- parameter fences, per plugin and dotted parameter path (`fences:`), each exactly one of
  `prefixes`, `one_of`, `pattern` (full match);
- target fences (`targets:`), for every plugin at once, matched against what the run's
  parameters say they touch (`policy_scope()`, see `plugins.contract`): Kubernetes namespaces,
  hosts, services and connection targets by glob (`prod-*`), URLs by prefix. A key that is not
  configured is not fenced; a plugin that does not report a key is not fenced by it.

URL prefixes are compared as plain text: end a host prefix with `/` (or `:` for any port),
otherwise `https://a.example` also admits `https://a.example.evil.net`.

Usage::

    fence = Fence(pattern="web|api"); fence.admits("web")              # True
    TargetFences(namespaces=("prod-*",)).violation({"namespace": "kube-system"})
    # ("namespace", "kube-system")
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, model_validator


class Fence(BaseModel):
    """Allowed values of one parameter: exactly one of prefixes, one_of, pattern."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefixes: tuple[str, ...] | None = None
    one_of: tuple[str, ...] | None = None
    pattern: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        kinds = [self.prefixes, self.one_of, self.pattern]
        if sum(kind is not None for kind in kinds) != 1:
            raise ValueError("a fence needs exactly one of prefixes, one_of, pattern")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"bad fence pattern: {exc}") from None
        return self

    def admits(self, value: str) -> bool:
        """True when `value` is inside the fence."""
        if self.prefixes is not None:
            return any(value.startswith(prefix) for prefix in self.prefixes)
        if self.one_of is not None:
            return value in self.one_of
        return self.pattern is not None and re.fullmatch(self.pattern, value) is not None

    def describe(self) -> str:
        """`prefixes: a, b` / `one of: x, y` / `pattern: web|api` (for /policy)."""
        if self.prefixes is not None:
            return "prefixes: " + ", ".join(self.prefixes)
        if self.one_of is not None:
            return "one of: " + ", ".join(self.one_of)
        return f"pattern: {self.pattern}"


def outside_parameter_fence(fences: Mapping[str, Fence], model: BaseModel) -> str | None:
    """The first dotted path whose value is outside its fence (a missing value is outside)."""
    if not fences:
        return None
    values = model.model_dump(mode="json")
    for path, fence in fences.items():
        value = _lookup(values, path)
        if not isinstance(value, str):
            value = None if value is None else json.dumps(value, sort_keys=True)
        if value is None or not fence.admits(value):
            return path
    return None


class TargetFences(BaseModel):
    """Allowed targets for every plugin (None: that kind of target is not fenced)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespaces: tuple[str, ...] | None = None
    hosts: tuple[str, ...] | None = None
    services: tuple[str, ...] | None = None
    targets: tuple[str, ...] | None = None
    url_prefixes: tuple[str, ...] | None = None

    def violation(self, scope: Mapping[str, str]) -> tuple[str, str] | None:
        """(scope key, value) of the first scope value outside its fence, or None."""
        globs = {
            "namespace": self.namespaces,
            "host": self.hosts,
            "service": self.services,
            "target": self.targets,
        }
        for key, value in scope.items():
            allowed = globs.get(key)
            if allowed is not None and not any(fnmatchcase(value, g) for g in allowed):
                return key, value
            prefixes = self.url_prefixes if key == "url" else None
            if prefixes is not None and not any(value.startswith(p) for p in prefixes):
                return key, value
        return None

    def configured(self) -> dict[str, tuple[str, ...]]:
        """The fenced kinds and their allowed values (for /policy)."""
        return {
            name: value
            for name, value in self.model_dump().items()
            if value is not None and isinstance(value, tuple)
        }


def scope_of(model: BaseModel) -> dict[str, str]:
    """What a run touches, from the parameter model's `policy_scope()` (empty when it has none)."""
    method = getattr(model, "policy_scope", None)
    if not callable(method):
        return {}
    scope = method()
    if not isinstance(scope, Mapping):
        return {}
    return {str(k): str(v) for k, v in scope.items() if v is not None and str(v) != ""}


def _lookup(values: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(values, Mapping) or part not in values:
            return None
        values = values[part]
    return values
