"""Alembic environment: migrations run on a connection handed in by Store.migrate()."""

from alembic import context
from sqlalchemy import create_engine

from hub.store.tables import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg") if url else "")
    with engine.connect() as sync_connection:
        context.configure(connection=sync_connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
