"""Fixtures of the keeper suite: stores on a SQLite file and on a real PostgreSQL server,
and the status page tests' browser (helpers_browser)."""

from __future__ import annotations

import uuid

import pytest
from helpers_browser import browser  # noqa: F401 - a fixture, for the status page tests
from servers import PostgresServer

from keepers.persistence.store import Store


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server for the session, stopped by its process id."""
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """An empty store URL: a SQLite file, or a fresh database on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sentinel.db'}"
    return request.getfixturevalue("postgres_server").create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def store(store_url):
    """A store at the newest schema."""
    opened = Store.open(store_url)
    yield opened
    opened.close()
