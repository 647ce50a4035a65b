"""Builds the advisor the incident workflow uses from the configuration (`LLM_PROVIDER`).

Only `rules` exists so far (model-backed advisors come with the LLM issue): plugins from the
`plugins:` section, the policy from `policy:`, runbooks from `runbooks:`. A configuration
problem there is a `ConfigError` at start-up, naming the section.
"""

from __future__ import annotations

from pydantic import ValidationError

from bot.config import ConfigError, Settings
from plugins.policy import PolicyEngine
from plugins.registry import discover
from plugins.runbooks import RunbookBook
from storage.database import Database
from workflows.rules import RulesAdvisor


def build_advisor(settings: Settings, db: Database) -> RulesAdvisor:
    try:
        registry = discover(settings.plugins)
    except (ValueError, ValidationError) as exc:
        raise ConfigError(f"plugins: {_first_line(exc)}") from None
    try:
        policy = PolicyEngine(settings.policy, registry=registry)
    except (ValueError, ValidationError) as exc:
        raise ConfigError(f"policy: {_first_line(exc)}") from None
    try:
        book = RunbookBook.from_config(settings.runbooks, registry)
    except (ValueError, ValidationError) as exc:
        raise ConfigError(f"runbooks: {_first_line(exc)}") from None
    return RulesAdvisor(registry, policy, book, db)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
