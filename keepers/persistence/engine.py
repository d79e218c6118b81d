"""The store's database plumbing: engines (SQLite pragmas, PostgreSQL options), the
Alembic configuration and the lock that keeps two keepers from migrating at once."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url

from keepers.base.errors import SentinelError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that migrates ``engine`` with keepers/persistence/migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config



def make_engine(url: str, *, durable: bool = True) -> Engine:
    """An engine for ``url``; ``durable=False`` commits without waiting for the disk."""
    try:
        parsed = make_url(url)
    except Exception:
        raise SentinelError("store_url: not a SQLAlchemy URL; e.g. sqlite:///data/state/sentinel.db") from None
    if parsed.get_backend_name() != "sqlite":
        if durable or parsed.get_backend_name() != "postgresql":
            return create_engine(parsed, pool_pre_ping=True)
        return create_engine(parsed, pool_pre_ping=True, connect_args={"options": "-c synchronous_commit=off"})
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(connection, _record) -> None:
        # WAL: readers (status) never block the keeper's writes; synchronous=FULL: a
        # committed trade row survives a power cut, not only a process crash (NORMAL in
        # WAL mode: survives a process crash, never corrupts).
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Keeps two keepers starting at once from migrating the same database together."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            yield
            return
        with open(f"{database}.migrate-lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        return
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            # An arbitrary constant key: every Sentinel keeper takes the same lock.
            connection.execute(text("SELECT pg_advisory_lock(51782)"))
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(51782)"))
                connection.commit()
        return
    yield


def error_line(error: Exception) -> str:
    """The first line of a database error (the driver's own message), for one-line reports."""
    return str(getattr(error, "orig", error)).strip().splitlines()[0]
