"""Scheduled jobs over the REST API, and the schedule reader (`larkops schedule parse`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from bot.api.access import ApiError, Caller, caller
from bot.api.schemas import CHAT_ID, JobCreated, JobIn, JobOut, ParseIn, ParseOut
from bot.roles import admits
from bot.schedule_cli import Reader, answer, environment_of
from bot.scheduling.desk import ScheduleDesk, ScheduleRefused
from storage import schedules
from storage.models import Schedule

router = APIRouter(tags=["jobs"])
Id = Annotated[int, Path(ge=1, le=2**62)]
Change = Literal["pause", "resume", "run"]
_STATUS = {"not_found": 404, "not_yours": 403}


@router.post("/schedules/parse", response_model=ParseOut, tags=["schedules"])
async def parse(body: ParseIn, who: Annotated[Caller, Depends(caller)]) -> dict[str, Any]:
    """Exactly what `larkops schedule parse --json` prints for `{"text", "now"?, "tz"?}`
    (a bad `now` or `tz` is a `not_schedule` object with `error`, as a bad stdin line)."""
    await who.need("viewer", None)
    env = environment_of(who.services.settings)
    return await answer(Reader(env), body.model_dump(), env["LARKOPS_TIMEZONE"])


def _job(desk: ScheduleDesk, row: Schedule) -> JobOut:
    view = desk.view(row)
    return JobOut.of(row, view.rule, list(view.next_runs))


def _refused(exc: ScheduleRefused) -> ApiError:
    code = exc.code
    needs = "admin" if code == "not_yours" else None
    return ApiError(_STATUS.get(code, 409), code, str(exc), needs=needs)


@router.get("/jobs", response_model=list[JobOut])
async def list_jobs(
    who: Annotated[Caller, Depends(caller)],
    chat_id: Annotated[str | None, Query(pattern=CHAT_ID)] = None,
) -> list[JobOut]:
    """Active and paused jobs (of one chat), with their next runs."""
    await who.need("viewer", chat_id)
    desk = who.services.schedules
    return [_job(desk, row) for row in await schedules.live(who.services.db, chat_id)]


@router.post("/jobs", response_model=JobCreated, status_code=201)
async def create_job(body: JobIn, who: Annotated[Caller, Depends(caller)]) -> JobCreated:
    """A job from a sentence, confirmed at once (operators of the chat). A sentence that does
    not read as a schedule, or needs a question answered, is 422 with the reading."""
    roles = await who.need("operator", body.chat_id)
    desk = who.services.schedules
    draft = await desk.draft(body.chat_id, who.open_id, body.text)
    reading = ParseOut.model_validate(draft.result.contract(datetime.now(UTC)))
    if draft.schedule is None:
        words = draft.result.question or who.say("api.not_schedule")
        raise ApiError(422, draft.result.status, words)
    try:
        row = await desk.change(
            draft.schedule.id, who.open_id, "confirm", body.chat_id, admin=admits(roles, ("admin",))
        )
    except ScheduleRefused as exc:
        raise _refused(exc) from None
    await who.audit(None, "api.job.created", body.text, job=row.id, chat=body.chat_id)
    return JobCreated(job=_job(desk, row), parse=reading)


async def _change(who: Caller, job_id: int, what: str) -> JobOut:
    desk = who.services.schedules
    row = await schedules.get(who.services.db, job_id)
    if row is None or row.status == "deleted":
        raise ApiError(404, "not_found", who.say("schedule.not_found", id=job_id))
    roles = await who.need("operator", row.chat_id)
    try:
        changed = await desk.change(
            job_id, who.open_id, what, row.chat_id, admin=admits(roles, ("admin",))
        )
    except ScheduleRefused as exc:
        raise _refused(exc) from None
    await who.audit(None, f"api.job.{what}", job=job_id, chat=row.chat_id)
    return _job(desk, changed)


@router.post("/jobs/{job_id}/{change}", response_model=JobOut)
async def change_job(job_id: Id, change: Change, who: Annotated[Caller, Depends(caller)]) -> JobOut:
    """Pause, resume or run now (the job's creator or an admin, operators of its chat)."""
    return await _change(who, job_id, change)


@router.delete("/jobs/{job_id}", response_model=JobOut)
async def delete_job(job_id: Id, who: Annotated[Caller, Depends(caller)]) -> JobOut:
    """Delete a job (its creator or an admin)."""
    return await _change(who, job_id, "delete")
