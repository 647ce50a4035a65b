"""Incidents in the chat: approval buttons, /incidents, /incident, /ack, /resolve, /escalate,
/diagnose, /silence, /silences, /unsilence, and alert intake from alert bots' messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bot import decisions
from bot.commands.numbers import number_of
from bot.context import ActionResult, HandlerContext, Toast
from bot.errors import UserFacingError
from bot.incidents.desk import IncidentDesk, IncidentRefused
from bot.incidents.messages import read_alert_message
from bot.incidents.silencing import Silencing
from bot.lark.events import MessageEvent
from bot.operations import OperationsDesk
from bot.router import Router
from cards.actions import ActionPayload
from cards.gates import Approve, GateAction, Reject
from cards.lists import incidents_card, silences_card, timeline_card
from cards.markup import calls, said
from cards.operations import action_card
from cards.texts import Texts
from cards.views import IncidentRow, PendingSilenceView, SilenceView, TimelineEntry
from storage import approvals, silences
from storage.models import Silence
from workflows import gates
from workflows.gates import Click, Decision
from workflows.silence_words import split_request
from workflows.silences import SilenceError, parse_duration, parse_matcher

router = Router("incidents")


# approval buttons -----------------------------------------------------------------------


_REFUSED_TEXT = {
    "expired": "gate.expired",
    "unknown": "action.unknown",
    "duplicate": "gate.duplicate",
    "not_approver": "gate.not_approver",
    "own_request": "gate.own_request",
}


async def _decide(
    ctx: HandlerContext,
    payload: GateAction,
    decision: Decision,
    desk: IncidentDesk,
    operations: OperationsDesk,
) -> ActionResult:
    """Parse the click, let the gates decide, render the verdict (Lark allows 3 s; the
    workflow or the action carries on afterwards)."""
    say = ctx.texts
    click = Click(
        run_id=payload.run_id,
        gate=payload.gate,
        token=payload.interrupt_id,
        incident_id=payload.incident_id,
        decision=decision,
        expires=payload.exp,
    )
    verdict = await desk.decide(click, ctx.roles, ctx.user, ctx.chat_id, trace_id=ctx.trace_id)
    if payload.gate == silences.GATE and payload.incident_id is None:
        return await _silence_decided(ctx, payload, verdict, decision, desk.silencing)
    if verdict.refusal == "stale" and verdict.gate is not None:
        status = say(f"card.gate.status.{verdict.gate.status}")
        return ActionResult(toast=Toast("error", say("gate.stale", status=status)))
    if verdict.refusal is not None or verdict.gate is None:
        return ActionResult(toast=Toast("error", say(_REFUSED_TEXT[verdict.refusal or "unknown"])))
    claim = approvals.Claim(verdict.gate, verdict.closed)
    if payload.incident_id is None:
        return await _action_decided(ctx, claim, decision, operations)
    card = await desk.card(payload.incident_id)
    if not claim.decided:
        have = len(claim.row.approvals)
        return ActionResult(
            toast=Toast("info", say("gate.partial", have=have, need=claim.row.required_approvals)),
            card=card,
        )

    async def carry_on() -> None:
        await decisions.resume(ctx.services, claim.row, decision, ctx.user)

    text = say("gate.approved") if decision == "approve" else say("gate.rejected")
    # the next card reaches Lark as a patch from the resumed run (tens of ms of work later,
    # through the per-card patcher), not as a token update: a short pause is enough
    return ActionResult(toast=Toast("success", text), card=card, later=carry_on, later_after=0.05)


async def _action_decided(
    ctx: HandlerContext, claim: approvals.Claim, decision: str, operations: OperationsDesk
) -> ActionResult:
    """A click on a /run approval card: show it at once, run (or not) right after."""
    say = ctx.texts
    action = await operations.by_run(claim.row.run_id)
    if action is None:
        return ActionResult(toast=Toast("error", say("action.unknown")))
    view = await operations.view(action.id)
    zone = ctx.zone
    if not claim.decided:
        have = len(claim.row.approvals)
        return ActionResult(
            toast=Toast("info", say("gate.partial", have=have, need=claim.row.required_approvals)),
            card=action_card(view, say, zone, **operations.buttons(claim.row)) if view else None,
        )
    if view is not None:
        status = "running" if decision == "approve" else "rejected"
        view = replace(
            view, status=status, decided_by=approvals.approvers_of(claim.row) or (ctx.user,)
        )

    async def carry_on() -> None:
        await decisions.resume(ctx.services, claim.row, decision, ctx.user)

    text = say("action.approved") if decision == "approve" else say("action.rejected")
    return ActionResult(
        toast=Toast("success", text),
        card=action_card(view, say, zone) if view is not None else None,
        later=carry_on,
        later_after=0.05,
    )


@router.card_action(Approve, roles=("viewer",))  # the gate decides who (see _decide)
async def approve(
    ctx: HandlerContext, payload: Approve, desk: IncidentDesk, operations: OperationsDesk
) -> ActionResult:
    return await _decide(ctx, payload, "approve", desk, operations)


@router.card_action(Reject, roles=("viewer",))
async def reject(
    ctx: HandlerContext, payload: Reject, desk: IncidentDesk, operations: OperationsDesk
) -> ActionResult:
    return await _decide(ctx, payload, "reject", desk, operations)


# commands -------------------------------------------------------------------------------


def incident_id_of(ctx: HandlerContext, args: str, command: str) -> int:
    """The incident number a command names first (`7` or `#7`), else its usage."""
    number = number_of((args.split() or [""])[0])
    if number is None:
        raise UserFacingError(ctx.texts("incident.usage_id", command=command))
    return number


def refused(say: Texts, exc: IncidentRefused) -> str:
    """Why the desk refused, in the reader's words (/ack, /resolve, /escalate, the Ack button)."""
    if exc.reason == "not_found":
        return say("incident.not_found", id=exc.incident_id)
    if exc.reason == "escalated":
        return say("incident.already_escalated", id=exc.incident_id)
    if exc.reason == "not_resolved":
        return say("postmortem.not_resolved", id=exc.incident_id)
    status = say(f"card.status.{exc.status}")
    return say("incident.already_closed", id=exc.incident_id, status=status)


