"""Behind a reverse proxy: the per-address limit counts each client forwarded by a trusted
proxy on its own, a forged `X-Forwarded-For` from anyone else changes nothing, and
`X-Forwarded-Proto: https` from a trusted proxy makes the console's cookies Secure."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from starlette.requests import Request

from bot.api.access import SESSION_COOKIE
from bot.api.proxies import Proxies
from bot.config import ConfigError, load_settings
from bot.console.signin import STATE_COOKIE
from tests.api.conftest import Api
from tests.lark.test_incidents import settings_for

LIMITED = {"ip_rate": 0.5, "ip_burst": 2}


def _request(peer: str, *headers: tuple[str, str], scheme: str = "http") -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": scheme,
        "server": ("larkops", 80),
        "path": "/",
        "query_string": b"",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
        "client": (peer, 40000),
    }
    return Request(scope)


def test_only_a_trusted_proxy_names_the_client() -> None:
    proxies = Proxies(["10.0.0.0/8", "::1"])
    forwarded = ("X-Forwarded-For", "198.51.100.9, 203.0.113.7")
    # anyone else: the headers change nothing
    assert Proxies([]).client(_request("10.0.0.5", forwarded)) == "10.0.0.5"
    assert proxies.client(_request("192.0.2.1", forwarded)) == "192.0.2.1"
    assert proxies.client(_request("192.0.2.1", ("X-Real-IP", "203.0.113.7"))) == "192.0.2.1"
    # the right-most hop that is not a trusted proxy: what the client wrote is left of it
    assert proxies.client(_request("10.0.0.5", forwarded)) == "203.0.113.7"
    chain = ("X-Forwarded-For", "6.6.6.6, 203.0.113.7:5123, 10.1.2.3")
    assert proxies.client(_request("::1", chain)) == "203.0.113.7"
    assert proxies.client(_request("10.0.0.5", ("X-Forwarded-For", "10.0.0.9"))) == "10.0.0.9"
    assert proxies.client(_request("10.0.0.5", ("X-Real-IP", "203.0.113.8"))) == "203.0.113.8"
    assert proxies.client(_request("10.0.0.5")) == "10.0.0.5"
    # the scheme the browser used, as the proxy says
    https = ("X-Forwarded-Proto", "https")
    assert proxies.scheme(_request("10.0.0.5", https)) == "https"
    assert proxies.scheme(_request("192.0.2.1", https)) == "http"
    assert proxies.scheme(_request("10.0.0.5", ("X-Forwarded-Proto", "gopher"))) == "http"


def test_trusted_proxies_are_addresses_or_networks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.delenv("LARKOPS_TRUSTED_PROXIES", raising=False)
    assert load_settings().trusted_proxies == []
    monkeypatch.setenv("LARKOPS_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
    assert load_settings().trusted_proxies == ["10.0.0.0/8", "127.0.0.1"]
    monkeypatch.setenv("LARKOPS_TRUSTED_PROXIES", "proxy.example.com")
    with pytest.raises(ConfigError, match="not an address or a network"):
        load_settings()


async def test_a_forged_forwarded_for_changes_nothing(make_api: Any, tmp_path: Path) -> None:
    api: Api = await make_api(settings=settings_for(tmp_path, api=LIMITED))
    codes = []
    for n in range(3):  # a new made-up address each time: still the same client
        forged = {"X-Forwarded-For": f"203.0.113.{n}", "X-Real-IP": f"198.51.100.{n}"}
        codes.append(await api.client("lko_guessing").get("/incidents", headers=forged))
    assert [answer.status_code for answer in codes] == [401, 401, 429]


async def test_behind_a_trusted_proxy_each_client_has_its_own_limit(
    make_api: Any, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, api=LIMITED, trusted_proxies=["127.0.0.0/8"])
    api: Api = await make_api(settings=settings)
    first = {"X-Forwarded-For": "6.6.6.6, 203.0.113.1"}  # what the client wrote, then the proxy
    codes = [(await api.client("lko_guessing").get("/incidents", headers=first)).status_code]
    codes += [(await api.client("lko_guessing").get("/incidents", headers=first)).status_code]
    codes += [(await api.client("lko_guessing").get("/incidents", headers=first)).status_code]
    assert codes == [401, 401, 429]
    # another client behind the same proxy, even one claiming the first one's address
    other = {"X-Forwarded-For": "203.0.113.1, 203.0.113.2"}
    assert (await api.client("lko_guessing").get("/incidents", headers=other)).status_code == 401
    real = {"X-Real-IP": "203.0.113.3"}
    assert (await api.client("lko_guessing").get("/incidents", headers=real)).status_code == 401


async def _sign_in(api: Api, headers: dict[str, str]) -> tuple[str, str, str]:
    """Through the emulator's authorize page as ou_bob: the redirect_uri Feishu was given,
    and the state and session cookies as set."""
    browser = httpx.AsyncClient(base_url=api.url, timeout=30, headers=headers)
    api.clients.append(browser)
    start = await browser.get("/console/signin")
    assert start.status_code == 302
    state_cookie = start.headers["set-cookie"]
    redirect = parse_qs(urlparse(start.headers["location"]).query)["redirect_uri"][0]
    async with httpx.AsyncClient(timeout=30) as feishu:
        picked = await feishu.get(start.headers["location"] + "&user=ou_bob")
    back = urlparse(picked.headers["location"])
    state = state_cookie.split(";")[0].split("=", 1)[1]
    # a browser sends a Secure cookie back over https; the proxy passes it on
    answer = await browser.get(
        f"/console/oauth/callback?{back.query}", headers={"Cookie": f"{STATE_COOKIE}={state}"}
    )
    assert answer.status_code == 303, answer.text
    return redirect, state_cookie, answer.headers["set-cookie"]


async def test_https_at_a_trusted_proxy_makes_the_cookies_secure(
    make_api: Any, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, trusted_proxies=["127.0.0.1"])
    api: Api = await make_api(settings=settings)
    https = {"X-Forwarded-Proto": "https"}
    redirect, state, session = await _sign_in(api, https)
    assert redirect.startswith("https://")
    assert "; secure" in state.lower()
    assert session.startswith(f"{SESSION_COOKIE}=")
    assert "; secure" in session.lower()
    assert "httponly" in session.lower()
    # plain http at the proxy: not Secure (the browser would not send it back)
    redirect, state, session = await _sign_in(api, {"X-Forwarded-Proto": "http"})
    assert redirect.startswith("http://")
    assert "secure" not in session.lower()


async def test_https_claimed_by_anyone_else_changes_nothing(make_api: Any, tmp_path: Path) -> None:
    api: Api = await make_api(settings=settings_for(tmp_path))
    redirect, state, session = await _sign_in(api, {"X-Forwarded-Proto": "https"})
    assert redirect.startswith("http://")
    assert "secure" not in state.lower()
    assert "secure" not in session.lower()
