"""Feature routers of slash commands; `root_router` composes them."""

from __future__ import annotations

from bot.router import Router


def root_router() -> Router:
    from bot.commands.basics import router as basics
    from bot.commands.incidents import router as incidents

    root = Router("root")
    root.include_router(basics)
    root.include_router(incidents)
    return root
