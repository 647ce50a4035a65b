"""The composition root: one function builds the bot's services from its parts, for the app
(`bot.app.App`) and for the tests (`tests/lark/conftest.py`) alike.

    runtime = assemble(settings, db, coordination, target, key, checkpointer=saver)
    runtime.start()

What differs between them is passed in, never rebuilt: the database, the coordination backend,
where Lark is, the checkpointer (None: no incident workflows), extra routers and the timers.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from bot.commands import root_router
from bot.config import Settings
from bot.incidents.advisor import build_advisor, build_council, build_memory, build_toolkit
from bot.lark.runtime import LarkRuntime, LarkTarget
from bot.router import Router
from bot.timers import PRODUCTION, Timers
from storage.coordination import Coordination
from storage.database import Database


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
) -> LarkRuntime:
    """The Lark-facing runtime with every service it needs (not started)."""
    router = root_router()
    if extra_router is not None:
        router.include_router(extra_router)
    toolkit = build_toolkit(settings)
    memory = build_memory(settings, db)
    council = build_council(settings, db, toolkit, coordination)
    advisor = None
    if checkpointer is not None:
        advisor = build_advisor(
            settings,
            db,
            toolkit,
            coordination,
            memory=memory,
            council=council,
            verify_interval=timers.verify_every,
        )
    return LarkRuntime(
        settings,
        db,
        coordination,
        target,
        router,
        signing_key,
        checkpointer=checkpointer,
        advisor=advisor,
        toolkit=toolkit,
        memory=memory,
        council=council,
        timers=timers,
    )
