"""Plugin registry and discovery.

The registry refuses a bad plugin when it is registered, not when it is first run: a duplicate
name, an empty name, a non-positive timeout, a parameter type that is not a pydantic model, a
synchronous `run` — each is a `ValueError` naming the plugin and the problem.

Discovery (`discover`) loads, in order: the built-ins (`http_check`; `command` when templates are
configured), the `larkops.plugins` entry-point group, and the `*.py` modules of a configured
directory. An entry point names a factory, a directory module defines `create_plugin`; both are
called with that plugin's settings (a mapping) and return one plugin. Configuration (YAML
`plugins:`)::

    plugins:
      disabled: [command]            # registered but never run; `enable()` turns them back on
      entry_points: true             # load the larkops.plugins entry-point group
      directory: /etc/larkops/plugins
      settings:                      # per plugin, by entry-point name / module stem / built-in name
        http_check: {ca_bundle: /etc/ssl/internal-ca.pem}
        command: {templates: {...}}  # see plugins.builtin.command

Usage::

    registry = discover(config, redactor=Redactor(known=settings_secrets))
    registry.names("diagnostic")     # ['http_check', ...]
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import re
import sys
from collections.abc import Callable, Mapping
from functools import partial
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from plugins.builtin import builtin_plugins
from plugins.contract import CATEGORIES, RISKS, Category, Plugin, PluginSpec
from plugins.reach import Reach
from storage.redaction import Redactor

NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")
ENTRY_POINT_GROUP = "larkops.plugins"
MAX_TIMEOUT = 3600.0


class PluginsConfig(BaseModel):
    """The `plugins:` section of the configuration."""

    model_config = ConfigDict(extra="forbid")

    disabled: list[str] = Field(default_factory=list)
    entry_points: bool = True
    directory: Path | None = None
    settings: dict[str, dict[str, Any]] = Field(default_factory=dict)


class PluginRegistry:
    """Registered plugins by name, each enabled or disabled."""

    def __init__(self, *, redactor: Redactor | None = None, reach: Reach | None = None) -> None:
        self.redactor = redactor or Redactor()
        self.reach = reach or Reach()  # where plugins may connect (the fetch allow-list)
        self._plugins: dict[str, Plugin] = {}
        self._disabled: set[str] = set()

    def register(self, plugin: Plugin) -> None:
        """Add a plugin; ValueError (with the reason) for a duplicate or a bad spec."""
        spec = getattr(plugin, "spec", None)
        if not isinstance(spec, PluginSpec):
            raise ValueError(f"{type(plugin).__name__}: `spec` must be a PluginSpec")
        problem = spec_problem(spec)
        if problem is None and not inspect.iscoroutinefunction(getattr(plugin, "run", None)):
            problem = "`run` must be an async method"
        if problem is not None:
            raise ValueError(f"plugin {spec.name!r}: {problem}")
        if spec.name in self._plugins:
            raise ValueError(f"plugin {spec.name!r} is already registered")
        self._plugins[spec.name] = plugin

    def get(self, name: str) -> Plugin | None:
        """The plugin registered under `name` (enabled or not), or None."""
        return self._plugins.get(name)

    def is_enabled(self, name: str) -> bool:
        """True when `name` is registered and not disabled."""
        return name in self._plugins and name not in self._disabled

    def names(
        self, category: Category | None = None, *, include_disabled: bool = False
    ) -> list[str]:
        """Sorted names of enabled plugins (of one category when given)."""
        return sorted(
            name
            for name, plugin in self._plugins.items()
            if (category is None or plugin.spec.category == category)
            and (include_disabled or name not in self._disabled)
        )

    def specs(self, category: Category | None = None) -> list[PluginSpec]:
        """Specs of the enabled plugins, by name."""
        return [self._plugins[name].spec for name in self.names(category)]

    def enable(self, name: str) -> None:
        """Allow a registered plugin to run again."""
        self._known(name)
        self._disabled.discard(name)

    def disable(self, name: str) -> None:
        """Keep a registered plugin from running (execute and policy refuse it)."""
        self._known(name)
        self._disabled.add(name)

    def _known(self, name: str) -> None:
        if name not in self._plugins:
            raise KeyError(f"unknown plugin {name!r}")


def spec_problem(spec: PluginSpec) -> str | None:
    """What is wrong with a spec, as a short phrase, or None."""
    if not spec.name:
        return "name is empty"
    if not NAME.fullmatch(spec.name):
        return "name must be lower-case letters, digits and '_' (at most 48)"
    if spec.category not in CATEGORIES:
        return f"category must be one of {', '.join(CATEGORIES)}"
    if spec.risk not in RISKS:
        return f"risk must be one of {', '.join(RISKS)}"
    if not (isinstance(spec.params, type) and issubclass(spec.params, BaseModel)):
        return "params must be a pydantic BaseModel subclass"
    timeout = spec.timeout
    if not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0:
        return "timeout must be a positive number of seconds"
    if timeout > MAX_TIMEOUT:
        return f"timeout must be at most {MAX_TIMEOUT:.0f} seconds"
    if not (isinstance(spec.idempotent, bool) and isinstance(spec.supports_dry_run, bool)):
        return "idempotent and supports_dry_run must be booleans"
    if not (spec.title_zh.strip() and spec.title_en.strip()):
        return "title_zh and title_en must not be empty"
    return None


def discover(
    config: PluginsConfig | Mapping[str, Any] | None = None,
    *,
    redactor: Redactor | None = None,
    reach: Reach | None = None,
) -> PluginRegistry:
    """Build a registry from built-ins, entry points and a plugin directory; fail fast.

    Any problem (a factory that raises, a bad spec, a duplicate, a disabled name that does not
    exist) is a ValueError that names its source.
    """
    cfg = (
        config if isinstance(config, PluginsConfig) else PluginsConfig.model_validate(config or {})
    )
    registry = PluginRegistry(redactor=redactor, reach=reach)
    for plugin in builtin_plugins(cfg.settings, registry.reach):
        registry.register(plugin)
    if cfg.entry_points:
        for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
            source = f"entry point {point.name!r} ({point.value})"
            factory = _loaded(source, point.load)
            _register_from(registry, source, factory, cfg.settings.get(point.name, {}))
    if cfg.directory is not None:
        for path in _plugin_files(cfg.directory):
            source = f"plugin module {path}"
            module = _loaded(source, partial(_import_file, path))
            factory = getattr(module, "create_plugin", None)
            if not callable(factory):
                raise ValueError(f"{source}: defines no create_plugin(settings) function")
            _register_from(registry, source, factory, cfg.settings.get(path.stem, {}))
    for name in cfg.disabled:
        if registry.get(name) is None:
            raise ValueError(f"plugins.disabled: unknown plugin {name!r}")
        registry.disable(name)
    return registry


def _loaded(source: str, load: Callable[[], Any]) -> Any:
    try:
        return load()
    except Exception as exc:
        raise ValueError(f"{source}: cannot load: {type(exc).__name__}: {exc}") from exc


def _register_from(
    registry: PluginRegistry, source: str, factory: Any, settings: Mapping[str, Any]
) -> None:
    if not callable(factory):
        raise ValueError(f"{source}: is not a plugin factory")
    plugin = _loaded(source, lambda: factory(settings))
    try:
        registry.register(plugin)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def _plugin_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ValueError(f"plugins.directory: {directory} is not a directory")
    return sorted(p for p in directory.glob("*.py") if not p.name.startswith("_"))


def _import_file(path: Path) -> Any:
    name = f"larkops_plugin_dir.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
