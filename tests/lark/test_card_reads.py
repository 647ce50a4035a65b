"""An incident card is drawn from one statement (issue 22): in an alert storm the cards of the
repeating incidents are redrawn every second, and each drawing was nine transactions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from bot.lark.events import card_text
from storage import incidents
from storage.database import Database
from tests.lark.test_card_truth import APPROVE, fire
from tests.lark.test_incidents import card_with, settings_for
from tests.lark.testbot import TestBot, card_buttons
from tests.support.health import health_service


@pytest.fixture
async def health(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    async with health_service(tmp_path / "healthy-web") as url:
        yield url, tmp_path


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements `db` sends while the block runs."""
    sent: list[str] = []

    def count(*args: Any) -> None:
        sent.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)


async def test_a_diagnosed_card_with_its_gate_is_one_statement(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    url, state = health
    bot: TestBot = await make_testbot(settings=settings_for(state), incidents=True)
    alert = {
        "title": "DiskFull",
        "severity": "warning",
        "labels": {"alertname": "DiskFull", "instance": "web-3"},
        "annotations": {"summary": "/var 已用 91%", "url": url},
    }
    await fire(bot, alert)
    posted = await card_with(bot, await bot.expect_reply(contains="DiskFull"), APPROVE)
    desk = bot.runtime.desk
    incident = await incidents.get_incident(bot.db, 1)
    assert incident is not None
    with statements(bot.db) as sent:
        card = await desk.presenter.render(incident)
    assert len(sent) == 1, sent
    # the same card as the one in the chat: diagnosis and gate came with that statement
    assert card_text(card) == card_text(posted.card)
    assert card_buttons(card) == card_buttons(posted.card)
