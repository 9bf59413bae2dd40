"""ticket timers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 08:54:07.522138
"""

import sqlalchemy as sa
from alembic import op

from postdesk.store import models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    counters = sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.Integer))
    op.bulk_insert(counters, [{"name": "digest", "value": 0}])
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("next_reminder_at", models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("reminders_sent", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("sla_check_at", models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("sla_flags", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(sa.Column("csat_score", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_tickets_next_reminder_at"), ["next_reminder_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_tickets_sla_check_at"), ["sla_check_at"], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM counters WHERE name = 'digest'")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_sla_check_at"))
        batch_op.drop_index(batch_op.f("ix_tickets_next_reminder_at"))
        batch_op.drop_column("csat_score")
        batch_op.drop_column("sla_flags")
        batch_op.drop_column("sla_check_at")
        batch_op.drop_column("reminders_sent")
        batch_op.drop_column("next_reminder_at")
