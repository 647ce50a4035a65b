"""The console's sign-in through the Feishu OAuth pages of the emulator, and what a session
may do: sessions rotate, expire and are HttpOnly; every change needs the session's own CSRF
token; a cookie acts as the person it was made for, never as another."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
from sqlalchemy import text

from bot.api.access import SESSION_COOKIE
from tests.api.conftest import Api
from tests.lark.test_incidents import settings_for

ROLES = {"default": "viewer", "chats": {"oc_ops": {"default": "operator"}}}


async def sign_in(
    api: Api, user: str, client: httpx.AsyncClient | None = None
) -> tuple[httpx.AsyncClient, str]:
    """Through the emulator's authorize page as `user` (in `client`, a browser); the client
    and its CSRF token."""
    if client is None:
        client = httpx.AsyncClient(base_url=api.url, timeout=30)
        api.clients.append(client)
    start = await client.get("/console/signin")
    assert start.status_code == 302
    authorize = start.headers["location"]
    assert "/open-apis/authen/v1/authorize?" in authorize
    query = parse_qs(urlparse(authorize).query)
    assert query["redirect_uri"] == [api.url + "/console/oauth/callback"]
    async with httpx.AsyncClient(timeout=30) as feishu:
        page = await feishu.get(authorize)
        assert user in page.text  # the sandbox's people to choose from
        picked = await feishu.get(authorize + "&user=" + user)
    assert picked.status_code == 302
    back = await client.get(picked.headers["location"])
    assert back.status_code == 303
    cookie = back.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Max-Age=43200" in cookie
    console = await client.get("/console")
    assert "data-config" in console.text
    config = json.loads(html.unescape(re.search(r'data-config="([^"]*)"', console.text)[1]))
    assert config["me"] == user
    return client, config["csrf"]


async def test_sign_in_with_feishu_and_act_with_the_csrf_token(
    make_api: Any, tmp_path: Path
) -> None:
    api: Api = await make_api(settings=settings_for(tmp_path, roles=ROLES))
    bob, csrf = await sign_in(api, "ou_bob")
    body = {"chat_id": "oc_ops", "matcher": "alertname=DiskFull", "duration": "1h"}
    # reading needs the cookie only; a change needs the token too
    assert (await bob.get("/api/v1/silences")).status_code == 200
    missing = await bob.post("/api/v1/silences", json=body)
    assert missing.status_code == 403
    assert missing.json()["error"] == "csrf"
    forged = await bob.post("/api/v1/silences", json=body, headers={"X-CSRF-Token": "x" * 32})
    assert forged.status_code == 403
    made = await bob.post("/api/v1/silences", json=body, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201, made.text
    audit = await api.bot.rows(
        "SELECT actor, data->>'via' FROM incident_events WHERE kind = 'api.silence.created'"
    )
    assert [tuple(a) for a in audit] == [("ou_bob", "console")]


async def test_a_cookie_is_its_owners_and_sign_in_rotates_it(make_api: Any, tmp_path: Path) -> None:
    api: Api = await make_api(settings=settings_for(tmp_path, roles=ROLES))
    bob, _ = await sign_in(api, "ou_bob")
    alice, alice_csrf = await sign_in(api, "ou_alice")
    body = {"chat_id": "oc_ops", "matcher": "alertname=DiskFull", "duration": "1h"}
    # alice (an operator) may not silence; her token does not go with bob's cookie
    mine = await alice.post("/api/v1/silences", json=body, headers={"X-CSRF-Token": alice_csrf})
    assert mine.status_code == 403
    assert mine.json()["needs"] == "approver"
    bob_cookie = bob.cookies[SESSION_COOKIE]
    borrowed = httpx.AsyncClient(base_url=api.url, cookies={SESSION_COOKIE: bob_cookie})
    api.clients.append(borrowed)
    crossed = await borrowed.post(
        "/api/v1/silences", json=body, headers={"X-CSRF-Token": alice_csrf}
    )
    assert crossed.status_code == 403
    assert crossed.json()["error"] == "csrf"
    # signing in again in the same browser makes a new session and ends the old one
    old = bob.cookies[SESSION_COOKIE]
    await sign_in(api, "ou_bob", bob)
    assert bob.cookies[SESSION_COOKIE] != old
    stale = httpx.AsyncClient(base_url=api.url, cookies={SESSION_COOKIE: old})
    api.clients.append(stale)
    assert (await stale.get("/api/v1/incidents")).status_code == 401
    assert (await bob.get("/api/v1/incidents")).status_code == 200
    # sessions expire
    async with api.bot.db.session() as session:
        await session.execute(
            text("UPDATE console_sessions SET expires_at = now() - interval '1 minute'")
        )
    expired = await bob.get("/api/v1/incidents")
    assert expired.status_code == 401
    assert expired.json()["error"] == "bad_session"
    # signing out needs the token too
    assert (await alice.post("/console/signout", headers={"X-CSRF-Token": "no"})).status_code == 403
