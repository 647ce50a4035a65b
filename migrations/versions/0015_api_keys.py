"""The REST API and the console: API keys, console sessions, and a change feed (NOTIFY on
changes of incidents, gates and jobs, so every replica's event streams see them).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "larkops_changes"
WATCHED = {"incidents": "incident", "approvals": "gate", "schedules": "job"}


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
        "api_keys",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        *_row(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("open_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), server_default="", nullable=False),
        sa.Column("csrf", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        *_row(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_sessions_token_hash")),
    )
    op.create_index("ix_console_sessions_expires", "console_sessions", ["expires_at"], unique=False)
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION larkops_feed_change() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', json_build_object(
                'kind', TG_ARGV[0], 'id', NEW.id, 'op', lower(TG_OP),
                'status', NEW.status)::text);
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    for table, kind in WATCHED.items():
        op.execute(
            f"CREATE TRIGGER {table}_feed AFTER INSERT OR UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION larkops_feed_change('{kind}')"
        )


def downgrade() -> None:
    """Downgrade schema."""
    for table in WATCHED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_feed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS larkops_feed_change()")
    op.drop_index("ix_console_sessions_expires", table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("api_keys")
