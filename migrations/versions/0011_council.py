"""A council of models: one batch per question, one task per model, claimed under a lease.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _row() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "council_batches",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "brief",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), server_default="running", nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "merged",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        *_row(),
        sa.CheckConstraint(
            "purpose IN ('diagnosis', 'question')", name=op.f("ck_council_batches_purpose")
        ),
        sa.CheckConstraint("status IN ('running', 'done')", name=op.f("ck_council_batches_status")),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_council_batches_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_council_batches")),
        sa.UniqueConstraint("key", name="uq_council_batches_key"),
    )
    op.create_index(
        op.f("ix_council_batches_incident_id"), "council_batches", ["incident_id"], unique=False
    )
    op.create_table(
        "council_tasks",
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("member", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("latency_ms", sa.Integer(), server_default="0", nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("completion_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "cost_usd", sa.Numeric(precision=12, scale=6), server_default="0", nullable=False
        ),
        sa.Column(
            "answer",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        *_row(),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'answered', 'failed', 'timed_out')",
            name=op.f("ck_council_tasks_status"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["council_batches.id"],
            name=op.f("fk_council_tasks_batch_id_council_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_council_tasks")),
        sa.UniqueConstraint("batch_id", "member", name="uq_council_tasks_member"),
    )
    op.create_index(
        "ix_council_tasks_lease", "council_tasks", ["status", "lease_until"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("council_tasks")
    op.drop_table("council_batches")
