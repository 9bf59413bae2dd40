"""operations: relay pauses, outbox claim holders, sweep holds, intake counts by source

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from postdesk.store import models

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relay_state",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("paused_since", models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paused_until", models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(200), nullable=True))
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sweep_hold_until", models.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index("ix_inbound_source", "inbound", ["source", "status"])


def downgrade() -> None:
    op.drop_index("ix_inbound_source", table_name="inbound")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("sweep_hold_until")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
    op.drop_table("relay_state")
