"""Exchange records and hub flags.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exchanges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False, unique=True),
        sa.Column("client", sa.String(512), nullable=False),
        sa.Column("service", sa.String(512), nullable=False),
        sa.Column("operation", sa.String(255), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error_type", sa.String(128), nullable=True),
        sa.Column("request_bytes", sa.Integer, nullable=False),
        sa.Column("response_bytes", sa.Integer, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
    )
    op.create_index("ix_exchanges_message_id", "exchanges", ["message_id"])
    op.create_index("ix_exchanges_service", "exchanges", ["service"])
    op.create_index("ix_exchanges_received_at", "exchanges", ["received_at"])
    op.create_table(
        "hub_flags",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hub_flags")
    op.drop_table("exchanges")
