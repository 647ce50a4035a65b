"""A fingerprint's own dedupe window (set from the report) is what triage folds by; other
fingerprints keep the global one. Real Postgres, the real triage."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from storage.advice import set_dedupe_window
from storage.database import Database
from tests.integration.test_triage import Calls, alert
from workflows.triage import Triage, TriageSettings


async def _age_incidents(db: Database, hours: int) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE incidents SET last_seen_at = now() - make_interval(hours => :h)"),
            {"h": hours},
        )


async def test_an_own_window_folds_what_the_global_one_would_not(migrated_db: Database) -> None:
    triage = Triage(migrated_db, TriageSettings(dedupe_window=timedelta(hours=1)), Calls().hooks())
    lag, disk = (await triage.receive([alert("QueueLag"), alert("DiskFull")], "oc_ops")).new
    await set_dedupe_window(
        migrated_db, "fp-QueueLag-db-1", 420, chat_id="oc_ops", created_by="ou_bob", reason="r"
    )
    await _age_incidents(migrated_db, 5)  # both were last seen 5 hours ago
    again = await triage.receive([alert("QueueLag"), alert("DiskFull")], "oc_ops")
    assert again.folded == [lag]  # within its own 7 hours
    assert len(again.new) == 1  # DiskFull: past the global hour, a new incident
    assert again.new != [disk]
    # the window can be changed again; 2 hours no longer covers a 5-hour gap
    await set_dedupe_window(
        migrated_db, "fp-QueueLag-db-1", 120, chat_id="oc_ops", created_by="ou_bob", reason="r"
    )
    await _age_incidents(migrated_db, 5)
    third = await triage.receive([alert("QueueLag")], "oc_ops")
    assert third.folded == []
    assert len(third.new) == 1
    async with migrated_db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT fingerprint, minutes FROM dedupe_overrides"))).all()
    assert [tuple(r) for r in rows] == [("fp-QueueLag-db-1", 120)]
