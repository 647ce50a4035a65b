"""The emulator's documents (docx) and tasks (task v2).

- `POST /open-apis/docx/v1/documents` with `{"title", "folder_token"?}`.
- `POST /open-apis/docx/v1/documents/{document_id}/blocks/{block_id}/children` with
  `{"children": [...], "index": -1}`: at most 50 blocks a call, only to the root block here.
- `POST /open-apis/task/v2/tasks?user_id_type=open_id` with `{"summary", "members",
  "client_token"}`: a task; a repeated `client_token` gets the same task.

    emulator.documents.docs["doxcn…"].blocks        # what the bot wrote, in order
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from bot.sandbox.envelopes import new_id
from bot.sandbox.guard import LarkError
from bot.sandbox.paging import Handler, bound

if TYPE_CHECKING:
    from bot.sandbox.emulator import LarkEmulator

FIELD_INVALID = 99992402
DOCUMENT_GONE = 1770002  # 400: document not found
BLOCK_TYPES = {2: "text", 3: "heading1", 4: "heading2", 12: "bullet", 13: "ordered"}


@dataclass
class Document:
    document_id: str
    title: str
    folder_token: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    revision: int = 1

    def text(self) -> str:
        """The document's words, one block a line (mentions as their open_id)."""
        lines = []
        for block in self.blocks:
            kind = BLOCK_TYPES.get(block.get("block_type", 0), "")
            parts = []
            for element in (block.get(kind) or {}).get("elements") or []:
                run = element.get("text_run") or {}
                person = element.get("mention_user") or {}
                parts.append(str(run.get("content") or person.get("user_id") or ""))
            lines.append("".join(parts))
        return "\n".join(lines)


@dataclass(frozen=True)
class Task:
    guid: str
    summary: str
    description: str
    assignees: tuple[str, ...]


@dataclass
class Documents:
    docs: dict[str, Document] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)  # by client_token


async def create(emulator: LarkEmulator, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    title = body.get("title", "")
    if not isinstance(title, str) or len(title) > 800:
        raise LarkError(400, FIELD_INVALID, "field validation failed: title")
    document = Document(new_id("doxcn", 22), title, str(body.get("folder_token") or ""))
    emulator.documents.docs[document.document_id] = document
    found = {"document_id": document.document_id, "revision_id": 1, "title": title}
    return {"code": 0, "msg": "success", "data": {"document": found}}


async def children(
    emulator: LarkEmulator, request: Request, body: dict[str, Any]
) -> dict[str, Any]:
    document = emulator.documents.docs.get(request.path_params["document_id"])
    if document is None or request.path_params["block_id"] != document.document_id:
        raise LarkError(400, DOCUMENT_GONE, "document not found")
    blocks = body.get("children")
    if not isinstance(blocks, list) or not blocks or len(blocks) > 50:
        raise LarkError(400, FIELD_INVALID, "field validation failed: children")
    for block in blocks:
        code = block.get("block_type") if isinstance(block, dict) else None
        kind = BLOCK_TYPES.get(code, "") if isinstance(code, int) else ""
        if not kind or not isinstance(block.get(kind), dict):
            raise LarkError(400, FIELD_INVALID, "field validation failed: block_type")
    document.blocks += blocks
    document.revision += 1
    made = [{**b, "block_id": new_id("doxcn", 22)} for b in blocks]
    data = {"children": made, "document_revision_id": document.revision}
    return {"code": 0, "msg": "success", "data": data}


async def create_task(
    emulator: LarkEmulator, request: Request, body: dict[str, Any]
) -> dict[str, Any]:
    summary, members = body.get("summary"), body.get("members") or []
    if not isinstance(summary, str) or not summary.strip() or not isinstance(members, list):
        raise LarkError(400, FIELD_INVALID, "field validation failed: summary")
    token = str(body.get("client_token") or new_id("", 16))
    task = emulator.documents.tasks.get(token)
    if task is None:
        assignees = tuple(
            str(m.get("id"))
            for m in members
            if isinstance(m, dict) and m.get("role") == "assignee" and m.get("id") in emulator.users
        )
        task = Task(new_id("", 32), summary, str(body.get("description") or ""), assignees)
        emulator.documents.tasks[token] = task
    found = {
        "guid": task.guid,
        "summary": task.summary,
        "members": [{"id": a, "type": "user", "role": "assignee"} for a in task.assignees],
    }
    return {"code": 0, "msg": "success", "data": {"task": found}}


def routes(emulator: LarkEmulator, wrap: Callable[[Handler], Any]) -> list[BaseRoute]:
    """The routes of this module (the REST side mounts them before its catch-all)."""
    blocks = "/open-apis/docx/v1/documents/{document_id}/blocks/{block_id}/children"
    return [
        Route("/open-apis/docx/v1/documents", wrap(bound(emulator, create)), methods=["POST"]),
        Route(blocks, wrap(bound(emulator, children)), methods=["POST"]),
        Route("/open-apis/task/v2/tasks", wrap(bound(emulator, create_task)), methods=["POST"]),
    ]
