"""The inbox's claims of webhook deliveries (`storage.inbound.claim_batch`) on real Postgres."""

from __future__ import annotations

from storage import inbound
from storage.database import Database


async def test_a_batch_of_alert_deliveries_is_one_chats(migrated_db: Database) -> None:
    """A new problem in one chat is not claimed with (and held behind) another chat's storm."""
    for n, chat in enumerate(["oc_storm", "oc_other", "oc_storm", "oc_storm"]):
        await inbound.record(
            migrated_db,
            event_id=f"webhook:{n}",
            event_type="alert.alertmanager",
            payload={"chat_id": chat, "alerts": []},
            source="webhook",
        )
    async with inbound.claim_batch(migrated_db, worker="w1", alerts=20) as storm:
        assert [row.event_id for row in storm] == ["webhook:0", "webhook:2", "webhook:3"]
        async with inbound.claim_batch(migrated_db, worker="w2", alerts=20) as other:
            assert [row.event_id for row in other] == ["webhook:1"]
            for row in other:
                row.status = "done"
        for row in storm:
            row.status = "done"
    assert await inbound.pending_count(migrated_db) == 0
