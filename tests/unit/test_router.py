"""Routers refuse bad handlers when they are registered, not when a user hits them."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import fields

import pytest

from bot.commands import root_router
from bot.context import OPTIONAL, Services
from bot.router import Handler, Router
from cards.actions import ActionPayload


class Sample(ActionPayload, action="test.sample"):
    n: int


def test_unknown_parameter_is_an_error_at_registration() -> None:
    router = Router("r")
    with pytest.raises(TypeError, match="asks for database"):

        @router.command("/x")
        async def handler(ctx: object, database: object) -> None:
            """说明。
            Explain."""


def test_a_handler_may_name_any_service() -> None:
    router = Router("r")

    @router.command("/x")
    async def handler(ctx: object, args: str, desk: object, council: object) -> None:
        """说明。
        Explain."""

    spec = router.find_command("/x")
    assert spec is not None
    assert spec.params == ("ctx", "args", "desk", "council")


def test_service_parameters_have_the_type_of_their_service() -> None:
    """A handler's `desk: IncidentDesk` is what `Services.desk` holds (the dispatcher passes
    it by name; mypy cannot see that call), and only optional services may be None."""
    declared = {f.name: str(f.type) for f in fields(Services)}
    wrong = []
    for handler in _handlers(root_router()):
        for name, parameter in inspect.signature(handler).parameters.items():
            if name in declared:
                expected = declared[name].removesuffix(" | None")
                if parameter.annotation != expected:
                    wrong.append(f"{handler.__qualname__}({name}: {parameter.annotation})")
    assert wrong == []
    optional = {name for name, kind in declared.items() if kind.endswith("| None")}
    assert optional == set(OPTIONAL)


def test_payload_is_only_for_card_actions() -> None:
    router = Router("r")
    with pytest.raises(TypeError, match="payload"):

        @router.command("/x")
        async def handler(payload: object) -> None:
            """说明。
            Explain."""


def test_command_needs_a_docstring_and_async() -> None:
    router = Router("r")
    with pytest.raises(TypeError, match="docstring"):

        @router.command("/x")
        async def undocumented() -> None:
            pass

    with pytest.raises(TypeError, match="async def"):
        router.command("/y")(lambda: None)  # type: ignore[arg-type]


def test_duplicate_commands_and_bad_names_are_refused() -> None:
    root = root_router()
    other = Router("other")

    @other.command("/help")
    async def again() -> None:
        """重复。
        Duplicate."""

    with pytest.raises(ValueError, match="/help is already registered"):
        root.include_router(other)
    # the refused router was not kept
    found = root.find_command("/help")
    assert found is not None
    assert found.handler is not again
    # registered after inclusion: caught when the tree is checked (the dispatcher does it)
    late = Router("late")
    root.include_router(late)

    @late.command("/whoami")
    async def twice() -> None:
        """重复。
        Duplicate."""

    with pytest.raises(ValueError, match="/whoami is already registered"):
        root.check()

    with pytest.raises(ValueError, match="must look like"):
        Router("r").command("ping")


def test_aliases_and_lookup_are_case_insensitive() -> None:
    root = root_router()
    found = root.find_command("/H")
    assert found is not None
    assert found.name == "/help"
    assert root.find_command("/nope") is None


def test_card_action_registration_checks_payload() -> None:
    router = Router("r")

    @router.card_action(Sample)
    async def on_sample(payload: Sample) -> None:
        return None

    spec = router.find_action(Sample)
    assert spec is not None
    assert spec.params == ("payload",)

    class Nameless(ActionPayload):
        pass

    with pytest.raises(TypeError, match="no action name"):
        router.card_action(Nameless)


def test_action_names_are_unique() -> None:
    with pytest.raises(TypeError, match="already defined"):

        class Again(ActionPayload, action="test.sample"):
            pass


def test_the_fallback_comes_after_every_message_handler_and_is_one() -> None:
    first, last = Router("first"), Router("last")

    @first.fallback()
    async def anything(ctx: object) -> None:
        pass

    @last.message(lambda event: True)
    async def alerts(ctx: object, event: object) -> None:
        pass

    root = Router("root")
    root.include_router(first)
    root.include_router(last)
    assert [spec.handler for spec in root.iter_messages()] == [alerts, anything]
    other = Router("other")

    @other.fallback()
    async def again(ctx: object) -> None:
        pass

    with pytest.raises(ValueError, match="fallback"):
        root.include_router(other)
    with pytest.raises(ValueError, match="already has a fallback"):
        first.fallback()(again)
    # the bot's own tree: free text is its one fallback, after alert bots and conversations
    handlers = [spec.handler.__module__ for spec in root_router().iter_messages()]
    assert handlers[-1] == "bot.commands.free_text"


def _handlers(router: Router) -> Iterator[Handler]:
    yield from (spec.handler for spec in router.iter_commands())
    yield from (spec.handler for spec in router.iter_messages())
    for child in router._walk():
        yield from (spec.handler for spec in child._actions)
