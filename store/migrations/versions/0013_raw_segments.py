"""raw segments: where each raw message received in a group is kept

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "raw_parts",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("segment", sa.String(80), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("raw_parts")
