"""Silences that need a second approver, and what they held back.

`silences.status`: `active` (in force), `pending` (a silence matching every alert, or over 24 h,
waiting for another approver's confirmation), `rejected`, `expired` (nobody decided within
`LARKOPS_PENDING_TTL_HOURS`). `silences.run_id` names the confirmation gate (`approvals.run_id`);
`silences.caught` counts the alerts the silence held back; `silences.decided_by` is who
confirmed or rejected a request.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column(
        "silences", sa.Column("status", sa.Text(), server_default="active", nullable=False)
    )
    op.add_column("silences", sa.Column("run_id", sa.UUID(), nullable=True))
    op.add_column("silences", sa.Column("caught", sa.Integer(), server_default="0", nullable=False))
    op.add_column("silences", sa.Column("decided_by", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_silences_status"),
        "silences",
        "status IN ('active', 'pending', 'rejected', 'expired')",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("UPDATE silences SET cancelled_at = now() WHERE status <> 'active'")
    op.drop_constraint(op.f("ck_silences_status"), "silences", type_="check")
    op.drop_column("silences", "decided_by")
    op.drop_column("silences", "caught")
    op.drop_column("silences", "run_id")
    op.drop_column("silences", "status")
