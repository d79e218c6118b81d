"""Alembic environment: migrates the engine that keepers.persistence.store hands over."""

from alembic import context

from keepers.persistence.tables import Base

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    # render_as_batch: SQLite alters tables by copying them; batch mode does that for us.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
