"""Where the settings come from, highest first: the values given in code, the process
environment, `.env` in the working directory, the YAML file named by `LARKOPS_CONFIG`.

Each source gives values keyed by environment name (`LARKOPS_HTTP_PORT`); names are matched
without regard to case. A structured setting (a mapping or a list such as `LARKOPS_LLM`) is JSON
in the environment and `.env`; `merged` combines the sources, nested mappings key by key.

This is what pydantic-settings did for `bot.config`, without its imports (asyncio, argparse,
importlib.resources, zipfile …, a sixth of the instructions a `larkops config check` ran).
`.env` is still read by python-dotenv, imported only when the file exists; PyYAML only when
`LARKOPS_CONFIG` names a file.

Usage::

    values = merged(given, environment(names), dotenv_file(names), yaml_file(path))
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DOTENV = Path(".env")
CONFIG_NAME = "LARKOPS_CONFIG"


class ConfigError(Exception):
    """Invalid configuration: start-up stops with this one line, never a stack trace."""


def environment(names: Mapping[str, bool]) -> dict[str, Any]:
    """The process environment's values for `names` (environment name → is it JSON)."""
    return _known(os.environ, names, "environment")


def dotenv_file(names: Mapping[str, bool], path: Path = DOTENV) -> dict[str, Any]:
    """`.env`'s values for `names` (a missing file gives none)."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values  # only with a .env: it is not needed otherwise

    found = {k: v for k, v in dotenv_values(path, encoding="utf-8").items() if v is not None}
    return _known(found, names, str(path))


def config_path(*sources: Mapping[str, Any]) -> Path | None:
    """The YAML file named by `LARKOPS_CONFIG` in the first source that names one."""
    for source in sources:
        raw = source.get(CONFIG_NAME)
        if raw is not None:
            return Path(str(raw)) if raw else None
    return None


def yaml_file(path: Path | None) -> dict[str, Any]:
    """The YAML file's top-level mapping, keys as written (`{}` without a file)."""
    if path is None:
        return {}
    import yaml  # only with a file: the CLI paths that need no file start without it

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{CONFIG_NAME}: cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{CONFIG_NAME}: {path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{CONFIG_NAME}: {path} must hold a mapping at the top level")
    return data


def merged(*sources: Mapping[str, Any]) -> dict[str, Any]:
    """The sources combined, the first winning; mappings present in several are combined
    key by key (a YAML `llm:` section keeps the keys an `LARKOPS_LLM` value does not set)."""
    result: dict[str, Any] = {}
    for source in reversed(sources):
        result = _deep(result, source)
    return result


def _deep(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in update.items():
        old = result.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            result[key] = _deep(old, value)
        else:
            result[key] = value
    return result


def _known(values: Mapping[str, str], names: Mapping[str, bool], where: str) -> dict[str, Any]:
    by_lower = {name.lower(): name for name in names}
    found: dict[str, Any] = {}
    for key, value in values.items():
        name = by_lower.get(key.lower())
        if name is None:
            continue
        found[name] = _decoded(name, value, where) if names[name] else value
    return found


def _decoded(name: str, value: str, where: str) -> Any:
    import json

    try:
        return json.loads(value)
    except ValueError:
        raise ConfigError(
            f"{name}: the value in the {where} is not JSON (a structured setting: "
            f'{name}=\'{{"key": "value"}}\', or set it in the {CONFIG_NAME} YAML file)'
        ) from None
