"""What follows a triage on the inbox's path (`workflows.follow_ups`), on real Postgres: intake
returns once the batch is committed, a new incident is told at once, and repeats wait for one
refresh per card, after their incident's card is out."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from storage.database import Database
from tests.integration.test_triage import alert
from tests.support.wait import wait_until
from workflows.follow_ups import FollowUps
from workflows.triage import Delivery, Hooks, Triage, TriageSettings


class Bot:
    """Hooks as the bot's: opening an incident (its card) takes until `sent` is set."""

    def __init__(self) -> None:
        self.sent = asyncio.Event()
        self.told: list[tuple[str, int]] = []

    def hooks(self) -> Hooks:
        async def new(incident_id: int) -> None:
            self.told.append(("opening", incident_id))
            await self.sent.wait()  # the card waits its turn at Lark
            self.told.append(("opened", incident_id))

        async def changed(incident_id: int) -> None:
            self.told.append(("refreshed", incident_id))

        async def resolved(incident_id: int) -> None:
            self.told.append(("resolved", incident_id))

        async def storm(chat: str) -> None:
            self.told.append(("storm", 0))

        return Hooks(new, changed, resolved, storm)


async def test_intake_does_not_wait_for_cards_and_folds_refreshes(migrated_db: Database) -> None:
    bot = Bot()
    triage = Triage(migrated_db, TriageSettings(), bot.hooks())
    follow_ups = FollowUps(triage.notify, bot.hooks().on_changed)
    bot.sent.set()
    known = await triage.receive([alert("DiskFull")], "oc_ops")  # an incident with its card
    bot.sent.clear()
    bot.told.clear()

    async def intake(*names: str) -> list[int]:
        """One inbox batch: committed, then followed up in the background."""
        deliveries = [
            Delivery([alert(name)], "oc_ops", f"webhook:{n}") for n, name in enumerate(names)
        ]
        outcome = await triage.receive_batch(deliveries, notify=False)
        follow_ups.add(outcome)
        return outcome.new

    try:
        (opened,) = await intake("NodeDown")  # returns while the card is still on its way
        # three batches of repeats of both, committed while the refresher was busy elsewhere
        repeats = [
            await triage.receive_batch(
                [Delivery([alert("NodeDown"), alert("DiskFull")], "oc_ops", f"webhook:r{n}")],
                notify=False,
            )
            for n in range(3)
        ]
        for outcome in repeats:
            follow_ups.add(outcome)
        await wait_until(lambda: ("refreshed", known.new[0]) in bot.told, 10, "the known card")
        assert bot.told[0] == ("opening", opened)
        assert ("refreshed", opened) not in bot.told  # its card is not out yet
        assert bot.told.count(("refreshed", known.new[0])) == 1  # three batches, one refresh
    finally:
        bot.sent.set()
        await follow_ups.drain()
    assert bot.told.index(("opened", opened)) < bot.told.index(("refreshed", opened))
    assert bot.told.count(("refreshed", opened)) == 1
    assert follow_ups.pending == 0
    async with migrated_db.engine.connect() as conn:
        counts: dict[str, int] = dict(
            (await conn.execute(text("SELECT title, alert_count FROM incidents"))).all()
        )
    assert counts == {"DiskFull": 4, "NodeDown": 4}
