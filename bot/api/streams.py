"""Server-sent events: the agent's answer as it is written (`POST /chat`), and the changes of
incidents, gates and jobs (`GET /stream`) as every replica's database triggers report them
(`storage.changes`)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from bot.api.access import ApiError, Caller, backend_of, caller
from bot.api.schemas import ChatIn
from bot.context import HandlerContext
from bot.lark.events import CardAction
from cards.texts import texts
from storage.tasks import cancel

router = APIRouter(tags=["streams"])
SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}
}
HEARTBEAT = 15.0  # seconds between keep-alive comments on a quiet stream
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
STREAMED = frozenset({"incident", "gate", "job", "reset"})  # not the feed's other notices


def event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


class _Relay:
    """The agent's listener: each piece of the answer as an event."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()

    def text(self, delta: str) -> None:
        self.queue.put_nowait(event("delta", {"text": delta}))

    def tool(self, name: str) -> None:
        self.queue.put_nowait(event("tool", {"name": name}))


@router.post("/chat", response_class=StreamingResponse, responses=SSE)
async def chat(body: ChatIn, who: Annotated[Caller, Depends(caller)]) -> StreamingResponse:
    """Ask the chat agent; the answer streams as `delta` and `tool` events, then `done`
    (`answer`, `tools`, `degraded`, `code`). With `chat_id`, the question is asked as in that
    chat: its incidents and jobs, and — for operators — diagnostics and change cards posted
    there for people to confirm (the agent never changes anything itself)."""
    roles = await who.need("viewer", body.chat_id)
    services = who.services
    desk = services.chat
    asked = CardAction(
        event_id=f"api-{uuid.uuid4().hex}",
        operator_open_id=who.open_id,
        value={},
        chat_id=who.chat(body.chat_id),
    )
    ctx = HandlerContext(
        event=asked,
        services=services,
        texts=texts(services.settings.language),
        trace_id=who.trace_id or asked.event_id,
        roles=roles,
    )
    relay = _Relay()

    async def work() -> str:
        outcome = await desk.answer_once(ctx, body.question, relay, asked.event_id)
        words = who.say("chat.no_agent") if outcome.code == "no_agent" else outcome.answer
        done = {
            "answer": words,
            "tools": [{"name": c.name, "summary": c.summary, "ok": c.ok} for c in outcome.calls],
            "degraded": outcome.degraded,
            "code": outcome.code,
        }
        return event("done", done)

    async def stream() -> AsyncIterator[str]:
        task = asyncio.create_task(work())
        task.add_done_callback(lambda _: relay.queue.put_nowait(None))
        try:
            while (item := await relay.queue.get()) is not None:
                yield item
            yield task.result()
        finally:
            await cancel(task)

    await who.audit(None, "api.chat.asked", body.question[:200], chat=body.chat_id)
    return StreamingResponse(stream(), media_type="text/event-stream", headers=HEADERS)


@router.get("/stream", response_class=StreamingResponse, responses=SSE)
async def changes(
    request: Request,
    who: Annotated[Caller, Depends(caller)],
    seconds: Annotated[float, Query(gt=0, le=86_400)] = 3600.0,
) -> StreamingResponse:
    """Changes of incidents, gates and jobs as they happen, on any replica: events named
    `incident`, `gate`, `job` with `{"kind", "id", "op", "status"}`, and `reset` when the
    feed was interrupted (read the state again). Ends after `seconds`."""
    await who.need("viewer", None)
    feed = backend_of(request).feed
    if feed is None:
        raise ApiError(503, "starting", who.say("api.starting"), headers={"Retry-After": "2"})

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        async with feed.subscribe() as queue:
            yield ": connected\n\n"
            while (left := until - loop.time()) > 0:
                try:  # not wait_for: it can swallow a cancel (a client gone) in Python 3.11
                    async with asyncio.timeout(min(HEARTBEAT, left)):
                        change = await queue.get()
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keep-alive\n\n"
                    continue
                if change.get("kind") in STREAMED:
                    yield event(str(change["kind"]), change)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=HEADERS)
