"""Approval gates record whether the policy named their approvers.

A gate naming the chat's usual approvers may also be decided by anyone holding the approver role
in the chat; a gate naming the policy's own list only by its members and admins. This was
inferred by comparing the stored list with the configured one, so a change of configuration
silently changed who could decide. Gates still pending at the upgrade are marked as named (fail
closed: only the people on them and admins may decide them).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column(
        "approvals",
        sa.Column("approvers_named", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.execute("UPDATE approvals SET approvers_named = true WHERE status = 'pending'")


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("approvals", "approvers_named")
