"""The chat agent's tools for one question: the bot's own data, the diagnostic plugins, and the
change tools that only post cards.

A tool is a name, a description, a pydantic parameter model (its JSON schema is what the model
sees) and a coroutine returning (data for the model, what it did as a `Said` code and values,
worded in the chat's language on the evidence list).
Arguments are validated before anything runs; every result goes back to the model redacted and
fenced as data. A call of a plugin goes through `run_diagnostic`: only enabled diagnostic
plugins that the policy would run by itself ever run.

Usage::

    box = ChatToolbox(scope, READ_TOOLS + CHANGE_TOOLS, toolkit, scrub)
    box.specs()                      # ToolSpec list for the model
    outcome = await box.call(call)   # ToolOutcome(text, summary, ok)
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from storage import incidents
from storage.models import Incident
from workflows.chat.agent import ToolOutcome
from workflows.llm.agent import run_diagnostic
from workflows.llm.model import ToolCall, ToolSpec
from workflows.llm.prompt import Scrubber, tool_result_text

if TYPE_CHECKING:
    from bot.context import HandlerContext
    from bot.operations import Toolkit

Data = dict[str, Any]


@dataclass
class ToolScope:
    """What a tool call may see and do: the asking person's chat and its context."""

    ctx: HandlerContext
    health: Callable[[], Awaitable[Data]]


class ToolFailed(Exception):
    """A tool could not answer; the message goes to the model (and the evidence list)."""


async def own_incident(scope: ToolScope, incident_id: int) -> Incident:
    """An incident of the asking chat; ToolFailed for any other (or none)."""
    row = await incidents.get_incident(scope.ctx.services.db, incident_id)
    if row is None or row.chat_id != scope.ctx.chat_id:
        raise ToolFailed(f"incident #{incident_id} is not an incident of this chat")
    return row


class Said:
    """What a tool did, as a code and its values: the evidence list words it in the chat's
    language (`card.finding.<code>`); `line()` is the same for logs.

        Said("tool_jobs", count=3)
    """

    def __init__(self, code: str, **values: Any) -> None:
        self.code = code
        self.values: Mapping[str, Any] = values

    def as_finding(self) -> dict[str, Any]:
        return {"code": self.code, "values": dict(self.values)}

    def line(self) -> str:
        shown = ", ".join(f"{key}={value}" for key, value in self.values.items())
        return f"{self.code} ({shown})" if shown else self.code


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    params: type[BaseModel]
    run: Callable[[ToolScope, Any], Awaitable[tuple[Data, Said]]]
    changes: bool = False  # posts a card for people instead of reading


class ChatToolbox:
    def __init__(
        self, scope: ToolScope, tools: Sequence[Tool], toolkit: Toolkit | None, scrub: Scrubber
    ) -> None:
        self.scope = scope
        self.tools = {tool.name: tool for tool in tools}
        self.toolkit = toolkit
        self.scrub = scrub

    def specs(self) -> list[ToolSpec]:
        specs = [
            ToolSpec(tool.name, tool.description, tool.params.model_json_schema())
            for tool in self.tools.values()
        ]
        if self.toolkit is not None:
            for spec in self.toolkit.registry.specs("diagnostic"):
                if spec.name not in self.tools:
                    described = f"Diagnostic check. {spec.title_en}: {spec.description_en}"
                    specs.append(
                        ToolSpec(spec.name, described[:500], spec.params.model_json_schema())
                    )
        return specs

    async def call(self, call: ToolCall) -> ToolOutcome:
        tool = self.tools.get(call.name)
        if tool is None:
            if self.toolkit is None:
                return self._refused(f"there is no tool named {call.name[:64]!r}")
            record, text = await run_diagnostic(
                self.toolkit.registry, self.toolkit.policy, self.scrub, call, alert=None
            )
            return ToolOutcome(text, record.summary[:300], record.ok and record.ran, record.finding)
        if call.arguments is None:
            return self._refused("the arguments were not a JSON object")
        try:
            params = tool.params.model_validate(dict(call.arguments))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "arguments"
            return self._refused(f"invalid arguments ({where}: {first['msg']})")
        try:
            data, found = await tool.run(self.scope, params)
        except ToolFailed as exc:
            return self._refused(str(exc))
        shown = json.loads(json.dumps(data, default=str, ensure_ascii=False))
        text = tool_result_text({"ok": True, **shown}, self.scrub)
        return ToolOutcome(text, found.line()[:300], finding=found.as_finding())

    def _refused(self, reason: str) -> ToolOutcome:
        return ToolOutcome(
            tool_result_text({"ok": False, "error": reason}, self.scrub), reason, False
        )
