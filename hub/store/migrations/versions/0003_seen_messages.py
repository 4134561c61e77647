"""Seen message ids of signed requests (replay protection that survives a restart).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_messages",
        sa.Column("client", sa.String(512), primary_key=True),
        sa.Column("message_id", sa.String(128), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_seen_messages_seen_at", "seen_messages", ["seen_at"])


def downgrade() -> None:
    op.drop_table("seen_messages")
