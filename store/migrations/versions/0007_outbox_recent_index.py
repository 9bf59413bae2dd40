"""index for counting recent automatic mail (the circuit breaker)

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_recent", "outbox", ["kind", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_recent", table_name="outbox")
