"""The REST API's busiest read and its key check: an index for incidents by status, newest
first (`GET /api/v1/incidents?status=…`, keyset pages by id), and a change notice when an API
key is revoked or deleted, so every replica forgets the key at once (`bot.api.keyring`).

Without the index a rare status is found by walking the whole primary key backwards
(`?status=escalated` read 4,851 rows to answer 50 with 100,000 incidents, 1 % escalated;
a status nobody has, every row); with it, the 50 rows and no more.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "larkops_changes"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index("ix_incidents_status_id", "incidents", ["status", "id"], unique=False)
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION larkops_feed_api_key() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', json_build_object(
                'kind', 'api_key', 'id', OLD.id, 'op', lower(TG_OP),
                'prefix', OLD.prefix)::text);
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    # not on every use (last_used_at): only when a key stops working
    op.execute(
        "CREATE TRIGGER api_keys_feed AFTER UPDATE ON api_keys FOR EACH ROW "
        "WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at "
        "OR OLD.secret_hash IS DISTINCT FROM NEW.secret_hash "
        "OR OLD.owner IS DISTINCT FROM NEW.owner) "
        "EXECUTE FUNCTION larkops_feed_api_key()"
    )
    op.execute(
        "CREATE TRIGGER api_keys_feed_delete AFTER DELETE ON api_keys FOR EACH ROW "
        "EXECUTE FUNCTION larkops_feed_api_key()"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DROP TRIGGER IF EXISTS api_keys_feed_delete ON api_keys")
    op.execute("DROP TRIGGER IF EXISTS api_keys_feed ON api_keys")
    op.execute("DROP FUNCTION IF EXISTS larkops_feed_api_key()")
    op.drop_index("ix_incidents_status_id", table_name="incidents")
