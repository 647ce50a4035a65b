"""Feishu sign-in (the open platform's OAuth 2.0), as the emulator answers it, so a console in
the sandbox signs in exactly as with the real Feishu:

    GET  /open-apis/authen/v1/authorize?client_id&redirect_uri&state[&scope]
         a page listing the sandbox's people; picking one redirects to
         redirect_uri?code=…&state=…  (a code is good once, for five minutes)
    POST /open-apis/authen/v2/oauth/token   {"grant_type": "authorization_code", "client_id",
         "client_secret", "code", "redirect_uri"} → {"code": 0, "access_token", "expires_in",
         "token_type": "Bearer", "scope"}; a wrong secret, a used or unknown code or another
         redirect_uri → {"code": 20003…, "error": "invalid_grant", "error_description"}
    GET  /open-apis/authen/v1/user_info   (Authorization: Bearer <user_access_token>)
         → {"code": 0, "data": {"open_id", "union_id", "user_id", "name", "en_name", …}}

On the real Feishu the authorize page is served by accounts.feishu.cn (accounts.larksuite.com
for Lark); the emulator serves it on its own address.
"""

from __future__ import annotations

import html
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from bot.sandbox.emulator import LarkEmulator

CODE_SECONDS = 300.0
TOKEN_SECONDS = 7200
INVALID_GRANT = 20003  # the code (or its redirect_uri) does not hold
INVALID_CLIENT = 20002  # client_id / client_secret do not hold
INVALID_TOKEN = 99991668  # user_info with an unknown or expired user_access_token


@dataclass
class Grant:
    open_id: str
    redirect_uri: str
    until: float


@dataclass
class SignIns:
    """The codes handed out and the user access tokens they became."""

    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)

    def grant(self, open_id: str, redirect_uri: str) -> str:
        code = secrets.token_urlsafe(16)
        self.codes[code] = Grant(open_id, redirect_uri, time.monotonic() + CODE_SECONDS)
        return code

    def redeem(self, code: str, redirect_uri: str) -> str | None:
        grant = self.codes.pop(code, None)  # once, whatever happens next
        if grant is None or grant.until < time.monotonic() or grant.redirect_uri != redirect_uri:
            return None
        token = "u-" + secrets.token_urlsafe(30)
        self.tokens[token] = (grant.open_id, time.monotonic() + TOKEN_SECONDS)
        return token

    def holder(self, token: str) -> str | None:
        found = self.tokens.get(token)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]


def _refused(code: int, error: str, description: str, status: int = 400) -> JSONResponse:
    body = {"code": code, "error": error, "error_description": description}
    return JSONResponse(body, status_code=status)


def routes(emulator: LarkEmulator) -> list[BaseRoute]:
    signins: SignIns = emulator.sign_ins

    async def authorize(request: Request) -> Response:
        query = request.query_params
        client, redirect = query.get("client_id", ""), query.get("redirect_uri", "")
        if client != emulator.app_id or not redirect.startswith(("http://", "https://")):
            return HTMLResponse("<p>invalid client_id or redirect_uri (20029)</p>", 400)
        chosen = query.get("user")
        if chosen:
            if chosen not in emulator.users:
                return HTMLResponse("<p>unknown user</p>", 400)
            code = signins.grant(chosen, redirect)
            back = {"code": code, "state": query.get("state", "")}
            joiner = "&" if "?" in redirect else "?"
            return RedirectResponse(f"{redirect}{joiner}{urlencode(back)}", status_code=302)
        links = []
        for user in emulator.users.values():
            target = f"?{urlencode({**dict(query), 'user': user.open_id})}"
            links.append(
                f'<li><a class="user" href="{html.escape(target)}">{html.escape(user.name)}</a>'
                f" <code>{html.escape(user.open_id)}</code></li>"
            )
        page = (
            "<!doctype html><meta charset=utf-8><title>飞书授权 · Feishu sign-in (sandbox)</title>"
            "<h1>飞书授权（沙箱）/ Sign in with Feishu (sandbox)</h1>"
            f"<p>Choose who signs in:</p><ul>{''.join(links)}</ul>"
        )
        return HTMLResponse(page)

    async def token(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _refused(20001, "invalid_request", "the body is not JSON")
        if not isinstance(body, dict) or body.get("grant_type") != "authorization_code":
            return _refused(20001, "unsupported_grant_type", "grant_type authorization_code")
        if (
            body.get("client_id") != emulator.app_id
            or body.get("client_secret") != emulator.app_secret
        ):
            return _refused(INVALID_CLIENT, "invalid_client", "client authentication failed", 401)
        issued = signins.redeem(str(body.get("code", "")), str(body.get("redirect_uri", "")))
        if issued is None:
            return _refused(INVALID_GRANT, "invalid_grant", "the code is invalid or used")
        return JSONResponse(
            {
                "code": 0,
                "access_token": issued,
                "expires_in": TOKEN_SECONDS,
                "token_type": "Bearer",
                "scope": "",
            }
        )

    async def user_info(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        holder = signins.holder(header.removeprefix("Bearer ").strip())
        if holder is None or holder not in emulator.users:
            body = {"code": INVALID_TOKEN, "msg": "Invalid access token for authorization."}
            return JSONResponse(body, status_code=401)
        user = emulator.users[holder]
        data = {
            "name": user.name,
            "en_name": user.name,
            "avatar_url": "",
            "open_id": user.open_id,
            "union_id": user.union_id,
            "user_id": user.user_id,
            "tenant_key": emulator.tenant_key,
        }
        return JSONResponse({"code": 0, "msg": "success", "data": data})

    return [
        Route("/open-apis/authen/v1/authorize", authorize, methods=["GET"]),
        Route("/open-apis/authen/v2/oauth/token", token, methods=["POST"]),
        Route("/open-apis/authen/v1/user_info", user_info, methods=["GET"]),
    ]
