"""The store seam: SQLAlchemy 2 over SQLite (embedded, default) or PostgreSQL (production)."""

from hub.store.exchange_log import ExchangeLog, ExchangeRecord
from hub.store.store import Store

__all__ = ["ExchangeLog", "ExchangeRecord", "Store"]
