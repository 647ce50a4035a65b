"""The REST API v1: FastAPI mounted at `/api/v1` in the bot's Starlette app, its OpenAPI 3
document at `/api/v1/openapi.json`. Who may call and what they may do: `bot.api.access`.

    routes = api_routes(Backend(lambda: runtime.services, feed))   # → Starlette routes
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Mount

from bot.api import catalogue, incidents, jobs, streams
from bot.api.access import ApiError, Backend
from bot.api.schemas import Problem

PREFIX = "/api/v1"
_PROBLEM: dict[str, Any] = {"model": Problem}
COMMON: dict[int | str, dict[str, Any]] = {
    400: {**_PROBLEM, "description": "the body is not JSON"},
    401: {**_PROBLEM, "description": "no key or session, or a bad one"},
    403: {**_PROBLEM, "description": "not allowed: `needs` names the least role; or no CSRF"},
    404: {**_PROBLEM, "description": "no such thing"},
    409: {**_PROBLEM, "description": "the state does not allow it (already decided, closed…)"},
    422: {**_PROBLEM, "description": "the request does not read"},
    429: {**_PROBLEM, "description": "too many requests: see Retry-After"},
    503: {**_PROBLEM, "description": "the bot is starting"},
}


def build_api(backend: Backend) -> FastAPI:
    api = FastAPI(
        title="larkops",
        version="1",
        summary="The chat-ops bot's REST API: incidents, gates, jobs, silences, the agent.",
        openapi_url="/openapi.json",
        docs_url=None,  # no UI assets from elsewhere; the document is the reference
        redoc_url=None,
    )
    api.state.backend = backend
    for module in (incidents, jobs, catalogue, streams):
        api.include_router(module.router, responses=COMMON)

    @api.exception_handler(ApiError)
    async def problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    @api.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        found = [
            {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg"))}
            for error in exc.errors()
        ]
        first = found[0] if found else {"loc": [], "msg": "invalid"}
        message = f"{'.'.join(first['loc'])}: {first['msg']}"
        body = {"error": "invalid", "message": message[:300], "details": found[:20]}
        return JSONResponse(body, status_code=422)

    @api.exception_handler(StarletteHTTPException)
    async def other(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = "bad_request" if exc.status_code == 400 else f"http_{exc.status_code}"
        body = {"error": code, "message": str(exc.detail)[:300]}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    return api


def api_routes(backend: Backend) -> list[BaseRoute]:
    return [Mount(PREFIX, app=build_api(backend))]
