"""Feature routers of slash commands; `root_router` composes them."""

from __future__ import annotations

from bot.router import Router


def root_router() -> Router:
    from bot.commands.basics import router as basics
    from bot.commands.chat import router as chat
    from bot.commands.council import router as council
    from bot.commands.free_text import router as free_text
    from bot.commands.incidents import router as incidents
    from bot.commands.memory import router as memory
    from bot.commands.oncall import router as oncall
    from bot.commands.plugins import router as plugins
    from bot.commands.postmortems import router as postmortems
    from bot.commands.report import router as report
    from bot.commands.roles import router as roles
    from bot.commands.schedules import router as schedules
    from bot.commands.status import router as status

    root = Router("root")
    root.include_router(basics)
    root.include_router(incidents)
    root.include_router(oncall)
    root.include_router(postmortems)
    root.include_router(plugins)
    root.include_router(memory)
    root.include_router(council)
    root.include_router(roles)
    root.include_router(status)
    root.include_router(chat)  # thread follow-ups of conversations with the bot
    root.include_router(report)
    root.include_router(schedules)
    root.include_router(free_text)  # the fallback: @bot text nothing else took
    return root
