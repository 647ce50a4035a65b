"""Silences, plugins, runbooks, the policy and the hygiene report over the REST API."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from bot.api.access import ApiError, Caller, caller
from bot.api.schemas import (
    CHAT_ID,
    EventOut,
    PluginOut,
    PolicyCheckIn,
    PolicyOut,
    RunbookOut,
    SilenceIn,
    SilenceOut,
)
from bot.commands.report import hours_of
from storage import incidents, silences
from workflows.silences import SilenceError, needs_confirmation, parse_duration, parse_matcher
from workflows.verdicts import judge

router = APIRouter()
Id = Annotated[int, Path(ge=1, le=2**62)]


@router.get("/silences", response_model=list[SilenceOut], tags=["silences"])
async def list_silences(
    who: Annotated[Caller, Depends(caller)],
    chat_id: Annotated[str | None, Query(pattern=CHAT_ID)] = None,
) -> list[SilenceOut]:
    """Silences in force (of one chat: its own and global ones)."""
    await who.need("viewer", chat_id)
    return [SilenceOut.of(row) for row in await silences.in_force(who.services.db, chat_id)]


@router.post("/silences", response_model=SilenceOut, status_code=201, tags=["silences"])
async def create_silence(body: SilenceIn, who: Annotated[Caller, Depends(caller)]) -> SilenceOut:
    """A maintenance window in a chat, as `/silence` (approvers of the chat)."""
    await who.need("approver", body.chat_id)
    try:
        terms = parse_matcher(body.matcher)
        duration = parse_duration(body.duration)
    except SilenceError as exc:
        words = who.say(f"silence.error.{exc.code}", **exc.values)
        raise ApiError(422, exc.code, words) from None
    if needs_confirmation(terms, duration):
        # a silence of every alert, or over 24 h, is decided on its card by a second approver
        words = who.say("api.silence_needs_card")
        raise ApiError(409, "needs_confirmation", words)
    row = await silences.create(
        who.services.db,
        chat_id=body.chat_id,
        matcher=body.matcher,
        terms=list(terms),
        reason=body.reason,
        by=who.open_id,
        duration=duration,
    )
    await who.audit(None, "api.silence.created", body.matcher, silence=row.id, chat=body.chat_id)
    return SilenceOut.of(row)


@router.delete("/silences/{silence_id}", response_model=SilenceOut, tags=["silences"])
async def end_silence(silence_id: Id, who: Annotated[Caller, Depends(caller)]) -> SilenceOut:
    """End a silence early, as `/unsilence` (approvers of its chat)."""
    db = who.services.db
    row = await silences.get(db, silence_id)
    if row is None:
        raise ApiError(404, "not_found", who.say("api.no_silence", id=silence_id))
    await who.need("approver", row.chat_id)
    ended = await silences.end(db, silence_id, row.chat_id or "", by=who.open_id)
    if ended is None:
        raise ApiError(409, "not_active", who.say("api.no_silence", id=silence_id))
    await who.audit(None, "api.silence.ended", ended.matcher, silence=silence_id)
    return SilenceOut.of(ended)


@router.get("/plugins", response_model=list[PluginOut], tags=["plugins"])
async def list_plugins(who: Annotated[Caller, Depends(caller)]) -> list[PluginOut]:
    """The plugin catalogue: diagnostics and fixes, with their risk and parameters."""
    await who.need("viewer", None)
    registry = who.services.operations.toolkit.registry
    english = who.services.settings.language == "en"
    found = []
    for name in registry.names(include_disabled=True):
        plugin = registry.get(name)
        if plugin is None:
            continue
        spec = plugin.spec
        found.append(
            PluginOut(
                name=spec.name,
                category=spec.category,
                risk=spec.risk,
                enabled=registry.is_enabled(name),
                title=spec.title_en if english else spec.title_zh,
                description=spec.description_en if english else spec.description_zh,
                timeout=spec.timeout,
                idempotent=spec.idempotent,
                supports_dry_run=spec.supports_dry_run,
                params=spec.params.model_json_schema(),
            )
        )
    return found


@router.get("/runbooks", response_model=list[RunbookOut], tags=["plugins"])
async def list_runbooks(who: Annotated[Caller, Depends(caller)]) -> list[RunbookOut]:
    """The runbooks in matching order."""
    await who.need("viewer", None)
    return [
        RunbookOut(
            name=book.name,
            match=dict(book.match),
            diagnose=[step.plugin for step in book.diagnose],
            propose=book.propose.plugin if book.propose else None,
            verify=book.verify.plugin if book.verify else None,
        )
        for book in who.services.operations.toolkit.book.runbooks
    ]


@router.get("/policy", response_model=PolicyOut, tags=["plugins"])
async def show_policy(who: Annotated[Caller, Depends(caller)]) -> PolicyOut:
    """The effective policy, and where plugins may connect."""
    await who.need("viewer", None)
    toolkit = who.services.operations.toolkit
    reach = toolkit.registry.reach
    return PolicyOut(
        policy=toolkit.policy.config.model_dump(mode="json"),
        reach=list(reach.describe()) if reach.rules else [],
    )


@router.post("/policy/check", response_model=dict[str, Any], tags=["plugins"])
async def check_policy(
    body: PolicyCheckIn, who: Annotated[Caller, Depends(caller)]
) -> dict[str, Any]:
    """What the policy would decide for one run, without running it (as `/policy check`)."""
    await who.need("viewer", None)
    toolkit = who.services.operations.toolkit
    plugin = toolkit.registry.get(body.plugin)
    if plugin is None:
        raise ApiError(404, "not_found", who.say("api.no_plugin", name=body.plugin[:64]))
    decision = await judge(who.services.db, toolkit.policy, plugin.spec, body.params, alert=None)
    data: dict[str, Any] = json.loads(json.dumps(decision.as_json(), default=str))
    return data


@router.get("/reports", response_model=dict[str, Any], tags=["reports"])
async def report(
    who: Annotated[Caller, Depends(caller)],
    period: Annotated[str, Query(max_length=8, examples=["7d"])] = "7d",
    chat_id: Annotated[str | None, Query(pattern=CHAT_ID)] = None,
) -> dict[str, Any]:
    """The alert-hygiene report's figures over `period` (`24h`, `7d`, at most `30d`), with its
    suggestions."""
    await who.need("viewer", chat_id)
    hours = hours_of(period)
    if hours is None:
        raise ApiError(422, "bad_period", who.say("api.bad_period"))
    desk = who.services.reports
    facts = await desk.facts(who.chat(chat_id), hours)
    found = desk.suggestions(facts)
    body = {
        "hours": hours,
        "facts": dataclasses.asdict(facts),
        "suggestions": [dataclasses.asdict(item) for item in found],
    }
    data: dict[str, Any] = json.loads(json.dumps(body, default=str))
    return data


@router.get("/audit", response_model=list[EventOut], tags=["audit"])
async def audit(
    who: Annotated[Caller, Depends(caller)],
    kind: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_.]*$")] = None,
    actor: Annotated[str | None, Query(max_length=128, pattern=CHAT_ID)] = None,
    incident_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[EventOut]:
    """The audit timeline, newest first: `kind` is a prefix (`api.`, `click.`), `actor` an
    open_id; page with `before` (the last id seen)."""
    await who.need("viewer", None)
    rows = await incidents.audit_log(
        who.services.db,
        kind=kind,
        actor=actor,
        incident_id=incident_id,
        before=before,
        limit=limit,
    )
    return [EventOut.of(row, who.say) for row in rows]
