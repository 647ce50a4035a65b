"""What a handler gets: the event, the services, the texts, the roles, and ways to answer.

Replies carry idempotency keys derived from the event they answer, so handling the same event
twice (after a crash) never shows the user two replies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from bot.lark.api import BotInfo, LarkApi, idempotency_key
from bot.lark.events import CardAction, MessageEvent
from cards.actions import ActionPayload, pack
from cards.status import StatusView
from cards.texts import Texts

if TYPE_CHECKING:
    from bot.chat.desk import ChatDesk
    from bot.config import Settings
    from bot.incidents.desk import IncidentDesk
    from bot.latency import Latency
    from bot.operations import OperationsDesk
    from bot.reports import ReportDesk
    from bot.roles import AccessControl
    from bot.router import Router
    from bot.scheduling.desk import ScheduleDesk
    from storage.coordination import Coordination
    from storage.database import Database
    from workflows.llm.council import Council
    from workflows.memory.recall import IncidentMemory


@dataclass
class Services:
    """Long-lived things handlers use; built once, by `bot.assembly.assemble`.

    A handler names any of them as a parameter (`desk: IncidentDesk`) and gets it (`bot.router`).
    Each exists in every running bot, except those in `OPTIONAL`."""

    settings: Settings
    db: Database
    coordination: Coordination
    api: LarkApi
    bot: BotInfo
    signing_key: bytes
    router: Router
    desk: IncidentDesk
    operations: OperationsDesk
    memory: IncidentMemory
    schedules: ScheduleDesk
    chat: ChatDesk
    reports: ReportDesk  # the alert-hygiene report (/report, its buttons, the REST API)
    access: AccessControl  # who holds which role where (the roles middleware, /roles)
    latency: Latency  # the backends' round trips (/ping)
    status: Callable[[], Awaitable[StatusView]]  # what /status shows
    council: Council | None = None  # the council of models (`llm.council`), when configured


# the services the configuration may leave out, and the text a handler naming one answers with
# when it is missing (the dispatcher says it, so no handler checks for None)
OPTIONAL: dict[str, str] = {"council": "council.ask.unavailable"}


@dataclass(frozen=True)
class Toast:
    kind: Literal["success", "info", "warning", "error"]
    content: str


@dataclass
class ActionResult:
    """A card action's answer: returned within Lark's 3-second deadline. `later` runs after."""

    toast: Toast | None = None
    card: dict[str, Any] | None = None
    later: Callable[[], Awaitable[None]] | None = None
    # how long `later` waits after the answer: Lark applies the answer's card first, and a
    # delayed update with the action token must come after it (see Dispatcher._run_later)
    later_after: float = 0.3

    def response(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.toast is not None:
            body["toast"] = {"type": self.toast.kind, "content": self.toast.content}
        if self.card is not None:
            body["card"] = {"type": "raw", "data": self.card}
        return body


@dataclass
class HandlerContext:
    event: MessageEvent | CardAction
    services: Services
    texts: Texts
    trace_id: str
    roles: frozenset[str] = frozenset()
    _replies: int = field(default=0, repr=False)

    @property
    def user(self) -> str:
        if isinstance(self.event, MessageEvent):
            return self.event.sender_open_id
        return self.event.operator_open_id

    @property
    def chat_id(self) -> str:
        return self.event.chat_id

    @property
    def zone(self) -> ZoneInfo:
        """The configured time zone, in which cards and replies show times (as `texts` is the
        configured language): handlers render with it and never read the settings."""
        return ZoneInfo(self.services.settings.timezone)

    def sign(self, payload: ActionPayload) -> dict[str, Any]:
        """The signed callback value for a button."""
        return pack(payload, self.services.signing_key)

    def _uuid(self) -> str:
        self._replies += 1
        return idempotency_key(self.event.event_id, "reply", str(self._replies))

    async def reply(self, msg_type: str, content: dict[str, Any]) -> str:
        """Answer the event: a reply to the message, or a new message in the card's chat."""
        api = self.services.api
        if isinstance(self.event, MessageEvent):
            return await api.reply(
                self.event.message_id, msg_type, content, uuid=self._uuid(), chat_id=self.chat_id
            )
        return await api.send(self.chat_id, msg_type, content, uuid=self._uuid())

    async def reply_text(self, text: str) -> str:
        return await self.reply("text", {"text": text})

    async def reply_card(self, card: dict[str, Any]) -> str:
        return await self.reply("interactive", card)
