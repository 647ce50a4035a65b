"""Deliveries triage has counted, so that a delivery replayed after a crash counts once.

Triage commits its incidents and alerts before the inbox marks the delivery done; a crash
between the two replays the delivery. Triage now records the delivery (the inbound event id, or
the alert bot's message id) in the same transaction as its alerts and skips one it has seen.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "triaged_deliveries",
        sa.Column("delivery", sa.Text(), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triaged_deliveries")),
        sa.UniqueConstraint("delivery", name=op.f("uq_triaged_deliveries_delivery")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("triaged_deliveries")
