"""The console's pages: server-rendered shells in zh or en (`?lang=`), filled in by one small
script (`static/console.js`) from the REST API with the session cookie and the CSRF token.

    /console                      the live incident board (server-sent events, no polling)
    /console/incidents/{id}       timeline, diagnosis and evidence, gates to approve or reject
    /console/jobs                 jobs, their next runs on a calendar, a job from a sentence
    /console/silences             silences: make one, end one
    /console/audit                the audit log with filters
    /console/report               the weekly hygiene report, with bars
    /console/chat                 the agent, streamed

Without a session a page offers the Feishu sign-in instead.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from bot.api.access import SESSION_COOKIE, Backend
from cards.texts import Texts, texts
from storage import console_sessions

STATIC = Path(__file__).parent / "static"
PAGES = ("board", "incident", "jobs", "silences", "audit", "report", "chat")
NAV = (
    ("board", "/console"),
    ("jobs", "/console/jobs"),
    ("silences", "/console/silences"),
    ("audit", "/console/audit"),
    ("report", "/console/report"),
    ("chat", "/console/chat"),
)


def _language(request: Request, default: str) -> str:
    wanted = request.query_params.get("lang") or request.cookies.get("larkops_lang") or default
    return wanted if wanted in ("zh", "en") else "zh"


def _shell(say: Texts, lang: str, body: str, config: dict[str, object]) -> str:
    data = html.escape(json.dumps(config, ensure_ascii=False))
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(say('console.title'))}</title>"
        '<link rel="stylesheet" href="/console/static/console.css"></head>'
        f'<body data-config="{data}">{body}'
        '<script src="/console/static/console.js"></script></body></html>'
    )


def routes(backend: Backend) -> list[BaseRoute]:
    async def page(request: Request) -> Response:
        services = backend.services()
        if services is None:
            return HTMLResponse("starting", status_code=503, headers={"Retry-After": "2"})
        lang = _language(request, services.settings.language)
        say = texts(lang)
        name = request.scope["route"].name
        token = request.cookies.get(SESSION_COOKIE, "")
        session = await console_sessions.find(services.db, token) if token else None
        if session is None:
            body = (
                f'<main class="signin"><h1>{html.escape(say("console.title"))}</h1>'
                f"<p>{html.escape(say('console.signin_hint'))}</p>"
                f'<a id="signin" class="button" href="/console/signin">'
                f"{html.escape(say('console.signin'))}</a></main>"
            )
            return HTMLResponse(_shell(say, lang, body, {"page": "signin"}))
        links = "".join(
            f'<a href="{href}?lang={lang}" class="{"on" if key == name else ""}">'
            f"{html.escape(say(f'console.nav.{key}'))}</a>"
            for key, href in NAV
        )
        other = "en" if lang == "zh" else "zh"
        who = html.escape(say("console.signed_in_as", name=session.name or session.open_id))
        body = (
            f'<header><strong>larkops</strong><nav>{links}</nav><span class="me">{who}</span>'
            f'<a href="?lang={other}" class="lang">{other.upper()}</a>'
            f'<button id="signout">{html.escape(say("console.signout"))}</button>'
            f'<span id="live" class="live"></span></header><main id="main"></main>'
        )
        config: dict[str, object] = {
            "page": name,
            "lang": lang,
            "csrf": session.csrf,
            "me": session.open_id,
            "id": request.path_params.get("incident_id"),
            "words": say.block(
                "console.", "card.status.", "card.severity.", "card.gate.name.", "role."
            ),
        }
        answer = HTMLResponse(_shell(say, lang, body, config))
        if request.query_params.get("lang") in ("zh", "en"):
            answer.set_cookie("larkops_lang", lang, max_age=365 * 86400, samesite="lax")
        return answer

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("console.js", "console.css"):
            return HTMLResponse("not found", status_code=404)
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return FileResponse(STATIC / name, media_type=kind)

    return [
        Route("/console", page, methods=["GET"], name="board"),
        Route("/console/incidents/{incident_id:int}", page, methods=["GET"], name="incident"),
        *(Route(f"/console/{key}", page, methods=["GET"], name=key) for key in PAGES[2:]),
        Route("/console/static/{name}", static, methods=["GET"]),
    ]
