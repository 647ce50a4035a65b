"""Tables whose changes wake the bot's loops notify `larkops_<table>` (LISTEN/NOTIFY).

A loop with nothing to do (the sweeps, the scheduler's sync, the inbox) sleeps until a row it
cares about changes instead of looking every few seconds (issue 22); `storage.notices` listens.
Row triggers (a statement that changes no row, as a sweep's UPDATE usually is, notifies
nothing); Postgres folds the identical notifications of one transaction into one, with no
payload: the listener only needs to know to look.
Only tables written at a human pace notify on every change; incidents notify when one is opened
(an alert storm folds into open incidents without a notification per alert), and the inbox's
own table none (a commit wakes the workers of its process; others look every poll).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVERY_CHANGE = ("schedules", "approvals", "actions", "council_batches")


def upgrade() -> None:
    """Upgrade schema."""
    op.execute(
        """
        CREATE OR REPLACE FUNCTION larkops_notify_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('larkops_' || TG_TABLE_NAME, '');
            RETURN NULL;
        END
        $$
        """
    )
    for table in EVERY_CHANGE:
        op.execute(
            f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION larkops_notify_change()"
        )
    op.execute(
        "CREATE TRIGGER incidents_notify AFTER INSERT ON incidents "
        "FOR EACH ROW EXECUTE FUNCTION larkops_notify_change()"
    )


def downgrade() -> None:
    """Downgrade schema."""
    for table in (*EVERY_CHANGE, "incidents"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify ON {table}")
    op.execute("DROP FUNCTION IF EXISTS larkops_notify_change()")
