"""Executions remember their policy target and whether they ran automatically; chat actions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("executions", sa.Column("target", sa.Text(), nullable=True))
    op.add_column(
        "executions",
        sa.Column("auto", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column("executions", sa.Column("requested_by", sa.Text(), nullable=True))
    op.create_index(
        "ix_executions_target_created", "executions", ["target", "created_at"], unique=False
    )
    op.create_index(
        "ix_executions_auto_created",
        "executions",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("auto"),
    )
    op.create_table(
        "actions",
        sa.Column("run_id", sa.UUID(), nullable=False),
        sa.Column("chat_id", sa.Text(), nullable=True),
        sa.Column("requester", sa.Text(), nullable=False),
        sa.Column("plugin", sa.Text(), nullable=False),
        sa.Column(
            "params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("risk", sa.Text(), nullable=False),
        sa.Column(
            "decision",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column(
            "result",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("card_message_id", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'succeeded', 'failed', 'rejected', 'expired', "
            "'refused')",
            name=op.f("ck_actions_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actions")),
        sa.UniqueConstraint("run_id", name="uq_actions_run_id"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("actions")
    op.drop_index(
        "ix_executions_auto_created", table_name="executions", postgresql_where=sa.text("auto")
    )
    op.drop_index("ix_executions_target_created", table_name="executions")
    op.drop_column("executions", "requested_by")
    op.drop_column("executions", "auto")
    op.drop_column("executions", "target")
