"""Incidents: acknowledgement and resolution fields, source and summary, storm flag; silences.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "silences",
        sa.Column("chat_id", sa.Text(), nullable=True),
        sa.Column("matcher", sa.Text(), nullable=False),
        sa.Column(
            "matchers",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "starts_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    op.create_index("ix_silences_active", "silences", ["ends_at"], unique=False)
    op.add_column("incidents", sa.Column("acknowledged_by", sa.Text(), nullable=True))
    op.add_column("incidents", sa.Column("resolved_by", sa.Text(), nullable=True))
    op.add_column("incidents", sa.Column("resolved_note", sa.Text(), nullable=True))
    op.add_column(
        "incidents", sa.Column("source", sa.Text(), server_default="generic", nullable=False)
    )
    op.add_column("incidents", sa.Column("summary", sa.Text(), server_default="", nullable=False))
    op.add_column(
        "incidents",
        sa.Column("storm", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column("incidents", sa.Column("escalation_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("incidents", "escalation_reason")
    op.drop_column("incidents", "storm")
    op.drop_column("incidents", "summary")
    op.drop_column("incidents", "source")
    op.drop_column("incidents", "resolved_note")
    op.drop_column("incidents", "resolved_by")
    op.drop_column("incidents", "acknowledged_by")
    op.drop_index("ix_silences_active", table_name="silences")
    op.drop_table("silences")
