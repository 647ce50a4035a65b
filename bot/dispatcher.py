"""Routes one normalised event through the middleware chain to its handler.

Messages: a command (text starting with `/` after the bot's mention) goes to its command
handler; an unknown command gets a "did you mean"; other text addressed to the bot goes to the
message handlers. Card actions: the value is verified (signature, version, known action) before
any handler runs; a refusal is a toast and changes nothing.

Roles (`bot.roles`): a command or button runs only when the sender's roles admit the least role
it declares (`roles=("operator",)` admits approvers and admins too; nothing declared means
viewer). A refused command gets `denied.role`; a refused click an error toast and a
`click.refused` audit event. Message handlers check for themselves (alert bots have no role).

Handlers get what they name (`Dispatcher.arguments`): the event's parts and the services; one
that names a service the configuration leaves out (the model council) gets its refusal here, as
a reply or an error toast, and is not called.

Unexpected errors are logged with the trace id and answered with that trace id. Transient
ones (`TRANSIENT`: Lark answering 5xx/429 beyond a call's retries, Redis unreachable) are not
answered: the message goes back to the inbox and is handled again once they pass; a click that
meets Redis down gets a toast saying so.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from bot.context import OPTIONAL, ActionResult, HandlerContext, Services, Toast
from bot.errors import UserFacingError
from bot.lark.api import LarkRetryable
from bot.lark.events import MAX_TEXT, CardAction, MessageEvent
from bot.logs import event_trace_id, get_logger, new_trace_id, trace_context
from bot.roles import admits
from bot.router import Router, call
from cards.actions import ActionRejected, unpack
from cards.texts import texts
from storage import incidents, tracing
from storage.approvals import APPROVALS
from storage.coordination import CoordinationError
from storage.tasks import finish

log = get_logger(__name__)
# failures that pass: a message that meets one goes back to the inbox and is tried again later
TRANSIENT = (LarkRetryable, CoordinationError)

Outcome = Literal["done", "ignored", "failed"]
Next = Callable[[], Awaitable[Any]]
Middleware = Callable[[HandlerContext, Next], Awaitable[Any]]
IGNORED: Outcome = "ignored"


class Dispatcher:
    """The root router, the middleware chain and the services, bound together."""

    def __init__(
        self, router: Router, services: Services, middlewares: list[Middleware] | None = None
    ) -> None:
        router.check()
        self.router = router
        self.services = services
        self.middlewares = list(middlewares or [])
        self.texts = texts(services.settings.language)
        self._background: set[asyncio.Task[None]] = set()

    def context(self, event: MessageEvent | CardAction) -> HandlerContext:
        # the event's own trace: its receipt, commit and dispatch share it (`bot.logs`)
        trace = event_trace_id(event.event_id) if event.event_id else new_trace_id()
        return HandlerContext(event=event, services=self.services, texts=self.texts, trace_id=trace)

    def arguments(self, params: tuple[str, ...], **given: Any) -> dict[str, Any]:
        """What a handler named: the event's parts, else the service of that name. A service the
        configuration leaves out (`OPTIONAL`) is refused here, in the reader's words, before
        the handler runs; so no handler checks for None."""
        values: dict[str, Any] = {}
        for name in params:
            value = given[name] if name in given else getattr(self.services, name)
            if value is None:
                raise UserFacingError(self.texts(OPTIONAL[name]))
            values[name] = value
        return values

    async def _chain(self, ctx: HandlerContext, final: Next) -> Any:
        async def run(index: int) -> Any:
            if index == len(self.middlewares):
                return await final()
            return await self.middlewares[index](ctx, lambda: run(index + 1))

        with (
            trace_context(ctx.trace_id, event_id=ctx.event.event_id, chat_id=ctx.chat_id),
            tracing.span("dispatch", {"lark.chat_id": ctx.chat_id}),
        ):
            return await run(0)

    # messages ---------------------------------------------------------------------------

    async def dispatch_message(self, event: MessageEvent) -> Outcome:
        ctx = self.context(event)

        async def final() -> Outcome:
            return await self._message(ctx, event)

        try:
            outcome: Outcome = await self._chain(ctx, final)
        except UserFacingError as exc:
            await ctx.reply_text(str(exc))
            return "done"
        except TRANSIENT:
            raise  # Lark or Redis away for a while: the inbox keeps the event and tries again
        except Exception:
            log.exception("handler.failed", event_type="message")
            await ctx.reply_text(self.texts("error.unexpected", trace_id=ctx.trace_id))
            return "failed"
        return outcome

    async def _message(self, ctx: HandlerContext, event: MessageEvent) -> Outcome:
        if event.addressed_to_bot and event.unreadable:
            await ctx.reply_text(self.texts("message.unreadable"))
            return "done"
        if event.addressed_to_bot and event.truncated:
            await ctx.reply_text(self.texts("message.truncated", limit=MAX_TEXT))
        if event.addressed_to_bot and event.command_text.startswith("/"):
            return await self._command(ctx, event)
        for spec in self.router.iter_messages():
            if spec.accepts is None and not event.addressed_to_bot:
                continue
            if spec.accepts is not None and not spec.accepts(event):
                continue
            await call(spec.handler, spec.params, self.arguments(spec.params, ctx=ctx, event=event))
            return "done"
        if not event.addressed_to_bot:
            return IGNORED
        await ctx.reply_text(self.texts("chat.no_agent"))
        return "done"

    async def _command(self, ctx: HandlerContext, event: MessageEvent) -> Outcome:
        name, _, args = event.command_text.partition(" ")
        spec = self.router.find_command(name)
        if spec is None:
            await ctx.reply_text(self._unknown(name))
            return "done"
        if not admits(ctx.roles, spec.roles):
            log.info("command.denied", command=spec.name, user=ctx.user, roles=sorted(ctx.roles))
            await ctx.reply_text(self._denied(spec.roles))
            return "done"
        log.info("command", command=spec.name, user=ctx.user)
        available = self.arguments(spec.params, ctx=ctx, event=event, args=args.strip())
        await call(spec.handler, spec.params, available)
        return "done"

    def _unknown(self, name: str) -> str:
        known = [n for spec in self.router.iter_commands() for n in (spec.name, *spec.aliases)]
        close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.5)
        shown = name if len(name) <= 40 else name[:40] + "…"
        parts = [self.texts("unknown.command", command=shown)]
        if close:
            parts.append(self.texts("unknown.suggest", suggestions=" / ".join(close)))
        parts.append(self.texts("unknown.see_help"))
        return " ".join(parts)

    def _denied(self, roles: frozenset[str]) -> str:
        """Names the least role (or roles) that would do; higher roles would too."""
        names = ", ".join(self.texts(f"role.{role}") for role in sorted(roles or {"viewer"}))
        return self.texts("denied.role", roles=names) + self.texts("denied.see_roles")

    # card actions -----------------------------------------------------------------------

    async def dispatch_action(self, action: CardAction) -> ActionResult:
        """Answer a button click from fast checks only; slow work goes to `result.later`."""
        ctx = self.context(action)

        async def final() -> ActionResult:
            return await self._action(ctx, action)

        try:
            result: ActionResult | None = await self._chain(ctx, final)
        except UserFacingError as exc:
            return ActionResult(toast=Toast("error", str(exc)))
        except CoordinationError as exc:
            log.warning("card_action.coordination_unavailable", error=str(exc))
            return ActionResult(toast=Toast("error", self.texts("action.unavailable")))
        except Exception:
            log.exception("handler.failed", event_type="card_action")
            return ActionResult(
                toast=Toast("error", self.texts("error.unexpected", trace_id=ctx.trace_id))
            )
        result = result or ActionResult(toast=Toast("info", self.texts("action.duplicate")))
        if result.later is not None:
            self._run_later(ctx, result.later, result.later_after)
        return result

    async def _action(self, ctx: HandlerContext, action: CardAction) -> ActionResult:
        try:
            payload = unpack(action.value, self.services.signing_key)
        except ActionRejected as exc:
            log.warning("card_action.rejected", reason=str(exc), operator=action.operator_open_id)
            await self._audit_rejection(action, exc.reason, str(exc))
            key = "action.forged" if exc.forged else "action.unknown"
            value = action.value
            gate_button = isinstance(value, dict) and value.get("action") in ("approve", "reject")
            if key == "action.forged" and gate_button:
                APPROVALS.labels("unknown", "forged").inc()
            return ActionResult(toast=Toast("error", self.texts(key)))
        spec = self.router.find_action(type(payload))
        if spec is None:
            return ActionResult(toast=Toast("error", self.texts("action.unknown")))
        if not admits(ctx.roles, spec.roles):
            needed = ", ".join(sorted(spec.roles or {"viewer"}))
            log.info("card_action.denied", action=payload.action, operator=ctx.user)
            await self._audit_rejection(action, "role", f"needs the role {needed}", needs=needed)
            gate = getattr(payload, "gate", None)
            if payload.action in ("approve", "reject") and isinstance(gate, str):
                APPROVALS.labels(gate, "role_denied").inc()
            return ActionResult(toast=Toast("error", self._denied(spec.roles)))
        available = self.arguments(spec.params, ctx=ctx, event=action, payload=payload)
        result = await call(spec.handler, spec.params, available)
        if not isinstance(result, ActionResult):
            raise TypeError(
                f"card action handler {spec.handler.__qualname__} must return ActionResult"
            )
        return result

    async def _audit_rejection(
        self, action: CardAction, reason: str, message: str, **values: str
    ) -> None:
        """A refused button is part of the incident's record when the card is an incident's."""
        incident = await incidents.by_card(self.services.db, action.message_id)
        await incidents.record_event(
            self.services.db,
            incident.id if incident is not None else None,
            "click.refused",
            actor=action.operator_open_id,
            message=message,  # the log's sentence; the timeline words the reason code
            data={"message_id": action.message_id, "reason": reason, **values},
        )

    def _run_later(
        self, ctx: HandlerContext, work: Callable[[], Awaitable[None]], after: float
    ) -> None:
        async def run() -> None:
            with trace_context(ctx.trace_id, event_id=ctx.event.event_id):
                try:
                    await asyncio.sleep(after)
                    await work()
                except Exception:
                    log.exception("card_action.later_failed")

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self, patience: float = 10.0) -> None:
        """Wait for background work started by card actions (at shutdown)."""
        await finish(self._background, patience, "card actions")
