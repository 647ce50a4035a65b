"""An incident keeps when it was escalated (`incidents.escalated_at`): an acknowledgement made
before it no longer stops its paging, and the paging steps planned by the escalation
(`pages.after_escalation`) are due from that time, so any replica, after any restart, reads
the same deadlines. The change feed's incident trigger watches the new column too (0017's
columns and `escalated_at`), so a change of it reaches the listeners.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


BEFORE = (
    "status",
    "severity",
    "title",
    "service",
    "chat_id",
    "card_message_id",
    "labels",
    "acknowledged_at",
    "acknowledged_by",
    "resolved_at",
    "resolved_by",
    "resolved_note",
    "source",
    "storm",
    "escalation_reason",
    "escalation",
)
WATCHED_COLUMNS = (*BEFORE, "escalated_at")


def _feed_trigger(columns: Sequence[str]) -> None:
    """The incidents' change trigger (0017's), watching `columns`."""

    def row(name: str) -> str:
        return "(" + ", ".join(f"{name}.{column}" for column in columns) + ")"

    op.execute("DROP TRIGGER IF EXISTS incidents_feed_change ON incidents")
    op.execute(
        "CREATE TRIGGER incidents_feed_change AFTER UPDATE ON incidents FOR EACH ROW "
        f"WHEN ({row('OLD')} IS DISTINCT FROM {row('NEW')}) "
        "EXECUTE FUNCTION larkops_feed_change('incident')"
    )


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("incidents", sa.Column("escalated_at", sa.DateTime(timezone=True)))
    op.add_column(
        "pages",
        sa.Column("after_escalation", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    _feed_trigger(WATCHED_COLUMNS)


def downgrade() -> None:
    """Downgrade schema."""
    _feed_trigger(BEFORE)
    op.drop_column("pages", "after_escalation")
    op.drop_column("incidents", "escalated_at")
