"""mailbox_state

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 08:45:35.342868
"""

import sqlalchemy as sa
from alembic import op

from postdesk.store import models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailbox_state",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("lease_holder", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("last_success_at", models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("backlog", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("mailbox_state")
