"""Builds the advisor the incident workflow uses from the configuration (`LLM_PROVIDER`).

Only `rules` exists so far (model-backed advisors come with the LLM issue): plugins from the
`plugins:` section, the policy from `policy:`, runbooks from `runbooks:`. A configuration
problem there is a `ConfigError` at start-up, naming the section.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from bot.config import ConfigError, Settings
from bot.operations import Toolkit
from cards.texts import texts
from plugins.policy import PolicyEngine
from plugins.reach import Reach
from plugins.registry import discover
from plugins.runbooks import RunbookBook
from storage.coordination import Coordination
from storage.coordination.memory_backend import MemoryCoordination
from storage.database import Database
from storage.redaction import Redactor
from workflows.llm.advisor import ModelAdvisor
from workflows.llm.agent import DiagnosisAgent
from workflows.llm.council import Council, Seat
from workflows.llm.guard import CouncilMember, LlmConfig, ModelGuard
from workflows.llm.prompt import Scrubber
from workflows.llm.providers import build_model
from workflows.memory.embedding import build_embedder
from workflows.memory.recall import IncidentMemory
from workflows.ports import Advisor
from workflows.rules import RulesAdvisor

SECRET_KEY = re.compile(r"token|password|passwd|secret|api_?key", re.IGNORECASE)


def build_toolkit(settings: Settings) -> Toolkit:
    """Plugins, policy and runbooks from the configuration; ConfigError names the section."""
    try:
        reach = Reach.parse(settings.fetch_allow, enforced=settings.lark_configured)
    except ValueError as exc:
        raise ConfigError(f"LARKOPS_FETCH_ALLOW: {exc}") from None
    try:
        registry = discover(
            settings.plugins,
            redactor=Redactor(known=[*settings.secret_values(), *_secrets_in(settings.plugins)]),
            reach=reach,
        )
    except (ValueError, ValidationError) as exc:
        raise ConfigError(f"plugins: {_first_line(exc)}") from None
    try:
        policy = PolicyEngine(settings.policy, registry=registry, say=texts(settings.language))
    except (ValueError, ValidationError) as exc:
        raise ConfigError(f"policy: {_first_line(exc)}") from None
    try:
        book = RunbookBook.from_config(settings.runbooks, registry)
    except (ValueError, ValidationError) as exc:
        raise ConfigError(f"runbooks: {_first_line(exc)}") from None
    return Toolkit(registry, policy, book)


def llm_config(settings: Settings) -> LlmConfig:
    """The `llm:` section, checked; ConfigError names it."""
    try:
        return LlmConfig.model_validate(settings.llm)
    except ValidationError as exc:
        raise ConfigError(f"llm: {_first_line(exc)}") from None


def build_memory(settings: Settings, db: Database) -> IncidentMemory:
    """Incident memory with the configured embeddings (offline hashing by default)."""
    config = llm_config(settings)
    try:
        embedder = build_embedder(
            config.embeddings,
            api_key=settings.openai_api_key.get_secret_value(),
            model=config.embedding_model,
            base_url=settings.openai_base_url or None,
        )
    except ValueError as exc:
        raise ConfigError(f"llm.embeddings: {_first_line(exc)}") from None
    return IncidentMemory(db, embedder)


def build_advisor(
    settings: Settings,
    db: Database,
    toolkit: Toolkit | None = None,
    coordination: Coordination | None = None,
    *,
    memory: IncidentMemory | None = None,
    council: Council | None = None,
    verify_interval: float = 5.0,
) -> Advisor:
    """The incident workflow's advisor: `rules`, or a model with rules behind it.

    Both remember resolved incidents and recall similar ones (offline hashing embeddings by
    default; `llm.embeddings: openai` uses the OpenAI-compatible endpoint). A bad `llm:`
    section, an unknown provider or a missing key is a ConfigError at start-up."""
    kit = toolkit or build_toolkit(settings)
    config = llm_config(settings)
    openai_key = settings.openai_api_key.get_secret_value()
    try:
        model = build_model(
            settings.llm_provider,
            settings.llm_model,
            openai_api_key=openai_key,
            openai_base_url=settings.openai_base_url or None,
            anthropic_api_key=settings.anthropic_api_key.get_secret_value(),
            anthropic_base_url=settings.anthropic_base_url or None,
        )
    except ValueError as exc:
        raise ConfigError(f"LLM_PROVIDER: {_first_line(exc)}") from None
    memory = memory or build_memory(settings, db)
    rules = RulesAdvisor(
        kit.registry, kit.policy, kit.book, db, memory=memory, verify_interval=verify_interval
    )
    shared = coordination or MemoryCoordination()
    scrub = Scrubber(
        kit.registry.redactor, labels=config.redact_labels, patterns=config.redact_patterns
    )
    council = council or build_council(settings, db, kit, shared)
    if model is None and council is None:
        return rules
    if model is None:
        assert council is not None  # the first member makes proposals
        agent = next(iter(council.seats.values())).agent
    else:
        guard = ModelGuard(model, db, shared, config)
        agent = DiagnosisAgent(guard, kit.registry, kit.policy, scrub, language=settings.language)
    return ModelAdvisor(
        rules, agent.guard, agent, scrub, language=settings.language, council=council
    )


def build_council(
    settings: Settings, db: Database, kit: Toolkit, coordination: Coordination | None = None
) -> Council | None:
    """The council of `llm.council` (None without one): each member its own model, guard and
    agent. A member without a key, or a provider that cannot work, is a ConfigError."""
    config = llm_config(settings)
    if not config.council:
        return None
    coordination = coordination or MemoryCoordination()
    scrub = Scrubber(
        kit.registry.redactor, labels=config.redact_labels, patterns=config.redact_patterns
    )
    seats = []
    for member in config.council:
        try:
            model = build_model(member.provider, member.model, **_member_keys(settings, member))
        except ValueError as exc:
            raise ConfigError(f"llm.council.{member.name}: {_first_line(exc)}") from None
        assert model is not None
        prices = {
            "price_per_mtok_in": member.price_per_mtok_in,
            "price_per_mtok_out": member.price_per_mtok_out,
        }
        own = config.model_copy(update={k: v for k, v in prices.items() if v is not None})
        # a member with its own address (a local server) has its own rate; the others share
        # their provider's with the main model
        rate_key = f"llm:{member.provider}@{member.base_url}" if member.base_url else None
        guard = ModelGuard(
            model,
            db,
            coordination,
            own,
            model_tokens=member.incident_tokens,
            rate_key=rate_key,
        )
        agent = DiagnosisAgent(guard, kit.registry, kit.policy, scrub, language=settings.language)
        seats.append(Seat(member.name, agent))
    return Council(db, seats, scrub, seconds=config.council_seconds)


def _member_keys(settings: Settings, member: CouncilMember) -> dict[str, Any]:
    """The key and address a council member's SDK gets."""
    named = os.environ.get(member.api_key_env, "") if member.api_key_env else None
    if member.provider == "openai":
        return {
            "openai_api_key": settings.openai_api_key.get_secret_value()
            if named is None
            else named,
            "openai_base_url": member.base_url or settings.openai_base_url or None,
        }
    return {
        "anthropic_api_key": (
            settings.anthropic_api_key.get_secret_value() if named is None else named
        ),
        "anthropic_base_url": member.base_url or settings.anthropic_base_url or None,
    }


def _secrets_in(value: Any, key: str = "") -> list[str]:
    """String values under secret-sounding keys of the plugin settings (tokens, passwords)."""
    if isinstance(value, Mapping):
        return [found for k, v in value.items() for found in _secrets_in(v, str(k))]
    if isinstance(value, list | tuple):
        return [found for item in value for found in _secrets_in(item, key)]
    if isinstance(value, str) and SECRET_KEY.search(key):
        return [value]
    return []


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
