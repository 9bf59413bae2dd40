"""weekly report counter

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    counters = sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.Integer))
    op.bulk_insert(counters, [{"name": "weekly_report", "value": 0}])


def downgrade() -> None:
    op.execute("DELETE FROM counters WHERE name = 'weekly_report'")
