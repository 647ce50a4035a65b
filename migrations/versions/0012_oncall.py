"""On-call: paging steps as durable timers, schedule overrides, announced hand-offs, war rooms
and postmortem drafts.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
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
        "pages",
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "outcome",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        *_row(),
        sa.CheckConstraint(
            "status IN ('pending', 'firing', 'done', 'cancelled')", name=op.f("ck_pages_status")
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_pages_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pages")),
        sa.UniqueConstraint("incident_id", "step", name="uq_pages_incident_step"),
    )
    op.create_index(op.f("ix_pages_incident_id"), "pages", ["incident_id"], unique=False)
    op.create_index(
        "ix_pages_due",
        "pages",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "oncall_overrides",
        sa.Column("schedule", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        *_row(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_overrides")),
    )
    op.create_index(
        "ix_oncall_overrides_schedule_ends",
        "oncall_overrides",
        ["schedule", "ends_at"],
        unique=False,
    )
    op.create_table(
        "oncall_handoffs",
        sa.Column("schedule", sa.Text(), nullable=False),
        sa.Column("handoff_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chat_id", sa.Text(), nullable=False),
        sa.Column(
            "people",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("message_id", sa.Text(), nullable=True),
        *_row(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_handoffs")),
        sa.UniqueConstraint("schedule", "handoff_at", name="uq_oncall_handoffs_schedule_at"),
    )
    op.create_table(
        "war_rooms",
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.Text(), nullable=True),
        sa.Column("card_message_id", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("summary_message_id", sa.Text(), nullable=True),
        sa.Column("dissolved_at", sa.DateTime(timezone=True), nullable=True),
        *_row(),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_war_rooms_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_war_rooms")),
        sa.UniqueConstraint("incident_id", name=op.f("uq_war_rooms_incident_id")),
    )

    op.create_table(
        "postmortems",
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("document_id", sa.Text(), nullable=True),
        sa.Column("drafts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("tasks_by", sa.Text(), nullable=True),
        sa.Column(
            "tasks",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        *_row(),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_postmortems_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_postmortems")),
        sa.UniqueConstraint("incident_id", name=op.f("uq_postmortems_incident_id")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("postmortems")
    op.drop_table("war_rooms")
    op.drop_table("oncall_handoffs")
    op.drop_index("ix_oncall_overrides_schedule_ends", table_name="oncall_overrides")
    op.drop_table("oncall_overrides")
    op.drop_index(
        "ix_pages_due", table_name="pages", postgresql_where=sa.text("status = 'pending'")
    )
    op.drop_index(op.f("ix_pages_incident_id"), table_name="pages")
    op.drop_table("pages")
