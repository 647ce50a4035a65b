"""An incident keeps when it was escalated (`incidents.escalated_at`): an acknowledgement made
before it no longer stops its paging, and the paging steps planned by the escalation
(`pages.after_escalation`) are due from that time, so any replica, after any restart, reads
the same deadlines.

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


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("incidents", sa.Column("escalated_at", sa.DateTime(timezone=True)))
    op.add_column(
        "pages",
        sa.Column("after_escalation", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("pages", "after_escalation")
    op.drop_column("incidents", "escalated_at")