@router.command("/incidents", usage="[open|all]", roles=("viewer",))
async def list_incidents(ctx: HandlerContext, args: str, desk: IncidentDesk) -> None:
    """列出进行中的事件（all 列出最近所有事件）。
    List open incidents (all: recent ones too)."""
    everything = args.strip().lower() == "all"
    rows = await desk.listing(everything=everything)
    if not rows:
        await ctx.reply_text(ctx.texts("incidents.none"))
        return
    views = [
        IncidentRow(r.id, r.title, r.severity, r.status, r.alert_count, r.last_seen_at)
        for r in rows
    ]
    title = ctx.texts("incidents.title_all" if everything else "incidents.title_open")
    await ctx.reply_card(incidents_card(views, title, ctx.texts, ctx.zone))


@router.command("/incident", usage="<id>", roles=("viewer",))
async def show_incident(ctx: HandlerContext, args: str, desk: IncidentDesk) -> None:
    """显示事件的时间线。
    Show an incident's timeline."""
    incident_id = incident_id_of(ctx, args, "/incident")
    try:
        incident = await desk.incident(incident_id)
    except IncidentRefused as exc:
        raise UserFacingError(refused(ctx.texts, exc)) from None
    view = await desk.presenter.view(incident)
    entries = [
        TimelineEntry(
            e.created_at,
            e.kind,
            e.actor,
            e.message,
            dict(e.data or {}),
        )
        for e in await desk.timeline(incident_id)
    ]
    await ctx.reply_card(timeline_card(view, entries, ctx.texts, ctx.zone))
    if view.gate is not None and view.gate.status == "pending":  # its buttons again, to decide
        await ctx.reply_card(await desk.presenter.render(incident))


