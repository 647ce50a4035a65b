"""One call that judges a proposed plugin run with the quotas counted from the database.

Used by the incident workflow and by `/run` alike, so a chat request and an alert meet the same
policy with the same counts.

Usage::

    decision = await judge(db, policy, spec, {"template": "restart_service", ...}, alert=alert)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from plugins.contract import AlertContext, InvalidParams, PluginSpec, validate_params
from plugins.policy import PolicyDecision, PolicyEngine, target_of
from storage.database import Database
from storage.executions import usage


async def judge(
    db: Database,
    policy: PolicyEngine,
    spec: PluginSpec,
    params: Mapping[str, Any],
    *,
    alert: AlertContext | None,
    risk_hint: str | None = None,
    now: datetime | None = None,
) -> PolicyDecision:
    """The policy's decision, with the per-target and global automatic-run counts filled in."""
    try:
        model = validate_params(spec, params)
    except InvalidParams:
        # the engine refuses invalid parameters itself, with the reason; nothing to count
        return policy.evaluate(spec, params, alert=alert, risk_hint=risk_hint, now=now)
    used = await usage(db, target_of(spec, model))
    return policy.evaluate(
        spec,
        model,
        alert=alert,
        risk_hint=risk_hint,
        recent_executions=used.on_target,
        recent_auto=used.auto,
        now=now,
    )
