"""A scheduled run whose replica died is recovered by the leader: `schedule_runs.status` may be
`interrupted` (not run again: the chat is told), and `reruns` counts how often a run was taken
over and run again (once at most).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "'running', 'succeeded', 'failed', 'missed'"
AFTER = "'running', 'succeeded', 'failed', 'missed', 'interrupted'"


def upgrade() -> None:
    """Upgrade schema."""
    op.drop_constraint(op.f("ck_schedule_runs_status"), "schedule_runs", type_="check")
    op.create_check_constraint(
        op.f("ck_schedule_runs_status"), "schedule_runs", f"status IN ({AFTER})"
    )
    op.add_column(
        "schedule_runs",
        sa.Column("reruns", sa.SmallInteger(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("schedule_runs", "reruns")
    op.execute("UPDATE schedule_runs SET status = 'failed' WHERE status = 'interrupted'")
    op.drop_constraint(op.f("ck_schedule_runs_status"), "schedule_runs", type_="check")
    op.create_check_constraint(
        op.f("ck_schedule_runs_status"), "schedule_runs", f"status IN ({BEFORE})"
    )
