"""Table definitions (SQLAlchemy Core); Alembic migrations in hub/store/migrations create them."""

import sqlalchemy as sa

metadata = sa.MetaData()

exchanges = sa.Table(
    "exchanges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(128), nullable=False, index=True),
    sa.Column("request_id", sa.String(64), nullable=False, unique=True),
    sa.Column("client", sa.String(512), nullable=False),
    sa.Column("service", sa.String(512), nullable=False, index=True),
    sa.Column("operation", sa.String(255), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("error_type", sa.String(128), nullable=True),
    sa.Column("request_bytes", sa.Integer, nullable=False),
    sa.Column("response_bytes", sa.Integer, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
)

flags = sa.Table(
    "hub_flags",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

seen_messages = sa.Table(
    "seen_messages",
    metadata,
    sa.Column("client", sa.String(512), primary_key=True),
    sa.Column("message_id", sa.String(128), primary_key=True),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False, index=True),
)
