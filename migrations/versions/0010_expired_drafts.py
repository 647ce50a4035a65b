"""Schedule drafts nobody confirmed expire: `schedules.status` may be `expired`.

A draft (status `pending`) left unconfirmed longer than `LARKOPS_PENDING_TTL_HOURS` (24 h by
default) is expired by the sweep; its buttons answer 已过期.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "'pending', 'active', 'paused', 'completed', 'deleted'"
AFTER = "'pending', 'active', 'paused', 'completed', 'deleted', 'expired'"


def upgrade() -> None:
    """Upgrade schema."""
    op.drop_constraint(op.f("ck_schedules_status"), "schedules", type_="check")
    op.create_check_constraint(op.f("ck_schedules_status"), "schedules", f"status IN ({AFTER})")


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("UPDATE schedules SET status = 'deleted' WHERE status = 'expired'")
    op.drop_constraint(op.f("ck_schedules_status"), "schedules", type_="check")
    op.create_check_constraint(op.f("ck_schedules_status"), "schedules", f"status IN ({BEFORE})")
