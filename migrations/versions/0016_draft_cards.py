"""A schedule draft remembers the message showing its confirmation card, so the expiry sweep
can update that card to say it expired (a silence request keeps its card on its gate,
`approvals.card_message_id`).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("schedules", sa.Column("card_message_id", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("schedules", "card_message_id")
