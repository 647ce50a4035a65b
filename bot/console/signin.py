"""Signing in to the console with Feishu: the open platform's OAuth 2.0 authorization code.

    GET  /console/signin            → Feishu's authorize page (state in a short cookie)
    GET  /console/oauth/callback    code → user access token (/open-apis/authen/v2/oauth/token)
                                    → who (/open-apis/authen/v1/user_info) → a new session
    POST /console/signout           (CSRF token) ends the session

The session cookie is HttpOnly, SameSite=Lax, Secure when the console is reached over https,
and expires after `api.session_hours`; signing in always makes a new session and ends the one
the browser had (rotation). The sandbox's emulator answers the same three endpoints.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.api.access import CSRF_HEADER, SESSION_COOKIE, Backend
from bot.api.proxies import Proxies
from bot.logs import get_logger
from cards.texts import texts
from storage import console_sessions

log = get_logger(__name__)
STATE_COOKIE = "larkops_oauth_state"
CALLBACK = "/console/oauth/callback"
TIMEOUT = 10.0


@dataclass(frozen=True)
class Person:
    open_id: str
    name: str


class SignInFailed(Exception):
    """Feishu did not confirm who this is (the reason is logged, not shown)."""


def accounts_domain(domain: str) -> str:
    """Where the authorize page is: accounts.feishu.cn for open.feishu.cn (likewise Lark);
    any other domain (the emulator) serves it itself."""
    for open_host, accounts in (
        ("open.feishu.cn", "accounts.feishu.cn"),
        ("open.larksuite.com", "accounts.larksuite.com"),
    ):
        if f"//{open_host}" in domain:
            return domain.replace(open_host, accounts)
    return domain


def base_url(backend: Backend, request: Request) -> str:
    """The console's address as people reach it: `api.public_url`, else this request's (with
    the scheme a trusted proxy says the browser used)."""
    services = backend.services()
    if services is None:
        return str(request.base_url).rstrip("/")
    if services.settings.api.public_url:
        return services.settings.api.public_url.rstrip("/")
    scheme = Proxies.of(tuple(services.settings.trusted_proxies)).scheme(request)
    return str(request.base_url.replace(scheme=scheme)).rstrip("/")


def secure(backend: Backend, request: Request) -> bool:
    """Whether cookies are Secure: the console is reached over https."""
    return base_url(backend, request).startswith("https://")


async def exchange(domain: str, app_id: str, secret: str, code: str, redirect: str) -> Person:
    async with httpx.AsyncClient(base_url=domain, timeout=TIMEOUT) as client:
        answer = await client.post(
            "/open-apis/authen/v2/oauth/token",
            json={
                "grant_type": "authorization_code",
                "client_id": app_id,
                "client_secret": secret,
                "code": code,
                "redirect_uri": redirect,
            },
        )
        data = answer.json() if answer.content else {}
        token = data.get("access_token") if isinstance(data, dict) else None
        if answer.status_code != 200 or data.get("code") != 0 or not token:
            raise SignInFailed(f"token: {answer.status_code} {str(data)[:200]}")
        found = await client.get(
            "/open-apis/authen/v1/user_info", headers={"Authorization": f"Bearer {token}"}
        )
        body = found.json() if found.content else {}
        user = body.get("data") if isinstance(body, dict) and body.get("code") == 0 else None
        if not isinstance(user, dict) or not str(user.get("open_id", "")).startswith("ou_"):
            raise SignInFailed(f"user_info: {found.status_code} {str(body)[:200]}")
        return Person(str(user["open_id"]), str(user.get("name") or user["open_id"]))


def routes(backend: Backend) -> list[BaseRoute]:
    async def signin(request: Request) -> Response:
        target = backend.target
        if target is None:
            return HTMLResponse("starting", status_code=503, headers={"Retry-After": "2"})
        state = secrets.token_urlsafe(24)
        query = {
            "client_id": target.app_id,
            "redirect_uri": base_url(backend, request) + CALLBACK,
            "state": state,
        }
        where = f"{accounts_domain(target.domain)}/open-apis/authen/v1/authorize?{urlencode(query)}"
        answer = RedirectResponse(where, status_code=302)
        answer.set_cookie(
            STATE_COOKIE,
            state,
            max_age=600,
            httponly=True,
            samesite="lax",
            secure=secure(backend, request),
            path="/console",
        )
        return answer

    async def callback(request: Request) -> Response:
        services, target = backend.services(), backend.target
        if services is None or target is None:
            return HTMLResponse("starting", status_code=503, headers={"Retry-After": "2"})
        say = texts(services.settings.language)
        code, state = request.query_params.get("code", ""), request.query_params.get("state", "")
        expected = request.cookies.get(STATE_COOKIE, "")
        if not code or not state or not expected or not hmac.compare_digest(state, expected):
            return HTMLResponse(say("console.signin_failed"), status_code=400)
        redirect = base_url(backend, request) + CALLBACK
        try:
            person = await exchange(target.domain, target.app_id, target.app_secret, code, redirect)
        except (SignInFailed, httpx.HTTPError, ValueError) as exc:
            log.warning("console.signin_failed", error=str(exc)[:300])
            return HTMLResponse(say("console.signin_failed"), status_code=401)
        opened = await console_sessions.open_session(
            services.db,
            person.open_id,
            person.name,
            hours=services.settings.api.session_hours,
            replacing=request.cookies.get(SESSION_COOKIE),
        )
        log.info("console.signed_in", open_id=person.open_id)
        answer = RedirectResponse("/console", status_code=303)
        answer.set_cookie(
            SESSION_COOKIE,
            opened.token,
            max_age=round(services.settings.api.session_hours * 3600),
            httponly=True,
            samesite="lax",
            secure=secure(backend, request),
            path="/",
        )
        answer.delete_cookie(STATE_COOKIE, path="/console")
        return answer

    async def signout(request: Request) -> Response:
        services = backend.services()
        token = request.cookies.get(SESSION_COOKIE, "")
        if services is not None and token:
            row = await console_sessions.find(services.db, token)
            sent = request.headers.get(CSRF_HEADER, "")
            if row is None or not sent or not hmac.compare_digest(sent, row.csrf):
                return HTMLResponse("csrf", status_code=403)
            await console_sessions.close(services.db, token)
        answer = RedirectResponse("/console", status_code=303)
        answer.delete_cookie(SESSION_COOKIE, path="/")
        return answer

    return [
        Route("/console/signin", signin, methods=["GET"]),
        Route(CALLBACK, callback, methods=["GET"]),
        Route("/console/signout", signout, methods=["POST"]),
    ]
