"""The web console at `/console`: Feishu sign-in (`signin`) and the pages (`pages`), over the
REST API (`bot.api`)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from bot.api.access import Backend
from bot.console import pages, signin


def console_routes(backend: Backend) -> list[BaseRoute]:
    return [*signin.routes(backend), *pages.routes(backend)]