@router.command("/ack", usage="<id>", roles=("operator",))
async def ack(ctx: HandlerContext, args: str, desk: IncidentDesk) -> None:
    """确认事件（表示有人在处理）。
    Acknowledge an incident (someone is on it)."""
    incident_id = incident_id_of(ctx, args, "/ack")
    try:
        first = await desk.acknowledge(incident_id, ctx.user, trace_id=ctx.trace_id)
    except IncidentRefused as exc:
        raise UserFacingError(refused(ctx.texts, exc)) from None
    if first != ctx.user:
        who = calls([first]) or said(first, 64)
        await ctx.reply_text(ctx.texts("incident.already_acked", id=incident_id, who=who))
        return
    await ctx.reply_text(
        ctx.texts("incident.acked", id=incident_id, who=calls([ctx.user]) or said(ctx.user, 64))
    )


@router.command("/resolve", usage="<id> [note]", roles=("approver",))
async def resolve(ctx: HandlerContext, args: str, desk: IncidentDesk) -> None:
    """手动将事件标记为已恢复。
    Mark an incident resolved by hand."""
    incident_id = incident_id_of(ctx, args, "/resolve")
    note = args.split(" ", 1)[1].strip() if " " in args else ""
    try:
        await desk.resolve(incident_id, ctx.user, note)
    except IncidentRefused as exc:
        raise UserFacingError(refused(ctx.texts, exc)) from None
    await ctx.reply_text(ctx.texts("incident.resolved", id=incident_id))


@router.command("/escalate", usage="<id>", roles=("approver",))
async def escalate(ctx: HandlerContext, args: str, desk: IncidentDesk) -> None:
    """把事件升级给值班同学。
    Escalate an incident to on-call."""
    incident_id = incident_id_of(ctx, args, "/escalate")
    try:
        await desk.escalate(incident_id, ctx.user)
    except IncidentRefused as exc:
        raise UserFacingError(refused(ctx.texts, exc)) from None
    await ctx.reply_text(ctx.texts("incident.escalating", id=incident_id))


@router.command("/diagnose", usage="<id>", roles=("approver",))
async def diagnose(ctx: HandlerContext, args: str, desk: IncidentDesk) -> None:
    """为事件（例如告警风暴中的事件）启动诊断流程。
    Start the workflow of an incident (e.g. one grouped in an alert storm)."""
    incident_id = incident_id_of(ctx, args, "/diagnose")
    if not await desk.diagnose(incident_id, requester=ctx.user):
        raise UserFacingError(ctx.texts("incident.not_found", id=incident_id))
    await ctx.reply_text(ctx.texts("incident.diagnosing", id=incident_id))


@router.command("/silence", usage="<matcher> <duration> [reason]", roles=("approver",))
async def silence(ctx: HandlerContext, args: str, desk: IncidentDesk) -> None:
    """静默匹配的告警一段时间（维护窗口）；匹配所有告警或超过 24 小时的静默需另一位审批人确认。
    Silence matching alerts for a while (a maintenance window); one matching every alert or
    over 24 h needs another approver's confirmation."""
    said = split_request(args)
    if not said.matcher or not said.duration:
        raise UserFacingError(ctx.texts("silence.usage"))
    try:
        terms = parse_matcher(said.matcher)
        duration = parse_duration(said.duration)
    except SilenceError as exc:
        problem = ctx.texts(f"silence.error.{exc.code}", **exc.values)
        raise UserFacingError(f"{problem}\n{ctx.texts('silence.usage')}") from None
    asked = await desk.silencing.ask(
        chat_id=ctx.chat_id,
        matcher=said.matcher,
        terms=terms,
        duration=duration,
        reason=said.reason,
        by=ctx.user,
    )
    row = asked.silence
    if asked.gate is None:
        shown = row.ends_at.astimezone(ctx.zone).strftime("%m-%d %H:%M")
        await ctx.reply_text(
            ctx.texts("silence.created", matcher=said.matcher, until=shown, id=row.id)
        )
        return
    card = desk.silencing.card(row, ctx.texts, asked.gate)
    await desk.silencing.shown(row, await ctx.reply_card(card))


