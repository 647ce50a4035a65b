"""Plugin contract, registry and discovery, policy engine, runbooks, built-in plugins.

Usage::

    registry = discover(settings_plugins, redactor=redactor)
    engine = PolicyEngine(settings_policy, registry=registry)
    book = RunbookBook.from_config(settings_runbooks, registry)
    diagnosis = await diagnose_with_rules(book, registry, alert, policy=engine)
    proposal = await propose_with_rules(book, registry, alert)
    spec = registry.get(proposal.plugin).spec
    decision = engine.evaluate(spec, proposal.params, alert=alert, recent_executions=n)
    result = await execute(registry, proposal.plugin, PluginContext(alert=alert), proposal.params)
    verification = await verify_with_rules(book, registry, alert, attempts=3)

Nothing from an alert, a chat or a model reaches a shell: `command` runs allow-listed argv
templates only, each value checked against its regex and confined to one argv element.
"""

from plugins.contract import (
    RISKS,
    AlertContext,
    Category,
    InvalidParams,
    Plugin,
    PluginContext,
    PluginResult,
    PluginSpec,
    Risk,
    validate_params,
)
from plugins.execution import execute
from plugins.outcome import Diagnosis, Proposal, Verification
from plugins.policy import PolicyConfig, PolicyDecision, PolicyEngine, target_of
from plugins.registry import PluginRegistry, PluginsConfig, discover
from plugins.runbooks import (
    Runbook,
    RunbookBook,
    Step,
    diagnose_with_rules,
    propose_with_rules,
    verify_with_rules,
)

__all__ = [
    "RISKS",
    "AlertContext",
    "Category",
    "Diagnosis",
    "InvalidParams",
    "Plugin",
    "PluginContext",
    "PluginRegistry",
    "PluginResult",
    "PluginSpec",
    "PluginsConfig",
    "PolicyConfig",
    "PolicyDecision",
    "PolicyEngine",
    "Proposal",
    "Risk",
    "Runbook",
    "RunbookBook",
    "Step",
    "Verification",
    "diagnose_with_rules",
    "discover",
    "execute",
    "propose_with_rules",
    "target_of",
    "validate_params",
    "verify_with_rules",
]
