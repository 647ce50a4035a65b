"""One change feed: every change a process listens for comes on `larkops_changes` (issue 22).

Migration 0013 notified `larkops_<table>` (no payload) for the loops, and 0015 notified
`larkops_changes` (`{"kind", "id", "op", "status"}`) for the REST API's event stream, on
overlapping tables, so each process kept two listening connections and an incident change
notified twice. Now the feed's triggers cover what the loops need too (actions and council
batches; deleted jobs) and 0013's triggers are dropped; `storage.changes` listens once.

A repeat of an alert (the fold: `alert_count`, `last_seen_at`, `summary`, `updated_at`)
notifies nobody: no listener acts on it, and in an alert storm every alert folds into an open
incident, so a notification per repeat would cost the storm a trigger, a queued notification
and a wake-up of every listening process per alert.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "larkops_changes"
# 0015's tables and kinds, and what the loops also follow
PUBLIC = {"incidents": "incident", "approvals": "gate", "schedules": "job"}
LOOPS = {"actions": "action", "council_batches": "council"}
# what a listener acts on when an incident changes (the console, the sweeps, the gauges); what
# an alert's repeat changes (`alert_count`, `last_seen_at`, `summary`, `updated_at`) is not in
# it. Named rather than "every column but those": comparing whole rows (`to_jsonb(OLD) - ...`)
# cost 140-160 µs per folded row against ~60 µs for the fold itself (5,000 rows a statement);
# these columns cost nothing measurable.
WATCHED_COLUMNS = (
    "status",
    "severity",
    "title",
    "service",
    "chat_id",
    "card_message_id",
    "labels",
    "acknowledged_at",
    "acknowledged_by",
    "resolved_at",
    "resolved_by",
    "resolved_note",
    "source",
    "storm",
    "escalation_reason",
    "escalation",
)
# 0013's
NOTIFIED = ("schedules", "approvals", "actions", "council_batches")


def _feed_function(row: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION larkops_feed_change() RETURNS trigger AS $$
        BEGIN
            {row}
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
        """


FEED_0015 = _feed_function(
    f"""PERFORM pg_notify('{CHANNEL}', json_build_object(
                'kind', TG_ARGV[0], 'id', NEW.id, 'op', lower(TG_OP),
                'status', NEW.status)::text);"""
)
FEED_0017 = _feed_function(
    f"""IF TG_OP = 'DELETE' THEN
                PERFORM pg_notify('{CHANNEL}', json_build_object(
                    'kind', TG_ARGV[0], 'id', OLD.id, 'op', 'delete',
                    'status', OLD.status)::text);
            ELSE
                PERFORM pg_notify('{CHANNEL}', json_build_object(
                    'kind', TG_ARGV[0], 'id', NEW.id, 'op', lower(TG_OP),
                    'status', NEW.status)::text);
            END IF;"""
)


def _watched(row: str) -> str:
    return "(" + ", ".join(f"{row}.{column}" for column in WATCHED_COLUMNS) + ")"


def upgrade() -> None:
    """Upgrade schema."""
    op.execute(FEED_0017)
    op.execute("DROP TRIGGER IF EXISTS incidents_feed ON incidents")
    op.execute(
        "CREATE TRIGGER incidents_feed AFTER INSERT ON incidents "
        "FOR EACH ROW EXECUTE FUNCTION larkops_feed_change('incident')"
    )
    op.execute(
        "CREATE TRIGGER incidents_feed_change AFTER UPDATE ON incidents FOR EACH ROW "
        f"WHEN ({_watched('OLD')} IS DISTINCT FROM {_watched('NEW')}) "
        "EXECUTE FUNCTION larkops_feed_change('incident')"
    )
    op.execute("DROP TRIGGER IF EXISTS schedules_feed ON schedules")
    op.execute(
        "CREATE TRIGGER schedules_feed AFTER INSERT OR UPDATE OR DELETE ON schedules "
        "FOR EACH ROW EXECUTE FUNCTION larkops_feed_change('job')"
    )
    for table, kind in LOOPS.items():
        op.execute(
            f"CREATE TRIGGER {table}_feed AFTER INSERT OR UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION larkops_feed_change('{kind}')"
        )
    for table in (*NOTIFIED, "incidents"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify ON {table}")
    op.execute("DROP FUNCTION IF EXISTS larkops_notify_change()")


def downgrade() -> None:
    """Downgrade schema."""
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
    for table in NOTIFIED:
        op.execute(
            f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION larkops_notify_change()"
        )
    op.execute(
        "CREATE TRIGGER incidents_notify AFTER INSERT ON incidents "
        "FOR EACH ROW EXECUTE FUNCTION larkops_notify_change()"
    )
    for table in LOOPS:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_feed ON {table}")
    op.execute("DROP TRIGGER IF EXISTS incidents_feed_change ON incidents")
    op.execute(FEED_0015)
    for table, kind in PUBLIC.items():
        op.execute(f"DROP TRIGGER IF EXISTS {table}_feed ON {table}")
        op.execute(
            f"CREATE TRIGGER {table}_feed AFTER INSERT OR UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION larkops_feed_change('{kind}')"
        )
