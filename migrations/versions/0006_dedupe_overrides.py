"""Per-fingerprint dedupe windows, applied from the alert-hygiene report.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "dedupe_overrides",
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("minutes BETWEEN 1 AND 10080", name=op.f("ck_dedupe_overrides_minutes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dedupe_overrides")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_dedupe_overrides_fingerprint")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("dedupe_overrides")
