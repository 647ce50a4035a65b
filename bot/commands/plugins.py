"""Plugins in the chat: /plugins, /plugin, /run, /runbooks, /policy (and /policy check).

`/run` never bypasses the policy: a diagnostic runs at once (inside its fences and quotas), a
remediation runs at once only when the policy says `auto`, waits for an approval card when it
says `approve`, and is refused with the reason otherwise.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from bot.context import HandlerContext
from bot.errors import UserFacingError
from bot.operations import OperationsDesk, Outcome
from bot.pairs import PairsError, parse_pairs
from bot.router import Router
from cards.operations import (
    ParamRow,
    PluginDetail,
    PluginRow,
    RunbookRow,
    plugin_card,
    plugins_card,
    policy_card,
    policy_check_card,
    runbooks_card,
)
from cards.texts import Texts
from plugins.contract import Plugin, PluginSpec
from plugins.policy import PolicyConfig, PolicyDecision
from plugins.reach import Reach

router = Router("plugins")


def bad_pairs(exc: PairsError, say: Texts) -> str:
    """Why the `key=value` arguments could not be read, in the chat's words."""
    return say("run.bad_pairs", reason=say(f"pairs.{exc.reason}", **exc.values))


def _title(spec: PluginSpec, say: Texts) -> str:
    return spec.title_en if say.language == "en" else spec.title_zh


def _row(ops: OperationsDesk, spec: PluginSpec, say: Texts) -> PluginRow:
    enabled = ops.toolkit.registry.is_enabled(spec.name)
    return PluginRow(spec.name, _title(spec, say), spec.category, spec.risk, enabled)


def _plugin(ctx: HandlerContext, ops: OperationsDesk, name: str) -> Plugin:
    """The named plugin, or a user-facing error that suggests close names."""
    registry = ops.toolkit.registry
    found = registry.get(name)
    if found is not None:
        return found
    known = registry.names(include_disabled=True)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = ctx.texts("plugin.suggest", names=", ".join(close)) if close else ""
    raise UserFacingError(ctx.texts("plugin.unknown", name=name[:48]) + hint)


@router.command("/plugins", roles=("viewer",))
async def list_plugins(ctx: HandlerContext, operations: OperationsDesk) -> None:
    """列出可用插件（诊断和修复）。
    List the plugins (diagnostics and fixes)."""
    ops, say = operations, ctx.texts
    registry = ops.toolkit.registry
    rows = [
        _row(ops, found.spec, say)
        for name in registry.names(include_disabled=True)
        if (found := registry.get(name)) is not None
    ]
    await ctx.reply_card(plugins_card(rows, say))


@router.command("/plugin", usage="<name>", roles=("viewer",))
async def show_plugin(ctx: HandlerContext, args: str, operations: OperationsDesk) -> None:
    """查看一个插件：风险、参数和示例。
    Show one plugin: its risk, parameters and an example."""
    ops, say = operations, ctx.texts
    name = args.strip().split(maxsplit=1)[0] if args.strip() else ""
    if not name:
        raise UserFacingError(say("plugin.usage"))
    spec = _plugin(ctx, ops, name).spec
    params = _param_rows(spec)
    example = " ".join([f"/run {spec.name}", *(f"{p.name}=…" for p in params if p.required)])
    detail = PluginDetail(
        row=_row(ops, spec, say),
        description=spec.description_en if say.language == "en" else spec.description_zh,
        timeout=spec.timeout,
        idempotent=spec.idempotent,
        supports_dry_run=spec.supports_dry_run,
        params=tuple(params),
        example=example,
    )
    await ctx.reply_card(plugin_card(detail, say))


@router.command("/run", usage="<plugin> key=value …", roles=("operator",))
async def run_plugin(ctx: HandlerContext, args: str, operations: OperationsDesk) -> None:
    """运行插件：诊断立即执行，修复按策略自动执行或发审批卡片。
    Run a plugin: diagnostics run at once; fixes run as the policy says (auto or approval card)."""
    ops, say = operations, ctx.texts
    name, _, rest = args.strip().partition(" ")
    if not name:
        raise UserFacingError(say("run.usage"))
    spec = _plugin(ctx, ops, name).spec
    try:
        params = parse_pairs(rest)
    except PairsError as exc:
        raise UserFacingError(bad_pairs(exc, say)) from None
    outcome = await ops.request(
        ctx.chat_id, ctx.user, spec.name, params, ctx.trace_id, key=ctx.event.event_id
    )
    await post_action(ctx, outcome)


async def post_action(ctx: HandlerContext, outcome: Outcome) -> str | None:
    """The card of a requested run, as a reply (`OperationsDesk.post_card`); its message id."""
    return await ctx.services.operations.post_card(outcome, ctx.reply_card)


@router.command("/runbooks", roles=("viewer",))
async def list_runbooks(ctx: HandlerContext, operations: OperationsDesk) -> None:
    """列出运维手册（告警匹配 → 诊断 → 修复 → 验证）。
    List the runbooks (alert match → diagnose → fix → verify)."""
    rows = [
        RunbookRow(
            name=book.name,
            match=dict(book.match),
            diagnose=tuple(step.plugin for step in book.diagnose),
            propose=book.propose.plugin if book.propose else None,
            verify=book.verify.plugin if book.verify else None,
        )
        for book in operations.toolkit.book.runbooks
    ]
    await ctx.reply_card(runbooks_card(rows, ctx.texts))


