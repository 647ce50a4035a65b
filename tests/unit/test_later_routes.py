"""Routes that join the HTTP app once start-up has built them (`bot.endpoints.Later`): a request
for one that arrives before waits and is answered by it; a path nobody serves is a 404."""

from __future__ import annotations

import asyncio

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.endpoints import Later, Readiness, build_app


async def _hello(_: Request) -> Response:
    return JSONResponse({"hello": "api"})


async def test_a_request_before_the_routes_joined_waits_for_them() -> None:
    later = Later()
    app = build_app(Readiness(), [], later)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
        early = asyncio.ensure_future(client.get("/api/v1/hello"))
        health = await client.get("/healthz")  # the app answers meanwhile
        assert health.status_code == 200
        assert not early.done()
        later.join([Route("/api/v1/hello", _hello)])
        answer = await early
        assert answer.status_code == 200
        assert answer.json() == {"hello": "api"}
        assert (await client.get("/nowhere")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200


async def test_start_up_that_never_builds_them_says_starting() -> None:
    later = Later(patience=0.05)
    transport = httpx.ASGITransport(app=build_app(Readiness(), [], later))
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
        answer = await client.get("/api/v1/hello")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "2"