async def _silence_decided(
    ctx: HandlerContext,
    payload: GateAction,
    verdict: gates.Verdict,
    decision: Decision,
    silencing: Silencing,
) -> ActionResult:
    """A click on a silence request's card: confirmed or rejected by another approver, or
    too late (已过期: the card says so, without its buttons)."""
    say = ctx.texts
    clicked = await silencing.decided(payload.run_id, ctx.chat_id, verdict, decision, by=ctx.user)
    row = clicked.silence
    if clicked.outcome == "unknown" or row is None:
        return ActionResult(toast=Toast("error", say("action.unknown")))
    if clicked.outcome == "late":
        return ActionResult(
            toast=Toast("error", say("pending.expired")), card=silencing.card(row, say)
        )
    if clicked.outcome == "refused":
        key = _REFUSED_TEXT.get(clicked.refusal or "", "gate.duplicate")
        return ActionResult(toast=Toast("error", say(key)))
    if clicked.outcome == "taken":
        return ActionResult(toast=Toast("error", say("gate.duplicate")))
    return ActionResult(
        toast=Toast("success", say(f"silence.toast.{clicked.outcome}", id=row.id)),
        card=silencing.card(row, say),
    )


class SilenceEnd(ActionPayload, action="silence.end"):
    """End a silence early (the button on /silences)."""

    silence_id: int
    chat_id: str


@router.command("/silences", roles=("viewer",))
async def list_silences(ctx: HandlerContext, desk: IncidentDesk) -> None:
    """列出生效中的静默（审批人可提前解除）。
    List active silences (approvers may end them early)."""
    rows, waiting = await desk.silencing.of_chat(ctx.chat_id)
    if not rows and not waiting:
        await ctx.reply_text(ctx.texts("silences.none"))
        return
    await ctx.reply_card(_silences_card(ctx, rows, waiting))


@router.command("/unsilence", usage="<id>", roles=("approver",))
async def unsilence(ctx: HandlerContext, args: str, desk: IncidentDesk) -> None:
    """提前解除一条静默。
    End a silence early."""
    number = number_of(args)
    if number is None:
        raise UserFacingError(ctx.texts("silence.unsilence_usage"))
    ended = await desk.silencing.end(number, ctx.chat_id, by=ctx.user)
    if ended is None:
        raise UserFacingError(ctx.texts("silence.not_active", id=number))
    await ctx.reply_text(ctx.texts("silence.ended", id=ended.id, matcher=ended.matcher))


@router.card_action(SilenceEnd, roles=("approver",))
async def end_silence(ctx: HandlerContext, payload: SilenceEnd, desk: IncidentDesk) -> ActionResult:
    if payload.chat_id != ctx.chat_id:
        return ActionResult(toast=Toast("error", ctx.texts("action.forged")))
    ended = await desk.silencing.end(payload.silence_id, ctx.chat_id, by=ctx.user)
    if ended is None:
        return ActionResult(
            toast=Toast("error", ctx.texts("silence.not_active", id=payload.silence_id))
        )
    rows, waiting = await desk.silencing.of_chat(ctx.chat_id)
    return ActionResult(
        toast=Toast("success", ctx.texts("silence.toast.ended", id=ended.id)),
        card=_silences_card(ctx, rows, waiting),
    )


def _silences_card(
    ctx: HandlerContext, rows: Sequence[Silence], pending: Sequence[PendingSilenceView] = ()
) -> dict[str, Any]:
    """The chat's silences, each with its signed end button, and the requests awaiting
    confirmation."""
    views = [SilenceView(r.id, r.matcher, r.ends_at, r.created_by, r.caught) for r in rows]
    ends = {r.id: ctx.sign(SilenceEnd(silence_id=r.id, chat_id=ctx.chat_id)) for r in rows}
    return silences_card(views, ctx.texts, ctx.zone, ends, pending)


# alert bots' messages --------------------------------------------------------------------


def _from_alert_bot(event: MessageEvent) -> bool:
    # other bots reach handlers only when they are configured alert senders (middleware)
    return event.sender_type != "user"


@router.message(_from_alert_bot)
async def alert_message(ctx: HandlerContext, event: MessageEvent, desk: IncidentDesk) -> None:
    untitled = ctx.texts("incident.unreadable_alert", kind=event.message_type or "?")
    alerts = await read_alert_message(ctx.services.api, event, untitled=untitled, zone=ctx.zone)
    if alerts:  # the message id: a replay of the message after a crash counts once
        await desk.receive(alerts, event.chat_id, delivery=f"message:{event.message_id}")
