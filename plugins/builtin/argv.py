"""Allow-listed argv templates for the `command` plugin: parsed and checked once, at load.

A template is a list of argv elements. `{name}` marks a placeholder (`{{` and `}}` are literal
braces; any other brace is a configuration error). Each placeholder needs a regex under
`params`; every value must full-match its regex and lands inside exactly one argv element —
values are never split, never re-scanned for placeholders, never seen by a shell. A value that
would fill a whole element may not start with `-` (no option injection). The executable (first
element) is literal and resolved to an absolute path at load time.

Configuration shape (`plugins.settings.command.templates.<name>`)::

    restart_service:
      argv: [systemctl, restart, "{service}"]
      params: {service: "^[a-z0-9][a-z0-9_.-]{0,62}$"}
      risk: medium            # medium (default), high or critical; never below medium
      timeout: 30             # seconds, the process group is killed after it
      title_zh: 重启服务
      title_en: Restart a service
      env: {}                 # optional fixed extra environment (no placeholders)
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from plugins.contract import Risk, risk_rank

SAFE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
BASE_RISK: Risk = "medium"
VALUE_LIMIT = 1024
_TOKEN = re.compile(r"\{\{|\}\}|\{([a-z_][a-z0-9_]{0,31})\}|[{}]")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
TEMPLATE_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")


class TemplateConfig(BaseModel):
    """One template as written in the configuration."""

    model_config = ConfigDict(extra="forbid")

    argv: list[str] = Field(min_length=1, max_length=64)
    params: dict[str, str] = Field(default_factory=dict)
    risk: Risk = BASE_RISK
    timeout: float = Field(default=30.0, gt=0, le=3600)
    title_zh: str = ""
    title_en: str = ""
    env: dict[str, str] = Field(default_factory=dict)


# an argv element: literal text and placeholder names, in order
Part = tuple[bool, str]  # (is_placeholder, text or name)


@dataclass(frozen=True)
class ArgvTemplate:
    """A checked template, ready to render."""

    name: str
    executable: str
    elements: tuple[tuple[Part, ...], ...]  # argv[1:]
    patterns: Mapping[str, re.Pattern[str]]
    risk: Risk
    timeout: float
    title_zh: str
    title_en: str
    env: Mapping[str, str]

    def problems(self, args: Mapping[str, str]) -> list[str]:
        """Why `args` cannot fill this template (empty when they can). Never echoes values."""
        found = []
        for name in sorted(set(self.patterns) - set(args)):
            found.append(f"missing argument {name!r}")
        for name in sorted(set(args) - set(self.patterns)):
            found.append(f"unexpected argument {name[:40]!r}")
        for name, pattern in sorted(self.patterns.items()):
            value = args.get(name)
            if value is None:
                continue
            if len(value) > VALUE_LIMIT or "\x00" in value or not pattern.fullmatch(value):
                found.append(f"argument {name!r} does not match its allowed pattern")
            elif value.startswith("-") and name in self._whole_elements():
                found.append(f"argument {name!r} may not start with '-'")
        return found

    def render(self, args: Mapping[str, str]) -> list[str]:
        """The argv list; call only after `problems(args)` came back empty."""
        argv = [self.executable]
        for element in self.elements:
            argv.append("".join(args[text] if hole else text for hole, text in element))
        return argv

    def _whole_elements(self) -> set[str]:
        return {el[0][1] for el in self.elements if len(el) == 1 and el[0][0]}


def load_template(name: str, raw: Mapping[str, Any]) -> ArgvTemplate:
    """Check one template (ValueError naming the template and the problem)."""
    where = f"command template {name!r}"
    if not TEMPLATE_NAME.fullmatch(name):
        raise ValueError(f"{where}: name must be lower-case letters, digits and '_'")
    config = TemplateConfig.model_validate(raw)
    if risk_rank(config.risk) < risk_rank(BASE_RISK):
        raise ValueError(f"{where}: risk may only raise the plugin's risk ({BASE_RISK})")
    head, *rest = config.argv
    if _TOKEN.search(head):
        raise ValueError(f"{where}: the executable may not contain placeholders or braces")
    elements = tuple(_parse_element(where, element) for element in rest)
    used = {text for element in elements for hole, text in element if hole}
    if used != set(config.params):
        missing = sorted(used - set(config.params))
        unused = sorted(set(config.params) - used)
        raise ValueError(
            f"{where}: placeholders without a pattern {missing}, patterns without a placeholder "
            f"{unused}"
        )
    patterns = {}
    for param, pattern in config.params.items():
        try:
            patterns[param] = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{where}: param {param!r}: bad regex: {exc}") from None
    for key, value in config.env.items():
        if not _ENV_NAME.fullmatch(key) or "\x00" in value:
            raise ValueError(f"{where}: bad env entry {key!r}")
    return ArgvTemplate(
        name=name,
        executable=resolve_executable(where, head),
        elements=elements,
        patterns=patterns,
        risk=config.risk,
        timeout=config.timeout,
        title_zh=config.title_zh or name,
        title_en=config.title_en or name,
        env=dict(config.env),
    )


def resolve_executable(where: str, program: str) -> str:
    """Absolute path of an executable: as given when absolute, else looked up in SAFE_PATH."""
    if "\x00" in program or not program:
        raise ValueError(f"{where}: empty or invalid executable")
    if "/" in program:
        if not os.path.isabs(program):
            raise ValueError(f"{where}: executable {program!r} must be absolute or a bare name")
        path: str | None = program
    else:
        path = shutil.which(program, path=SAFE_PATH)
    if path is None or not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise ValueError(f"{where}: executable {program!r} not found (searched {SAFE_PATH})")
    return os.path.abspath(path)


def _parse_element(where: str, element: str) -> tuple[Part, ...]:
    if "\x00" in element:
        raise ValueError(f"{where}: argv elements may not contain NUL")
    parts: list[Part] = []
    literal: list[str] = []
    position = 0
    for match in _TOKEN.finditer(element):
        literal.append(element[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif match.group(1) is None:
            raise ValueError(f"{where}: stray {token!r} in {element!r} (use {{{{ or }}}})")
        else:
            if "".join(literal):
                parts.append((False, "".join(literal)))
            literal = []
            parts.append((True, match.group(1)))
    literal.append(element[position:])
    if "".join(literal) or not parts:
        parts.append((False, "".join(literal)))
    return tuple(parts)
