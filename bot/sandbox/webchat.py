"""The local sandbox's web chat: the page at /sandbox and its static assets.

The page talks only to the emulator's control API under /sandbox/api; this module just serves
the files in `bot/sandbox/web/` (plain HTML/CSS/JS, no build step, no network fetches).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

WEB_DIR = Path(__file__).with_name("web")
PAGE_PATH = "/sandbox"
STATIC_PATH = "/sandbox/static"

# The page runs untrusted transcript content through textContent only; the policy is a second
# line of defence: nothing but same-origin scripts, styles and requests.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


async def _page(request: Request) -> Response:
    """The chat page itself."""
    return FileResponse(WEB_DIR / "index.html", headers=SECURITY_HEADERS)


async def _slash(request: Request) -> Response:
    """`/sandbox/` -> `/sandbox`, so both spellings open the page."""
    return RedirectResponse(PAGE_PATH, status_code=307)


def webchat_routes() -> list[BaseRoute]:
    """Routes serving GET /sandbox (the page) and /sandbox/static/* (its assets)."""
    return [
        Route(PAGE_PATH, _page, methods=["GET", "HEAD"], name="sandbox-page"),
        Route(PAGE_PATH + "/", _slash, methods=["GET", "HEAD"]),
        Mount(STATIC_PATH, app=StaticFiles(directory=WEB_DIR), name="sandbox-static"),
    ]
