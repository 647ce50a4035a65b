"""The composition root: one function builds every service of the bot from its parts, for the
app (`bot.app.App`) and for the tests (`tests/lark/conftest.py`) alike.

    runtime = assemble(settings, db, coordination, target, key, checkpointer=saver)
    runtime.start()

What differs between them is passed in, never rebuilt: the database, the coordination backend,
where Lark is, the checkpointer, extra routers, the timers, and the gateway when the app has
opened it already (`bot.lark.gateway`). Every desk exists in every bot
(the incident, operations, schedule and chat desks, incident memory); only the model council
(`llm.council`) is optional by configuration, and a handler that names it meets one reply when it
is missing (`bot.dispatcher`). `bot.lark.runtime.LarkRuntime` only starts and stops them.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from bot.chat.desk import ChatDesk
from bot.commands import root_router
from bot.config import Settings
from bot.incidents.advisor import build_advisor, build_council, build_memory, build_toolkit
from bot.incidents.desk import IncidentDesk
from bot.lark.api import LarkApi
from bot.lark.gateway import Gateway
from bot.lark.runtime import Desks, LarkRuntime, LarkTarget
from bot.operations import OperationsDesk
from bot.reports import ReportDesk
from bot.router import Router
from bot.scheduling.wiring import build_scheduling
from bot.timers import PRODUCTION, Timers
from storage.coordination import Coordination
from storage.database import Database
from workflows.chat.agent import ChatAgent
from workflows.llm.advisor import ModelAdvisor
from workflows.llm.prompt import Scrubber
from workflows.memory.jobs import JobMemory


def assemble(
    settings: Settings,
    db: Database,
    coordination: Coordination,
    target: LarkTarget,
    signing_key: bytes,
    *,
    checkpointer: BaseCheckpointSaver[Any] | None,
    extra_router: Router | None = None,
    timers: Timers = PRODUCTION,
    gateway: Gateway | None = None,
) -> LarkRuntime:
    """The Lark-facing runtime with every service it needs (not started).

    `checkpointer` None (a bot built for a test or a tool): incident and action runs keep their
    checkpoints in memory; crash safety needs the app's Postgres saver."""
    router = root_router()
    if extra_router is not None:
        router.include_router(extra_router)
    saver = checkpointer if checkpointer is not None else InMemorySaver()
    api = LarkApi(target.app_id, target.app_secret, target.domain, coordination)
    toolkit = build_toolkit(settings)
    memory = build_memory(settings, db)
    council = build_council(settings, db, toolkit, coordination)
    advisor = build_advisor(
        settings,
        db,
        toolkit,
        coordination,
        memory=memory,
        council=council,
        verify_interval=timers.verify_every,
    )
    model = advisor if isinstance(advisor, ModelAdvisor) else None
    desk = IncidentDesk(settings, db, coordination, api, saver, advisor, signing_key, timers)
    operations = OperationsDesk(settings, db, api, toolkit, signing_key, saver, coordination)
    agent = model.agent if model is not None else None
    reports = ReportDesk(
        settings,
        db,
        signing_key,
        coordination,
        book=toolkit.book,
        redactor=toolkit.registry.redactor,
        guard=agent.guard if agent is not None else None,
        scrub=agent.scrub if agent is not None else None,
    )
    scheduling = build_scheduling(
        settings,
        db,
        coordination,
        api,
        operations,
        reports,
        agent=agent,
        memory=JobMemory(db, memory.embedder),
    )
    runtime: LarkRuntime | None = None

    async def health() -> dict[str, Any]:  # the runtime's /status figures, once it exists
        assert runtime is not None
        return await runtime.health()

    # with a model, questions are answered; without, the chat desk says which commands help
    talker, scrub = None, Scrubber(toolkit.registry.redactor)
    if model is not None:
        scrub = model.agent.scrub
        talker = ChatAgent(model.guard, language=settings.language, zone=settings.timezone)
    chat = ChatDesk(settings, db, api, coordination, talker, toolkit, scrub, health=health)
    desks = Desks(
        api, toolkit, advisor, memory, council, desk, operations, scheduling, chat, reports
    )
    runtime = LarkRuntime(
        settings, db, coordination, target, router, signing_key, desks, timers, gateway
    )
    return runtime
