"""Tables of the document exchange (SQLAlchemy Core, on the hub's metadata); migration 0002 creates them."""

import sqlalchemy as sa

from hub.store.tables import metadata

_TS = sa.DateTime(timezone=True)

agencies = sa.Table(
    "edoc_agencies",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("parent", sa.String(64), nullable=True),
    sa.Column("endpoint", sa.String(1024), nullable=True),
    sa.Column("updated_at", _TS, nullable=False),
)

documents = sa.Table(
    "edoc_documents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("sender", sa.String(64), nullable=False),
    sa.Column("client", sa.String(512), nullable=False),
    sa.Column("document_id", sa.String(255), nullable=False),
    sa.Column("business_type", sa.Integer, nullable=False),
    sa.Column("refers_to", sa.String(32), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("code", sa.String(512), nullable=False),
    sa.Column("promulgation_date", sa.String(10), nullable=False),
    sa.Column("signer", sa.String(512), nullable=True),
    sa.Column("algorithm", sa.String(128), nullable=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("skeleton", sa.LargeBinary, nullable=False),
    sa.Column("markers", sa.Text, nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("received_at", _TS, nullable=False, index=True),
    sa.UniqueConstraint("sender", "document_id", "business_type", name="uq_edoc_documents_key"),
)

recipients = sa.Table(
    "edoc_recipients",
    metadata,
    sa.Column("document", sa.String(32), sa.ForeignKey("edoc_documents.id"), primary_key=True),
    sa.Column("organ", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(2), nullable=True),
    sa.Column("recall", sa.String(16), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
)

attachments = sa.Table(
    "edoc_attachments",
    metadata,
    sa.Column("document", sa.String(32), sa.ForeignKey("edoc_documents.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("content_id", sa.String(255), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("content_type", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("chunks", sa.Integer, nullable=False),
    sa.Column("layout", sa.Text, nullable=False),
)

attachment_chunks = sa.Table(
    "edoc_attachment_chunks",
    metadata,
    sa.Column("document", sa.String(32), sa.ForeignKey("edoc_documents.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

statuses = sa.Table(
    "edoc_statuses",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("document", sa.String(32), sa.ForeignKey("edoc_documents.id"), nullable=False, index=True),
    sa.Column("organ", sa.String(64), nullable=False),
    sa.Column("author", sa.String(64), nullable=False),
    sa.Column("code", sa.String(2), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("timestamp", sa.String(19), nullable=False),
    sa.Column("staff", sa.Text, nullable=True),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("signer", sa.String(512), nullable=True),
    sa.Column("created_at", _TS, nullable=False),
    sa.UniqueConstraint("document", "organ", "author", "code", "timestamp", name="uq_edoc_statuses_key"),
)

deliveries = sa.Table(
    "edoc_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(128), nullable=False, unique=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("document", sa.String(32), sa.ForeignKey("edoc_documents.id"), nullable=False, index=True),
    sa.Column("status", sa.String(32), sa.ForeignKey("edoc_statuses.id"), nullable=True),
    sa.Column("recipient", sa.String(64), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("lease_token", sa.String(32), nullable=True),
    sa.Column("lease_until", _TS, nullable=True),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("queued_at", _TS, nullable=False),
    sa.Column("published_at", _TS, nullable=True),
    sa.Column("available_at", _TS, nullable=True),
    sa.Column("delivered_at", _TS, nullable=True),
    sa.Column("acked_at", _TS, nullable=True),
    sa.Column("dead_at", _TS, nullable=True),
    sa.Index("ix_edoc_deliveries_inbox", "recipient", "kind", "state", "id"),
    sa.Index("ix_edoc_deliveries_outbox", "state", "published_at"),
)

__all__ = [
    "agencies",
    "attachment_chunks",
    "attachments",
    "deliveries",
    "documents",
    "recipients",
    "statuses",
]
