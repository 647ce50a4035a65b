"""Named connection targets: how a plugin reaches a server without taking addresses from chats.

Plugins that talk to a server (Postgres, Redis, Prometheus, Kubernetes) never accept a DSN, URL
or credential as a parameter: the operator names the servers in the configuration and a run
picks one by name. Parameters come from alerts, chats and models; settings come from the
operator. ::

    plugins:
      settings:
        postgres:
          targets:
            main: {dsn: "postgresql://monitor:secret@db1:5432/app"}
            replica: {dsn: "postgresql://monitor:secret@db2:5432/app"}
          default: main               # optional; else the only target, else "default"

Usage::

    targets = parse_targets("postgres", settings, fields={"dsn": str}, required={"dsn"})
    Params = with_targets(PgParams, targets)   # `target` must be one of the configured names

Parameter models of plugins that run against one target's host (Postgres, Redis) derive from
`TargetParams` and are bound with `bind_hosts`, which also records each target's host for
`policy_scope()`::

    class PingParams(TargetParams):
        def policy_target(self) -> str:
            return f"postgres:{self.target_name()}"

    Params = bind_hosts(PingParams, targets, lambda body: dsn_host(body["dsn"]))
    Params(target="main").policy_scope()       # {"target": "main", "host": "db1"}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TARGET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Targets:
    """The configured targets of one plugin family and the one used when none is named."""

    plugin: str
    entries: Mapping[str, Mapping[str, Any]]
    default: str

    def names(self) -> list[str]:
        """Sorted target names."""
        return sorted(self.entries)

    def get(self, name: str | None) -> Mapping[str, Any]:
        """The settings of `name` (the default when None); KeyError for an unknown name."""
        return self.entries[name or self.default]


def parse_targets(
    plugin: str,
    settings: Mapping[str, Any],
    *,
    fields: Mapping[str, type | tuple[type, ...]],
    required: frozenset[str] = frozenset(),
) -> Targets:
    """Validate `settings["targets"]` (name -> mapping of `fields`); ValueError on a problem."""
    raw = settings.get("targets") or {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{plugin}: targets must be a mapping of name to settings")
    entries: dict[str, Mapping[str, Any]] = {}
    for name, body in raw.items():
        if not isinstance(name, str) or not TARGET_NAME.fullmatch(name):
            raise ValueError(f"{plugin}: target name {name!r} must be lower-case [a-z0-9_-]")
        if not isinstance(body, Mapping):
            raise ValueError(f"{plugin}: target {name!r} must be a mapping")
        unknown = set(body) - set(fields)
        if unknown:
            keys = ", ".join(sorted(unknown))
            raise ValueError(f"{plugin}: target {name!r}: unknown keys {keys}")
        missing = set(required) - set(body)
        if missing:
            raise ValueError(f"{plugin}: target {name!r}: missing {', '.join(sorted(missing))}")
        for key, value in body.items():
            if value is not None and not isinstance(value, fields[key]):
                raise ValueError(f"{plugin}: target {name!r}: {key} has the wrong type")
        entries[name] = dict(body)
    default = settings.get("default")
    if default is None:
        default = next(iter(entries)) if len(entries) == 1 else "default"
    if entries and default not in entries:
        raise ValueError(f"{plugin}: default target {default!r} is not configured")
    return Targets(plugin=plugin, entries=entries, default=str(default))


def with_targets(model: type[M], targets: Targets) -> type[M]:
    """A subclass of `model` whose `target` field (str | None) must name a configured target."""
    allowed = frozenset(targets.entries)
    listed = ", ".join(targets.names()) or "none configured"

    class Bound(model):  # type: ignore[valid-type,misc]
        @model_validator(mode="after")
        def _known_target(self) -> Self:
            name = getattr(self, "target", None) or targets.default
            if name not in allowed:
                raise ValueError(f"target must be one of: {listed}")
            return self

    Bound.__name__ = model.__name__
    Bound.__qualname__ = model.__qualname__
    return Bound


class TargetParams(BaseModel):
    """Base of parameter models whose run reaches one configured target's host.

    The optional `target` must look like a target name (`with_targets`, via `bind_hosts`,
    then checks that it is a configured one); `policy_scope()` gives the target and its host.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str | None = Field(default=None, max_length=48)

    hosts: ClassVar[Mapping[str, str]] = {}
    default_target: ClassVar[str] = "default"

    @field_validator("target")
    @classmethod
    def _target_name(cls, value: str | None) -> str | None:
        if value is not None and not TARGET_NAME.fullmatch(value):
            raise ValueError("target must be a configured target name (lower-case [a-z0-9_-])")
        return value

    def target_name(self) -> str:
        """The target this run uses."""
        return self.target or type(self).default_target

    def policy_scope(self) -> dict[str, str]:
        """The target and its host, for the policy's target fences."""
        name = self.target_name()
        return {"target": name, "host": type(self).hosts.get(name, "")}


T = TypeVar("T", bound=TargetParams)


def bind_hosts(
    model: type[T], targets: Targets, host: Callable[[Mapping[str, Any]], str]
) -> type[T]:
    """`model` restricted to the configured targets, knowing each one's host (`host(settings)`)."""
    bound = with_targets(model, targets)
    bound.hosts = target_hosts(targets, host)
    bound.default_target = targets.default
    return bound


def target_hosts(targets: Targets, host: Callable[[Mapping[str, Any]], str]) -> dict[str, str]:
    """Each target's host (`host(settings)`); ValueError naming the target `host` refuses."""
    hosts = {}
    for name, body in targets.entries.items():
        try:
            hosts[name] = host(body)
        except ValueError as exc:
            raise ValueError(f"{targets.plugin}: target {name!r}: {exc}") from None
    return hosts
