"""aiogram-style routers: one per feature module, composed with `include_router`.

A handler names what it needs as parameters (checked once, at registration: an unknown name is
a `TypeError` then, never a silent `None` later):

- `ctx`     the `HandlerContext` (reply, texts, roles, signing)
- `event`   the `MessageEvent` or `CardAction`
- `args`    for commands, the text after the command name
- `payload` for card actions, the verified `ActionPayload`
- any service of `bot.context.Services` by its field name: `desk` (the `IncidentDesk`),
  `operations`, `schedules`, `chat`, `memory`, `council`, `status`, `db`, `api`, `settings`,
  `coordination`, `signing_key`, `router`, `bot`

The dispatcher passes each service as it was built by `bot.assembly.assemble`; a service the
configuration leaves out (`Services.council` without `llm.council`) is answered once, by the
dispatcher, and the handler is not called. A handler does three things: parse its arguments,
call a desk, render the result (a card from `cards/`, a text from the catalogue).

Command docstrings are the help text: first line Chinese, second line English.

Usage::

    router = Router("incidents")

    @router.command("/incidents", usage="[open|all]", roles=("viewer",))
    async def list_incidents(ctx: HandlerContext, args: str, db: Database) -> None:
        \"\"\"列出进行中的事件。
        List open incidents.\"\"\"
        rows = await incidents.list_incidents(db, active_only=args != "all")
        await ctx.reply_card(incidents_card(rows, ctx.texts))

    @router.card_action(Ack, roles=("operator",))
    async def ack(ctx: HandlerContext, payload: Ack, desk: IncidentDesk) -> ActionResult: ...
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from bot.context import Services
from cards.actions import ActionPayload

if TYPE_CHECKING:
    from bot.lark.events import MessageEvent

Handler = Callable[..., Awaitable[Any]]
MessageFilter = Callable[["MessageEvent"], bool]
SERVICES = frozenset(f.name for f in fields(Services))  # what a handler may name besides


def _parameters(handler: Handler, given: frozenset[str]) -> tuple[str, ...]:
    if not inspect.iscoroutinefunction(handler):
        raise TypeError(f"handler {handler.__qualname__} must be `async def`")
    names = tuple(inspect.signature(handler).parameters)
    unknown = [name for name in names if name not in given | SERVICES]
    if unknown:
        raise TypeError(
            f"handler {handler.__qualname__} asks for {', '.join(unknown)}; "
            f"it may ask for {', '.join(sorted(given))} or a service: {', '.join(sorted(SERVICES))}"
        )
    return names


def _summaries(handler: Handler) -> tuple[str, str]:
    lines = [line.strip() for line in (inspect.getdoc(handler) or "").splitlines() if line.strip()]
    if not lines:
        raise TypeError(f"command handler {handler.__qualname__} needs a docstring (its help)")
    return lines[0], lines[1] if len(lines) > 1 else lines[0]


@dataclass(frozen=True)
class CommandSpec:
    name: str
    aliases: tuple[str, ...]
    handler: Handler
    params: tuple[str, ...]
    summary_zh: str
    summary_en: str
    usage: str
    roles: frozenset[str]

    def summary(self, language: str) -> str:
        return self.summary_en if language == "en" else self.summary_zh


@dataclass(frozen=True)
class ActionSpec:
    payload: type[ActionPayload]
    handler: Handler
    params: tuple[str, ...]
    roles: frozenset[str]


@dataclass(frozen=True)
class MessageSpec:
    handler: Handler
    params: tuple[str, ...]
    accepts: MessageFilter | None


def _command_name(name: str) -> str:
    if not name.startswith("/") or len(name) < 2 or " " in name:
        raise ValueError(f"command {name!r} must look like /name")
    return name.lower()


@dataclass
class Router:
    """Handlers of one feature; `include_router` nests others (their handlers come after)."""

    name: str
    _commands: list[CommandSpec] = field(default_factory=list)
    _actions: list[ActionSpec] = field(default_factory=list)
    _messages: list[MessageSpec] = field(default_factory=list)
    _fallback: MessageSpec | None = None
    _children: list[Router] = field(default_factory=list)

    def command(
        self, name: str, *aliases: str, usage: str = "", roles: tuple[str, ...] = ()
    ) -> Callable[[Handler], Handler]:
        """Register a slash command (`/name`), optionally restricted to roles."""
        names = (_command_name(name), *(_command_name(a) for a in aliases))

        def register(handler: Handler) -> Handler:
            params = _parameters(handler, frozenset({"ctx", "event", "args"}))
            zh, en = _summaries(handler)
            taken = {n for spec in self.iter_commands() for n in (spec.name, *spec.aliases)}
            if taken & set(names):
                raise ValueError(f"command {sorted(taken & set(names))} is already registered")
            self._commands.append(
                CommandSpec(names[0], names[1:], handler, params, zh, en, usage, frozenset(roles))
            )
            return handler

        return register

    def card_action(
        self, payload: type[ActionPayload], *, roles: tuple[str, ...] = ()
    ) -> Callable[[Handler], Handler]:
        """Register the handler for buttons carrying `payload` (verified before the call)."""
        if not payload.action:
            raise TypeError(f"{payload.__name__} has no action name")

        def register(handler: Handler) -> Handler:
            params = _parameters(handler, frozenset({"ctx", "event", "payload"}))
            self._actions.append(ActionSpec(payload, handler, params, frozenset(roles)))
            return handler

        return register

    def message(self, accepts: MessageFilter | None = None) -> Callable[[Handler], Handler]:
        """Register a handler for non-command messages (first whose filter accepts wins)."""

        def register(handler: Handler) -> Handler:
            params = _parameters(handler, frozenset({"ctx", "event"}))
            self._messages.append(MessageSpec(handler, params, accepts))
            return handler

        return register

    def fallback(self) -> Callable[[Handler], Handler]:
        """Register the handler of @bot text that no command and no message handler took
        (one in the whole tree; it runs after every `message` handler, wherever it is)."""

        def register(handler: Handler) -> Handler:
            if self._fallback is not None:
                raise ValueError(f"router {self.name} already has a fallback")
            self._fallback = MessageSpec(
                handler, _parameters(handler, frozenset({"ctx", "event"})), None
            )
            return handler

        return register

    def include_router(self, router: Router) -> Router:
        if router is self or router in self._children:
            raise ValueError(f"router {router.name} is already included")
        self._children.append(router)
        try:
            self.check()
        except ValueError:
            self._children.remove(router)
            raise
        return router

    def check(self) -> None:
        """Refuse a tree where two handlers claim one command name or one button action."""
        seen: set[str] = set()
        for spec in self.iter_commands():
            for name in (spec.name, *spec.aliases):
                if name in seen:
                    raise ValueError(f"command {name} is already registered")
                seen.add(name)
        actions = [spec.payload.action for r in self._walk() for spec in r._actions]
        doubled = {a for a in actions if actions.count(a) > 1}
        if doubled:
            raise ValueError(f"button actions {sorted(doubled)} have two handlers")
        fallbacks = [r.name for r in self._walk() if r._fallback is not None]
        if len(fallbacks) > 1:
            raise ValueError(f"routers {fallbacks} each have a fallback; one may")

    def _walk(self) -> Iterator[Router]:
        yield self
        for child in self._children:
            yield from child._walk()

    def iter_commands(self) -> Iterator[CommandSpec]:
        for router in self._walk():
            yield from router._commands

    def find_command(self, name: str) -> CommandSpec | None:
        name = name.lower()
        return next((c for c in self.iter_commands() if name in (c.name, *c.aliases)), None)

    def find_action(self, payload: type[ActionPayload]) -> ActionSpec | None:
        for router in self._walk():
            for spec in router._actions:
                if spec.payload is payload:
                    return spec
        return None

    def iter_messages(self) -> Iterator[MessageSpec]:
        """The message handlers in registration order, then the fallback."""
        for router in self._walk():
            yield from router._messages
        for router in self._walk():
            if router._fallback is not None:
                yield router._fallback


async def call(handler: Handler, params: tuple[str, ...], available: dict[str, Any]) -> Any:
    """Call a handler with exactly the arguments it named (`Dispatcher.arguments` finds them)."""
    return await handler(**{name: available[name] for name in params})