@router.command("/policy", usage="[check <plugin> key=value …]", roles=("viewer",))
async def show_policy(ctx: HandlerContext, args: str, operations: OperationsDesk) -> None:
    """查看生效的策略；/policy check 解释某个操作会如何被处理。
    Show the effective policy; /policy check explains what would happen to an action."""
    ops, say = operations, ctx.texts
    words = args.strip().split(maxsplit=2)
    if not words:
        lines = _policy_lines(ops.toolkit.policy.config, say)
        lines.append((say("policy.card.reach"), _reach_line(ops.toolkit.registry.reach, say)))
        await ctx.reply_card(policy_card(lines, say))
        return
    if words[0] != "check" or len(words) < 2:
        raise UserFacingError(say("policy.usage"))
    spec = _plugin(ctx, ops, words[1]).spec
    try:
        params = parse_pairs(words[2] if len(words) > 2 else "")
    except PairsError as exc:
        raise UserFacingError(bad_pairs(exc, say)) from None
    decision = await ops.explain(spec, params)
    lines = _check_lines(spec, decision, ops, say)
    card = policy_check_card(spec.name, params, decision.kind, lines, say, decision.detail)
    await ctx.reply_card(card)


def _check_lines(
    spec: PluginSpec, decision: PolicyDecision, ops: OperationsDesk, say: Texts
) -> list[tuple[str, str]]:
    config = ops.toolkit.policy.config
    risk = say(f"card.risk.{decision.risk}")
    declared = say(f"card.risk.{decision.declared_risk}")
    lines = [
        (say("policy.check.decision"), say(f"card.decision.{decision.kind}")),
        (say("policy.check.reason"), decision.reason),
        (say("policy.check.risk"), say("policy.check.risk_value", risk=risk, declared=declared)),
        (say("policy.check.category"), say(f"plugins.category.{spec.category}")),
    ]
    if decision.target:
        limit = config.max_per_target_per_hour or "∞"
        lines.append((say("policy.check.target"), f"{decision.target} (≤ {limit}/h)"))
    if decision.scope:
        scope = ", ".join(f"{k}={v}" for k, v in sorted(decision.scope.items()))
        lines.append((say("policy.check.scope"), scope))
    if decision.window:
        lines.append((say("policy.check.window"), decision.window))
    if decision.kind == "approve":
        who = decision.approver_list or say("policy.check.usual_approvers")
        lines.append((say("policy.check.approvers"), f"{who} × {decision.required_approvals}"))
    if decision.dry_run:
        lines.append((say("policy.check.dry_run"), say("yes")))
    return lines


def _reach_line(reach: Reach, say: Texts) -> str:
    """Where plugins may connect when an alert names the address (the fetch allow-list)."""
    if reach.rules:
        return ", ".join(reach.describe())
    return say("policy.card.reach_open" if reach.open else "policy.card.reach_none")


def _policy_lines(config: PolicyConfig, say: Texts) -> list[tuple[str, str]]:
    auto = (
        say("policy.card.auto_none")
        if config.auto_max_risk == "none"
        else say("policy.card.auto_upto", risk=say(f"card.risk.{config.auto_max_risk}"))
    )
    lines = [
        (say("policy.card.auto"), auto),
        (
            say("policy.card.approvals"),
            say(
                "policy.card.approvals_value",
                normal=config.approvals,
                critical=config.critical_approvals,
            ),
        ),
        (
            say("policy.card.quotas"),
            say(
                "policy.card.quotas_value",
                target=config.max_per_target_per_hour or "∞",
                auto=config.max_auto_per_hour or "∞",
            ),
        ),
        (say("policy.card.dry_run"), say("yes" if config.dry_run else "no")),
    ]
    fenced = config.targets.configured()
    if fenced:
        value = "; ".join(f"{kind}: {', '.join(values)}" for kind, values in fenced.items())
        lines.append((say("policy.card.targets"), value))
    for plugin, fences in sorted(config.fences.items()):
        for path, fence in fences.items():
            lines.append((say("policy.card.fence", plugin=plugin, path=path), fence.describe()))
    if config.approver_lists:
        value = "; ".join(
            f"{name} ({len(members)})" for name, members in sorted(config.approver_lists.items())
        )
        lines.append((say("policy.card.lists"), value))
    routing = [f"{risk} → {name}" for risk, name in config.approvers_by_risk.items()]
    routing += [f"{plugin} → {name}" for plugin, name in config.approvers_by_plugin.items()]
    if routing:
        lines.append((say("policy.card.routing"), ", ".join(routing)))
    windows = "; ".join(w.describe() for w in config.change_windows) or say("policy.card.anytime")
    lines.append((say("policy.card.windows"), windows))
    if config.change_windows:
        lines.append(
            (say("policy.card.outside"), say(f"policy.card.outside_{config.outside_window}"))
        )
    for freeze in config.freezes:
        lines.append((say("policy.card.freeze"), freeze.describe()))
    return lines


def _param_rows(spec: PluginSpec) -> list[ParamRow]:
    """Parameters from the model's JSON schema: name, type, required, default, description."""
    schema = spec.params.model_json_schema()
    required = set(schema.get("required", []))
    rows = []
    for name, prop in (schema.get("properties") or {}).items():
        rows.append(
            ParamRow(
                name=name,
                type=_type_name(prop, schema),
                required=name in required,
                default=""
                if "default" not in prop
                else json.dumps(prop["default"], ensure_ascii=False),
                description=str(prop.get("description", "")),
            )
        )
    return rows


def _type_name(prop: dict[str, Any], schema: dict[str, Any]) -> str:
    if "enum" in prop:
        return "|".join(str(v) for v in prop["enum"])
    if "const" in prop:
        return str(prop["const"])
    if "anyOf" in prop:
        names = [_type_name(option, schema) for option in prop["anyOf"]]
        return "|".join(n for n in names if n != "null") or "null"
    if "$ref" in prop:
        target = str(prop["$ref"]).rsplit("/", 1)[-1]
        return _type_name(schema.get("$defs", {}).get(target, {}), schema) or target
    return str(prop.get("type", "any"))
