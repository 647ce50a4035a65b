"""A local `POST /v1/embeddings` in the OpenAI wire format, for the real `openai` client.

`fake_embeddings()` serves it with uvicorn on 127.0.0.1 and yields the state object: what the
server received (`requests`) and how it answers next (`mode`: `ok`, `wrong-size`, `error`).
Vectors are derived from the text (a hashing embedder), so equal texts get equal vectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from workflows.memory.embedding import HashingEmbedder


@dataclass
class FakeEmbeddings:
    url: str = ""
    mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


def _app(state: FakeEmbeddings) -> Starlette:
    hashing = HashingEmbedder()

    async def embeddings(request: Request) -> JSONResponse:
        body = await request.json()
        state.requests.append(body)
        state.headers.append(dict(request.headers))
        if state.mode == "error":
            return JSONResponse(
                {
                    "error": {
                        "message": "The server had an error while processing your request.",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                },
                status_code=500,
            )
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        size = 1536 if state.mode == "wrong-size" else int(body.get("dimensions") or 1536)
        data = []
        for index, text in enumerate(texts):
            vector = hashing.embed_one(text)
            vector = (vector * (size // len(vector) + 1))[:size]
            data.append({"object": "embedding", "index": index, "embedding": vector})
        data.reverse()  # the client must order by `index`, not by position
        tokens = sum(len(text.split()) for text in texts)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    return Starlette(routes=[Route("/v1/embeddings", embeddings, methods=["POST"])])


@contextlib.asynccontextmanager
async def fake_embeddings() -> AsyncIterator[FakeEmbeddings]:
    state = FakeEmbeddings()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(_app(state), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    state.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield state
    finally:
        server.should_exit = True
        await task
