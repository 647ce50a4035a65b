"""Lark endpoints for working together on an incident: urgent notices (加急), groups, pins,
documents (docx) and tasks (task v2). `LarkApi` has them (it supplies `_retrying`: tokens,
retries, rate limits).

    invalid = await api.urgent("urgent_app", message_id, ["ou_bob"])
    chat_id = await api.create_chat("🚨 #7 DiskFull", ["ou_bob"], uuid=key)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from bot.lark.errors import LarkApiError


class Collaboration:
    """The endpoints; a subclass (`LarkApi`) supplies the one call they all make."""

    async def _retrying(
        self,
        endpoint: str,
        method: str,
        uri: str,
        *,
        body: dict[str, Any] | None = None,
        queries: list[tuple[str, str]] | None = None,
        authorised: bool = True,
        chat_id: str | None = None,
        attempts: int | None = None,
    ) -> dict[str, Any]:
        raise NotImplementedError

    async def urgent(self, kind: str, message_id: str, open_ids: list[str]) -> list[str]:
        """Lark's urgent notice (加急) of a bot message for these people: `kind` is
        `urgent_app`, `urgent_sms` or `urgent_phone`. Returns the open_ids Lark could not
        reach (not in the chat); a refusal (quota, permission, the group forbids it) raises
        `LarkApiError` with Lark's code."""
        data = await self._retrying(
            f"im.message.{kind}",
            "PATCH",
            f"/open-apis/im/v1/messages/{quote(message_id, safe='')}/{kind}",
            queries=[("user_id_type", "open_id")],
            body={"user_id_list": list(open_ids)},
            attempts=2,
        )
        inner = data.get("data") if isinstance(data.get("data"), dict) else {}
        invalid = (inner or {}).get("invalid_user_id_list") or []
        return [str(item) for item in invalid if isinstance(item, str)]

    async def pin(self, message_id: str) -> None:
        """Pin a message in its chat (`POST /open-apis/im/v1/pins`)."""
        await self._retrying(
            "im.pin.create", "POST", "/open-apis/im/v1/pins", body={"message_id": message_id}
        )

    async def create_chat(self, name: str, open_ids: list[str], *, uuid: str) -> str:
        """Create a private group with these people and the bot (its manager); returns the
        chat id (the same one for a repeated `uuid`)."""
        data = await self._retrying(
            "im.chat.create",
            "POST",
            "/open-apis/im/v1/chats",
            queries=[("user_id_type", "open_id"), ("set_bot_manager", "true"), ("uuid", uuid)],
            body={
                "name": name[:60],
                "user_id_list": list(open_ids),
                "chat_mode": "group",
                "chat_type": "private",
            },
        )
        inner = data.get("data") if isinstance(data.get("data"), dict) else {}
        chat_id = (inner or {}).get("chat_id")
        if not isinstance(chat_id, str) or not chat_id:
            raise LarkApiError("im.chat.create", 200, -1, "the answer has no data.chat_id")
        return chat_id

    async def create_document(self, title: str, *, folder_token: str = "") -> str:
        """A new Feishu document (docx); returns its document_id."""
        body: dict[str, Any] = {"title": title[:800]}
        if folder_token:
            body["folder_token"] = folder_token
        data = await self._retrying(
            "docx.document.create", "POST", "/open-apis/docx/v1/documents", body=body
        )
        inner = data.get("data") if isinstance(data.get("data"), dict) else {}
        document = (inner or {}).get("document")
        found = document.get("document_id") if isinstance(document, dict) else None
        if not isinstance(found, str) or not found:
            raise LarkApiError("docx.document.create", 200, -1, "the answer has no document_id")
        return found

    async def add_blocks(self, document_id: str, blocks: list[dict[str, Any]]) -> None:
        """Append blocks to a document's body, 50 a call (Lark's most per request)."""
        path = f"/open-apis/docx/v1/documents/{quote(document_id, safe='')}"
        for start in range(0, len(blocks), 50):
            await self._retrying(
                "docx.block.children.create",
                "POST",
                f"{path}/blocks/{quote(document_id, safe='')}/children",
                queries=[("document_revision_id", "-1")],
                body={"children": blocks[start : start + 50], "index": -1},
            )

    async def create_task(
        self, summary: str, description: str, assignees: list[str], *, uuid: str
    ) -> str:
        """A Feishu task (task v2) assigned to these people; returns its guid (the same one
        for a repeated `uuid`)."""
        members = [{"id": person, "type": "user", "role": "assignee"} for person in assignees]
        data = await self._retrying(
            "task.v2.task.create",
            "POST",
            "/open-apis/task/v2/tasks",
            queries=[("user_id_type", "open_id")],
            body={
                "summary": summary[:3000],
                "description": description[:3000],
                "members": members,
                "client_token": uuid,
            },
        )
        inner = data.get("data") if isinstance(data.get("data"), dict) else {}
        task = (inner or {}).get("task")
        guid = task.get("guid") if isinstance(task, dict) else None
        if not isinstance(guid, str) or not guid:
            raise LarkApiError("task.v2.task.create", 200, -1, "the answer has no task.guid")
        return guid

    async def dissolve_chat(self, chat_id: str) -> None:
        """Dissolve a group the bot owns (`DELETE /open-apis/im/v1/chats/:chat_id`)."""
        await self._retrying(
            "im.chat.delete", "DELETE", f"/open-apis/im/v1/chats/{quote(chat_id, safe='')}"
        )
